"""Where tickets.actions keeps tickets and the reporting store: the database, or for a bulk history import a
store that writes behind (tickets/management/load_history.py). The actions read and write only through
`current()`, so an import changes how rows reach the database, never what is measured or counted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import connection
from django.db.models import F

from conversations.models import Conversation
from tickets.models import ConversationDay, DailyVolume, ReportingEvent, Ticket, conversation_status_of

# The DailyVolume counter of each measured interval (tickets/intervals.py).
MEASURE_COUNTERS = {"first_response": "first_responses", "response": "responses", "resolution": "resolutions"}
COUNTERS = (
    "messages_in",
    "messages_out",
    "tickets_opened",
    "sla_met",
    "sla_breached",
    "windows_expired",
    *MEASURE_COUNTERS.values(),
)


class TicketStore:
    """The database (the default)."""

    def lock_conversation(self, pk: int) -> None:
        """Lock a conversation's row: actions that touch a conversation lock it before its ticket."""
        list(Conversation.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True))

    def lock_ticket(self, pk: int) -> Ticket | None:
        return Ticket.objects.select_for_update().filter(pk=pk).first()

    def save_ticket(self, ticket: Ticket, fields: list[str] | None = None) -> None:
        ticket.save(update_fields=fields) if fields else ticket.save()

    def set_current_ticket(self, conversation: Conversation, ticket: Ticket) -> None:
        conversation.current_ticket = ticket
        Conversation.objects.filter(pk=conversation.pk).update(current_ticket=ticket)

    def follow_ticket_status(self, ticket: Ticket) -> None:
        """The conversation's status follows its current ticket (an older ticket of it changes nothing)."""
        status = conversation_status_of(ticket.status)
        Conversation.objects.filter(pk=ticket.conversation_id, current_ticket_id=ticket.pk).exclude(
            status=status
        ).update(status=status)

    def add_event(self, event: ReportingEvent) -> ReportingEvent:
        event.save()
        return event

    def mark_conversation_day(self, row: ConversationDay) -> None:
        ConversationDay.objects.bulk_create([row], ignore_conflicts=True)

    def count(self, day: Any, number_id: int, agent_id: int, field: str) -> None:
        """Add one to a daily counter (an upsert: safe under concurrent workers)."""
        key = {"day": day, "number_id": number_id, "agent_id": agent_id}
        if DailyVolume.objects.filter(**key).update(**{field: F(field) + 1}):
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {DailyVolume._meta.db_table} (day, number_id, agent_id, {', '.join(COUNTERS)}) "  # noqa: S608
                f"VALUES (%s, %s, %s, {', '.join('0' for _ in COUNTERS)}) "
                "ON CONFLICT (day, number_id, agent_id) DO NOTHING",
                [day, number_id, agent_id],
            )
        DailyVolume.objects.filter(**key).update(**{field: F(field) + 1})


DATABASE = TicketStore()
_current: ContextVar[TicketStore | None] = ContextVar("ticket_store", default=None)


def current() -> TicketStore:
    return _current.get() or DATABASE


@contextmanager
def using(store: TicketStore) -> Iterator[TicketStore]:
    """Run the block's ticket actions against `store` instead of the database."""
    token = _current.set(store)
    try:
        yield store
    finally:
        _current.reset(token)
