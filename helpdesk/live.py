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


async def _send_all(group: str, frames: list[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    assert layer is not None
    for frame in frames:
        await layer.group_send(group, {"type": "inbox.event", "frame": frame})


def publish(schema_name: str, frames: Iterable[dict[str, Any]], wait_seconds: float = 2.0) -> None:
    batch = list(frames)
    if not batch:
        return
    future = asyncio.run_coroutine_threadsafe(_send_all(inbox_group(schema_name), batch), _publisher_loop())
    try:
        future.result(timeout=wait_seconds)
    except FutureTimeout:
        log.warning(
            "publishing %d frames to %s is slow; clients will resume from the log", len(batch), schema_name
        )
    except Exception:
        log.exception(
            "publishing %d frames to %s failed; clients will resume from the log", len(batch), schema_name
        )
