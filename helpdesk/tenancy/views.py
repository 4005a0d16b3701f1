"""Signing in and out: the browser login page and the API token endpoints, per tenant domain.

Every sign-in goes through django.contrib.auth.authenticate with the request, so django-axes throttles the
login pages and the token endpoint alike (helpdesk/tenancy/throttling.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, logout, user_logged_in
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.api_errors import error_responses
from helpdesk.tenancy.access import current_tenant, membership_of
from helpdesk.tenancy.actions import do_issue_api_token, do_sign_out_everywhere


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
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown only once.")
    expiry = serializers.DateTimeField(help_text="When the token expires unless used; every use moves it on.")


class ObtainTokenView(APIView):
    """Exchange a member's email and password for an API token (`Authorization: Token <token>`).

    Repeated failures for an account or from an address are answered 429 with Retry-After for a while."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenResponseSerializer, **error_responses(400, 429)},
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
        token, expiry = do_issue_api_token(user)  # type: ignore[arg-type]
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        return Response({"token": token, "expiry": expiry})


class ApiLogoutView(APIView):
    """End this API token (or, signed in by the browser, this session)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        else:
            logout(request._request)
        return Response(status=204)


class ApiLogoutAllView(APIView):
    """Sign out everywhere: every API token and browser session of this user ends, open websockets close."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        do_sign_out_everywhere(request.user)  # type: ignore[arg-type]
        return Response(status=204)


@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    """The account menu's "Sign out everywhere" (browser, CSRF-protected form)."""
    if request.user.is_authenticated:
        do_sign_out_everywhere(request.user)  # type: ignore[arg-type]
        logout(request)
    return redirect("/login/")
