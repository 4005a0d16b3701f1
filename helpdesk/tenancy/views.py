"""Signing in: the browser login page and the API token endpoint, both per tenant domain."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api_errors import error_responses
from helpdesk.tenancy.access import current_tenant, membership_of


class TenantLoginView(LoginView):
    """Django's login, refusing users who are not members of this tenant."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if membership_of(user, current_tenant()) is None:
            form.add_error(None, form.get_invalid_login_error())
            return self.form_invalid(form)
        return super().form_valid(form)


class TokenRequestSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer[dict[str, Any]]):
    token = serializers.CharField()


class ObtainTokenView(APIView):
    """Exchange a member's email and password for an API token (`Authorization: Token <token>`)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=TokenRequestSerializer, responses={200: TokenResponseSerializer, **error_responses(429)}
    )
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["email"].lower(),
            password=data.validated_data["password"],
        )
        if user is None or membership_of(user, current_tenant()) is None:  # type: ignore[arg-type]
            return Response(
                {"detail": "Wrong email or password for this helpdesk.", "code": "invalid_credentials"},
                status=400,
            )
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
