"""Deadlines of the current tenant: SLA targets (warned at the tenant's share of the target, default 80%) and
the 24-hour customer-service window (warned before it closes, default 2 hours). Each warning and each breach
is raised once; breaches and unanswered window expiries are recorded for reports at the moment they happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q

from conversations.events import record_event
from tickets import actions, store
from tickets.models import Ticket, TicketStatus
from tickets.serializers import ticket_data

ACTIVE = (TicketStatus.OPEN, TicketStatus.PENDING)


Notify = Callable[[str, Ticket, datetime | None, bool], None]


def raise_due_warnings(now: datetime) -> int:
    """The periodic check of the current tenant: every active ticket with something due at `now`."""
    rules = actions.support_rules()
    warn_before = timedelta(minutes=rules.settings.window_warning_minutes)
    due = (
        Q(response_warn_at__lte=now, response_warned_at__isnull=True, waiting_since__isnull=False)
        | Q(response_due_at__lte=now, response_breached_at__isnull=True, waiting_since__isnull=False)
        | Q(resolution_warn_at__lte=now, resolution_warned_at__isnull=True)
        | Q(resolution_due_at__lte=now, resolution_breached_at__isnull=True)
        | Q(
            waiting_since__isnull=False,
            conversation__current_ticket=F("pk"),
            conversation__window_expires_at__lte=now + warn_before,
        )
    )
    # One transaction per ticket, so that the sweep keeps the lock order of every action (the ticket, then
    # the counters, then the inbox-event lock) and never holds one ticket while it waits for another.
    raised = 0
    for ticket_id in (
        Ticket.objects.filter(due, status__in=ACTIVE).order_by("pk").values_list("pk", flat=True)
    ):
        with transaction.atomic():
            # of=("self",): the nullable joins cannot be locked (PostgreSQL refuses FOR UPDATE on them).
            ticket = (
                Ticket.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("assignee", "conversation")
                .filter(pk=ticket_id, status__in=ACTIVE)
                .first()
            )
            if ticket is None:
                continue  # changed meanwhile, or busy: the next run sees it
            window_end = ticket.conversation.window_expires_at
            if ticket.conversation.current_ticket_id != ticket.pk:
                window_end = None
            raised += sweep_ticket(rules, ticket, window_end, now, notify=_frame)
    return raised


def sweep_ticket(
    rules: actions.SupportRules,
    ticket: Ticket,
    window_end: datetime | None,
    now: datetime,
    notify: Notify | None = None,
) -> int:
    """What is due for one ticket at `now`: each warning once, each breach once (recorded at its deadline),
    and the 24-hour window of its conversation (`window_end`, for the conversation's current ticket)."""
    if ticket.status not in ACTIVE:
        return 0
    notices: list[tuple[str, datetime | None, bool]] = []
    fields: list[str] = []
    if ticket.waiting_since is not None:
        kind = "first_response" if ticket.awaiting_first_response else "next_response"
        if ticket.response_warn_at and ticket.response_warn_at <= now and ticket.response_warned_at is None:
            ticket.response_warned_at = now
            fields.append("response_warned_at")
            notices.append((kind, ticket.response_due_at, False))
        if ticket.response_due_at and ticket.response_due_at <= now and ticket.response_breached_at is None:
            actions._sla_outcome(
                rules, kind, ticket, ticket.waiting_since, ticket.response_due_at, False, ticket.assignee_id
            )
            ticket.response_breached_at = now
            fields.append("response_breached_at")
            notices.append((kind, ticket.response_due_at, True))
    if ticket.resolution_warn_at and ticket.resolution_warn_at <= now and ticket.resolution_warned_at is None:
        ticket.resolution_warned_at = now
        fields.append("resolution_warned_at")
        notices.append(("resolution", ticket.resolution_due_at, False))
    if ticket.resolution_due_at and ticket.resolution_due_at <= now and ticket.resolution_breached_at is None:
        actions._sla_outcome(
            rules,
            "resolution",
            ticket,
            ticket.cycle_started_at,
            ticket.resolution_due_at,
            False,
            ticket.assignee_id,
        )
        ticket.resolution_breached_at = now
        fields.append("resolution_breached_at")
        notices.append(("resolution", ticket.resolution_due_at, True))
    warn_before = timedelta(minutes=rules.settings.window_warning_minutes)
    if ticket.waiting_since is not None and window_end is not None and window_end <= now + warn_before:
        if window_end <= now:
            if actions.record_window_expired(rules, ticket, window_end):
                fields.append("window_expired_for")
                notices.append(("window", window_end, True))
        elif ticket.window_warned_for != window_end:
            ticket.window_warned_for = window_end
            fields.append("window_warned_for")
            notices.append(("window", window_end, False))
    if fields:
        store.current().save_ticket(ticket, fields)
    for kind, due_at, passed in notices if notify else ():
        notify(kind, ticket, due_at, passed)  # type: ignore[misc]
    return len(notices)


def _frame(kind: str, ticket: Ticket, due_at: datetime | None, passed: bool) -> None:
    """The live frame of one notice: sla.warning / sla.breached / window.warning / window.expired."""
    if kind == "window":
        event = "window.expired" if passed else "window.warning"
    else:
        event = "sla.breached" if passed else "sla.warning"
    record_event(
        event,
        warning={
            "kind": kind,
            "due_at": due_at.isoformat() if due_at else None,
            "passed": passed,
            "ticket_id": ticket.pk,
            "conversation_id": ticket.conversation_id,
        },
        ticket=ticket_data(ticket),
    )
