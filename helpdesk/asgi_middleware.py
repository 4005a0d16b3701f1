"""Websocket scope middleware: the tenant from the Host header, and API-token authentication.

django-tenants does nothing for websockets, so the tenant is resolved here into `scope["tenant"]`; the
consumer then opens that tenant's schema inside every database call it makes.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port
from django_tenants.utils import get_public_schema_name
from rest_framework.authtoken.models import Token

from helpdesk.tenancy.models import Domain, Tenant

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


@database_sync_to_async
def _tenant_for_host(hostname: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    if domain is None or domain.tenant.schema_name == get_public_schema_name():
        return None
    return domain.tenant


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else None


class TenantMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        hostname, _port = split_domain_port(_header(scope, b"host"))
        scope = dict(scope, tenant=await _tenant_for_host(hostname.lower()) if hostname else None)
        return await self.inner(scope, receive, send)


class TokenAuthMiddleware:
    """`Authorization: Token <key>` on the handshake authenticates like the REST API; else the session does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        authorization = _header(scope, b"authorization")
        if authorization.startswith("Token "):
            user = await _user_for_token(authorization.removeprefix("Token ").strip())
            scope = dict(scope, user=user or AnonymousUser())
        return await self.inner(scope, receive, send)
