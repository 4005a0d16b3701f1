"""Meta's webhook POST, served in front of Django's request stack (`helpdesk.asgi`).

A webhook needs none of what a page or the API needs (sessions, CSRF, the tenant of the host, throttling,
security headers, URL routing): at Meta's rates that stack cost more than the work itself. So a POST to
`/webhooks/whatsapp/` on the public domain is read here and handed to the same `webhooks.ingest` the Django
view calls (in a worker thread, with a pooled connection), and answered in the same shape. Everything else,
the handshake (GET) included, goes on to Django.

A request that finds every pooled database connection busy, or that waited longer than DB_POOL_TIMEOUT for one
of the process's webhook threads (one per pooled connection), is answered 503 with `Retry-After`, like any
other (helpdesk.api_errors.server_error); so is one that arrives while the process already holds
QUEUE_PER_THREAD webhooks per thread (answered at once, from the event loop). Under overload an answer never
takes much longer than that timeout, and Meta sends the refused ones again.
A body over DATA_UPLOAD_MAX_MEMORY_SIZE gets 413.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port

from conversations import webhooks
from helpdesk.api_errors import RETRY_AFTER_SECONDS, database_busy

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[..., Awaitable[None]]  # an ASGI application (Django's handler among them)

PATH = "/webhooks/whatsapp/"
# Webhooks a process holds (running or queued for a thread) per webhook thread before it answers 503 at once.
QUEUE_PER_THREAD = 8
_waiting = 0  # touched by the event loop only


class WebhookFastPath:
    """ASGI middleware: the webhook POST handled here, anything else passed to `app` (Django)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH and _public(scope):
            await _serve(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _public(scope: Scope) -> bool:
    """Only the public domain serves the webhook (a tenant's domain answers 404, from Django)."""
    domain, _ = split_domain_port(_header(scope, b"host") or "")
    return domain == settings.PUBLIC_DOMAIN.lower()


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    body = bytearray()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if limit is not None and len(body) > limit:
            await _answer(send, 413, {"detail": "The body is too large.", "code": "too_large"})
            return
        if not message.get("more_body"):
            break
    global _waiting
    if _waiting >= QUEUE_PER_THREAD * settings.DB_POOL_MAX_SIZE:
        # Shed load here, in the event loop: queued any longer, the answer would come after Meta gave up.
        await _busy(send)
        return
    arrived = time.monotonic()
    _waiting += 1
    try:
        result = await asyncio.get_running_loop().run_in_executor(
            _executor(), _ingest, bytes(body), _header(scope, b"x-hub-signature-256"), arrived
        )
    except Exception as exc:
        if not isinstance(exc, Overloaded) and not database_busy():
            log.exception("webhook ingest failed")
            await _answer(send, 500, {"detail": "Server error.", "code": "server_error"})
            return
        await _busy(send)
        return
    finally:
        _waiting -= 1
    answer = {"detail": result.detail, "code": result.code} if result.code else {"detail": result.detail}
    await _answer(send, result.status, answer)


async def _busy(send: Send) -> None:
    await _answer(
        send,
        503,
        {"detail": "Busy; retry shortly.", "code": "overloaded"},
        ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),),
    )


class Overloaded(Exception):
    """The request waited for a thread longer than it may wait for a database connection."""


_threads: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """As many threads as the process has pooled connections: more could only wait for one."""
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(settings.DB_POOL_MAX_SIZE, thread_name_prefix="webhook")
    return _threads


def _ingest(body: bytes, signature: str | None, arrived: float) -> webhooks.IngestResult:
    """`webhooks.ingest` in a worker thread; its connection goes back to the pool afterwards (what Django's
    request_finished would do). A request that queued for a thread longer than DB_POOL_TIMEOUT is refused
    (503) without touching the database: under overload the wait stays bounded instead of growing."""
    if time.monotonic() - arrived > settings.DB_POOL_TIMEOUT:
        raise Overloaded
    try:
        return webhooks.ingest(body, signature)
    finally:
        close_old_connections()


async def _answer(
    send: Send, status: int, body: dict[str, str], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"x-content-type-options", b"nosniff"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
