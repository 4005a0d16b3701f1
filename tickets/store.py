"""Where tickets.actions keeps tickets and the reporting store: the database, or for a bulk history import a
store that writes behind (tickets/management/load_history.py). The actions read and write only through
`current()`, so an import changes how rows reach the database, never what is measured or counted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import F
from django.utils import timezone

from conversations.models import Conversation
from helpdesk.db.rows import update_rows
from helpdesk.tenancy.models import Membership, Role, User
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

    def pick_assignee(self, rules: Any) -> User | None:
        """Round robin among the tenant's available agents: the one assigned least recently."""
        membership = (
            Membership.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .filter(tenant_id=rules.tenant_id, role=Role.AGENT, is_available=True, user__is_active=True)
            .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
            .first()
        )
        if membership is None:
            return None
        Membership.objects.filter(pk=membership.pk).update(last_assigned_at=timezone.now())
        return membership.user

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


class BatchStore(TicketStore):
    """The database, for a transaction that applies many changes (a batch of webhook items): counters and
    conversation days are added up in memory and written once at the end (`flush`), so a batch locks each
    counter row once, after every conversation it touches (the lock order), instead of once per message; and
    round-robin assignment reads the agents once and records their turns once."""

    def __init__(self) -> None:
        self.counts: dict[tuple[Any, int, int, str], int] = {}
        self.days: dict[tuple[Any, int], int] = {}  # (day, conversation id) -> number id
        self._agents: list[Membership] | None = None
        self._assigned: dict[int, datetime] = {}  # membership id -> when it was last given a ticket
        self._tickets: dict[int, Ticket] = {}  # locked by this batch already
        self._deferring = False
        self._new_tickets: dict[int, Ticket] = {}
        self._changed_tickets: dict[int, Ticket] = {}
        self._ticket_ids: list[int] = []

    def preload_tickets(self, tickets: list[Ticket]) -> None:
        """Tickets the caller has locked (SELECT ... FOR UPDATE) for the whole batch."""
        self._tickets.update((ticket.pk, ticket) for ticket in tickets)

    def lock_ticket(self, pk: int) -> Ticket | None:
        return self._tickets.get(pk) or super().lock_ticket(pk)

    def save_ticket(self, ticket: Ticket, fields: list[str] | None = None) -> None:
        if not self._deferring:
            super().save_ticket(ticket, fields)
        elif ticket.pk is None:
            ticket.pk = self._next_ticket_id()
            self._new_tickets[ticket.pk] = ticket
        elif ticket.pk not in self._new_tickets:
            self._changed_tickets[ticket.pk] = ticket
        self._tickets[ticket.pk] = ticket

    @contextmanager
    def deferred_tickets(self) -> Iterator[None]:
        """Tickets saved in the block are written at its end: the new ones in one INSERT (their ids drawn from
        the sequence beforehand, so rows can point at them meanwhile: PostgreSQL checks foreign keys at
        commit), the changed ones in one UPDATE, each once however often it changed."""
        self._deferring = True
        try:
            yield
            Ticket.objects.bulk_create(self._new_tickets.values())
            changed = sorted(self._changed_tickets.values(), key=lambda ticket: ticket.pk)
            update_rows(Ticket, changed, _TICKET_FIELDS)
        finally:
            self._deferring = False
            self._new_tickets, self._changed_tickets = {}, {}

    def _next_ticket_id(self) -> int:
        if not self._ticket_ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, 100)",
                    [Ticket._meta.db_table],
                )
                self._ticket_ids = [row[0] for row in cursor.fetchall()]
        return self._ticket_ids.pop(0)

    def set_current_ticket(self, conversation: Conversation, ticket: Ticket) -> None:
        """In memory only: every caller in a batch saves the conversation afterwards."""
        conversation.current_ticket = ticket

    def checkpoint(self) -> tuple[dict[Any, int], dict[Any, int]]:
        return dict(self.counts), dict(self.days)

    def rollback_to(self, checkpoint: tuple[dict[Any, int], dict[Any, int]]) -> None:
        """Forget what was counted since `checkpoint` (its change was rolled back to a savepoint), and the
        tickets in memory, which may hold what was rolled back (they are read again, locked, when needed)."""
        self.counts, self.days = dict(checkpoint[0]), dict(checkpoint[1])
        self._tickets, self._new_tickets, self._changed_tickets = {}, {}, {}

    def mark_conversation_day(self, row: ConversationDay) -> None:
        self.days[(row.day, row.conversation_id)] = row.number_id

    def count(self, day: Any, number_id: int, agent_id: int, field: str) -> None:
        key = (day, number_id, agent_id, field)
        self.counts[key] = self.counts.get(key, 0) + 1

    def pick_assignee(self, rules: Any) -> User | None:
        """Round robin as the database store does, over the agents as they were when the batch first asked."""
        if self._agents is None:
            self._agents = _available_agents(rules.tenant_id)
        if not self._agents:
            return None
        membership = self._agents.pop(0)
        self._agents.append(membership)  # the least recently assigned is now the most recent
        self._assigned[membership.pk] = timezone.now()
        return membership.user

    def flush(self) -> None:
        """Write what the batch counted: one statement per kind of row, in a fixed order."""
        if self.days:
            ConversationDay.objects.bulk_create(
                [
                    ConversationDay(day=day, conversation_id=conversation_id, number_id=number_id)
                    for (day, conversation_id), number_id in sorted(self.days.items())
                ],
                ignore_conflicts=True,
            )
        if self.counts:
            _add_counts(self.counts)
        for membership_id, at in sorted(self._assigned.items()):
            Membership.objects.filter(pk=membership_id).update(last_assigned_at=at)
        self.counts, self.days, self._assigned, self._tickets = {}, {}, {}, {}


def _available_agents(tenant_id: int) -> list[Membership]:
    """The tenant's available agents, the least recently assigned first."""
    return list(
        Membership.objects.select_related("user")
        .filter(tenant_id=tenant_id, role=Role.AGENT, is_available=True, user__is_active=True)
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
    )


def _add_counts(counts: dict[tuple[Any, int, int, str], int]) -> None:
    """Add to many daily counters in one upsert (rows in key order, so concurrent writers never deadlock)."""
    rows: dict[tuple[Any, int, int], dict[str, int]] = {}
    for (day, number_id, agent_id, field), amount in counts.items():
        rows.setdefault((day, number_id, agent_id), dict.fromkeys(COUNTERS, 0))[field] += amount
    values = []
    params: list[Any] = []
    for key, fields in sorted(rows.items()):
        values.append(f"(%s, %s, %s, {', '.join('%s' for _ in COUNTERS)})")
        params.extend([*key, *(fields[name] for name in COUNTERS)])
    table = DailyVolume._meta.db_table
    added = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in COUNTERS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, number_id, agent_id, {', '.join(COUNTERS)}) VALUES {', '.join(values)} "  # noqa: S608
            f"ON CONFLICT (day, number_id, agent_id) DO UPDATE SET {added}",
            params,
        )


DATABASE = TicketStore()
_TICKET_FIELDS = [field.name for field in Ticket._meta.concrete_fields if not field.primary_key]
_current: ContextVar[TicketStore | None] = ContextVar("ticket_store", default=None)


def current() -> TicketStore:
    return _current.get() or DATABASE


AnyStore = TypeVar("AnyStore", bound=TicketStore)


@contextmanager
def using(store: AnyStore) -> Iterator[AnyStore]:
    """Run the block's ticket actions against `store` instead of the database."""
    token = _current.set(store)
    try:
        yield store
    finally:
        _current.reset(token)
