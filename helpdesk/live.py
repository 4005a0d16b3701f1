"""Publishing frames to browsers over the channel layer, from any sync code (web, Celery, commands).

A process keeps one event loop in a daemon thread, so the channel layer keeps one Redis connection instead
of opening a new one per message (`async_to_sync` per call would). Publishing is best effort: the layer is
at-most-once, and clients recover anything lost from the event log when they resume.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _loop = loop
        return _loop


def inbox_group(schema_name: str) -> str:
    """Channel-layer group of a tenant's inbox; built from the schema name, never from a Host header."""
    return f"inbox.{schema_name}"


def user_group(user_id: int) -> str:
    """Channel-layer group of one user's open websockets, in every tenant."""
    return f"user.{int(user_id)}"


async def _send_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    for group, message in sends:
        await layer.group_send(group, message)


def _send(group: str, messages: list[dict[str, Any]], wait_seconds: float) -> None:
    _send_to([(group, message) for message in messages], wait_seconds)


def _send_to(sends: list[tuple[str, dict[str, Any]]], wait_seconds: float) -> None:
    future = asyncio.run_coroutine_threadsafe(_send_all(sends), _publisher_loop())
    groups = sorted({group for group, _ in sends})
    try:
        future.result(timeout=wait_seconds)
    except FutureTimeout:
        log.warning("publishing %d messages to %s is slow", len(sends), ", ".join(groups))
    except Exception:
        log.exception("publishing %d messages to %s failed", len(sends), ", ".join(groups))


def publish(schema_name: str, frames: Iterable[dict[str, Any]], wait_seconds: float = 2.0) -> None:
    """Frames to a tenant's inbox sockets; clients resume from the event log whatever is lost."""
    batch = [{"type": "inbox.event", "frame": frame} for frame in frames]
    if batch:
        _send(inbox_group(schema_name), batch, wait_seconds)


def publish_revocation(
    user_id: int,
    schema_name: str | None = None,
    tenant_schemas: Iterable[str] = (),
    wait_seconds: float = 2.0,
) -> None:
    """Close a user's open websockets: in one tenant (membership removed) or everywhere (deactivated, password
    changed, signed out everywhere). To the user's group, and to the inbox groups of `tenant_schemas` (the
    tenants the user was a member of) with the user's id: a socket joins its tenant's group before its access is
    checked, and the user's only once that check has said who it is, so a revocation committed in between is
    heard there. Sockets also re-check periodically, should these messages be lost."""
    message: dict[str, Any] = {"type": "access.revoked", "schema": schema_name}
    sends = [(user_group(user_id), message)]
    sends += [
        (inbox_group(schema), {**message, "user": int(user_id)}) for schema in sorted(set(tenant_schemas))
    ]
    _send_to(sends, wait_seconds)
