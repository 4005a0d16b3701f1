"""Inbox events: written in the same transaction as the change they describe, pushed only after commit.

Every transaction that records events first takes a per-schema advisory lock, held until commit, so event
ids become visible in increasing order: a client that has seen id N has seen every committed event below N.
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


def record_event(event_type: str, **objects: Any) -> InboxEvent | None:
    """Store an event (`message.created`, ...) with its objects in API shape; publish it after commit."""
    if _suppressed.get():
        return None
    if not connection.in_atomic_block:
        raise RuntimeError("inbox events are recorded inside the action's transaction")
    schema_name = current_schema()
    publisher = _publisher_of_this_transaction(schema_name)
    if publisher is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [schema_name + ".inbox_events"])
        publisher = _PublishOnCommit(schema_name)
        transaction.on_commit(publisher)
    event = InboxEvent.objects.create(type=event_type, payload=objects)
    publisher.frames.append(event.frame())
    return event


def events_after(after_id: int, limit: int = 500) -> list[dict[str, Any]]:
    return [event.frame() for event in InboxEvent.objects.filter(pk__gt=after_id).order_by("pk")[:limit]]


def last_event_id() -> int:
    return InboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
