"""Inbox events: written in the same transaction as the change they describe, pushed only after commit.

Every transaction that records events first takes a per-schema advisory lock, held until commit, so event
ids become visible in increasing order: a client that has seen id N has seen every committed event below N.

A transaction that applies many changes (a batch of webhook items) buffers its events instead (`buffered()`)
and writes them in one statement at its end (`flush`), taking that lock only then: the lock stays the last one
taken (the lock order in conversations/actions.py), and a batch costs one lock and one INSERT, not one each
per change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection, transaction

from conversations.models import InboxEvent
from helpdesk import live
from helpdesk.tenancy.access import current_schema


class _PublishOnCommit:
    """The frames of one transaction; Django calls this after commit and drops it on rollback."""

    def __init__(self, schema_name: str) -> None:
        self.schema_name = schema_name
        self.frames: list[dict[str, Any]] = []

    def __call__(self) -> None:
        live.publish(self.schema_name, self.frames)


def _publisher_of_this_transaction(schema_name: str) -> _PublishOnCommit | None:
    for pending in connection.run_on_commit:
        callback = pending[1]  # (savepoint ids, callback, robust)
        if isinstance(callback, _PublishOnCommit) and callback.schema_name == schema_name:
            return callback
    return None


_suppressed: ContextVar[bool] = ContextVar("inbox_events_suppressed", default=False)


def enabled() -> bool:
    """Whether changes are recorded as inbox events now (a bulk history import switches them off)."""
    return not _suppressed.get()


@contextmanager
def suppressed() -> Iterator[None]:
    """No inbox events in this block: for importing history nobody is watching live."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


class EventBuffer:
    """The events of a batch, in the order they were recorded, until `flush` writes them."""

    def __init__(self) -> None:
        self.events: list[InboxEvent] = []

    def checkpoint(self) -> int:
        return len(self.events)

    def rollback_to(self, checkpoint: int) -> None:
        """Forget the events recorded since `checkpoint` (their change was rolled back to a savepoint)."""
        del self.events[checkpoint:]

    def flush(self) -> None:
        """Write the buffered events in one INSERT, inside the batch's transaction; publish after commit."""
        if self.events:
            publisher = _event_lock_and_publisher()
            publisher.frames.extend(event.frame() for event in InboxEvent.objects.bulk_create(self.events))
            self.events = []


_buffer: ContextVar[EventBuffer | None] = ContextVar("inbox_event_buffer", default=None)


@contextmanager
def buffered() -> Iterator[EventBuffer]:
    """Buffer the block's events; the caller flushes them before its transaction commits."""
    buffer = EventBuffer()
    token = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(token)


def _event_lock_and_publisher() -> _PublishOnCommit:
    """The per-schema event lock (taken once per transaction) and the transaction's after-commit publisher."""
    schema_name = current_schema()
    publisher = _publisher_of_this_transaction(schema_name)
    if publisher is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [schema_name + ".inbox_events"])
        publisher = _PublishOnCommit(schema_name)
        transaction.on_commit(publisher)
    return publisher


def record_event(event_type: str, **objects: Any) -> None:
    """Store an event (`message.created`, ...) with its objects in API shape; publish it after commit."""
    if _suppressed.get():
        return
    if not connection.in_atomic_block:
        raise RuntimeError("inbox events are recorded inside the action's transaction")
    buffer = _buffer.get()
    if buffer is not None:
        buffer.events.append(InboxEvent(type=event_type, payload=objects))
        return
    publisher = _event_lock_and_publisher()
    publisher.frames.append(InboxEvent.objects.create(type=event_type, payload=objects).frame())


def events_after(after_id: int, limit: int = 500) -> list[dict[str, Any]]:
    return [event.frame() for event in InboxEvent.objects.filter(pk__gt=after_id).order_by("pk")[:limit]]


def last_event_id() -> int:
    return InboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
