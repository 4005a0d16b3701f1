"""Websocket scope middleware: same-origin handshakes only, the tenant from the Host header, and API-token
authentication.

django-tenants does nothing for websockets, so the tenant is resolved here into `scope["tenant"]`; the
consumer then opens that tenant's schema inside every database call it makes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port
from django_tenants.utils import get_public_schema_name
from rest_framework.exceptions import AuthenticationFailed

from helpdesk.tenancy.authentication import TokenAuthentication
from helpdesk.tenancy.models import Domain, Tenant

Scope = dict[str, Any]
DEFAULT_PORTS = {"http": "80", "https": "443"}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def same_origin(origin: str, host: str) -> bool:
    """Whether a handshake's Origin names the very host it connects to (the tenant's): the Origin's host and
    port must equal the Host header's, a scheme's default port (http 80, https 443) written or not."""
    if not origin or not host:
        return False
    try:
        parts = urlsplit(origin)
        origin_port = str(parts.port or "")
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path or parts.username:
        return False
    host_name, host_port = split_domain_port(host.lower())
    if not host_name:
        return False
    default = DEFAULT_PORTS[parts.scheme]
    return (parts.hostname.lower(), origin_port or default) == (host_name.strip("[]"), host_port or default)


@database_sync_to_async
def _tenant_for_host(hostname: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    if domain is None or domain.tenant.schema_name == get_public_schema_name():
        return None
    return domain.tenant


@database_sync_to_async
def _authenticate_token(key: str) -> tuple[Any, str | None]:
    """The user of a valid API token and the token's digest (expired and revoked tokens: no user). A use
    moves the token's idle expiry on, as on the REST API."""
    try:
        user, token = TokenAuthentication().authenticate_credentials(key.encode())
    except (AuthenticationFailed, UnicodeError):
        return None, None
    return user, token.digest


class SameOriginMiddleware:
    """Refuses (403) a handshake whose Origin is not the host it connects to. A missing Origin is refused too:
    browsers always send one, and other clients can."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not same_origin(
            _header(scope, b"origin"), _header(scope, b"host")
        ):
            return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)


class TenantMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        hostname, _port = split_domain_port(_header(scope, b"host"))
        scope = dict(scope, tenant=await _tenant_for_host(hostname.lower()) if hostname else None)
        return await self.inner(scope, receive, send)


class TokenAuthMiddleware:
    """`Authorization: Token <key>` on the handshake authenticates like the REST API (the token's digest goes in
    `scope["auth_token"]` for the consumer's re-checks); else the session does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        authorization = _header(scope, b"authorization")
        if authorization.startswith("Token "):
            user, digest = await _authenticate_token(authorization.removeprefix("Token ").strip())
            scope = dict(scope, user=user or AnonymousUser(), auth_token=digest)
        return await self.inner(scope, receive, send)
