"""Websocket scope middleware: same-origin handshakes only, and what the handshake presents (the Host's name, an
API token or else the session cookie) read into `scope["handshake"]`, without the database.

django-tenants does nothing for websockets: the inbox consumer resolves the tenant from that host name, the
credential, the user and their membership in one database statement (conversations/socket_access.py), and
then opens the tenant's schema inside every database call it makes.
"""

from __future__ import annotations

import binascii
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port
from knox.crypto import hash_token

from conversations.socket_access import Handshake

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


def token_digest(key: str) -> str:
    """The digest knox stores for an API token ("" for a key that cannot be one: it matches no token)."""
    try:
        return str(hash_token(key))
    except (TypeError, ValueError, UnicodeError, binascii.Error):
        return ""


def read_handshake(scope: Scope) -> Handshake:
    """`Authorization: Token <key>` authenticates like the REST API (and then only the token counts); else the
    session cookie does."""
    hostname, _port = split_domain_port(_header(scope, b"host"))
    authorization = _header(scope, b"authorization")
    if authorization.startswith("Token "):
        return Handshake(
            hostname.lower(), token_digest=token_digest(authorization.removeprefix("Token ").strip())
        )
    session_key = parse_cookie(_header(scope, b"cookie")).get(settings.SESSION_COOKIE_NAME)
    # Django's session stores refuse keys shorter than 8 characters (SessionBase._validate_session_key).
    return Handshake(
        hostname.lower(), session_key=session_key if session_key and len(session_key) >= 8 else None
    )


class HandshakeMiddleware:
    """`scope["handshake"]`: the host name and credential the consumer admits in one database statement."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        return await self.inner(dict(scope, handshake=read_handshake(scope)), receive, send)
