"""Deadlines of the current tenant: SLA targets (warned at the tenant's share of the target, default 80%) and
the 24-hour customer-service window (warned before it closes, default 2 hours). Each warning and each breach
is raised once; breaches and unanswered window expiries are recorded for reports at the moment they happened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conversations.events import record_event
from conversations.models import Conversation
from tickets import actions
from tickets.models import Ticket, TicketStatus
from tickets.serializers import ticket_data

ACTIVE = (TicketStatus.OPEN, TicketStatus.PENDING)


def _warn(kind: str, ticket: Ticket, due_at: datetime | None, passed: bool) -> None:
    record_event(
        "sla.breached" if passed else "sla.warning",
        warning={
            "kind": kind,
            "due_at": due_at.isoformat() if due_at else None,
            "passed": passed,
            "ticket_id": ticket.pk,
            "conversation_id": ticket.conversation_id,
        },
        ticket=ticket_data(ticket),
    )


def raise_due_warnings(now: datetime) -> int:
    rules = actions.support_rules()
    raised = 0
    # of=("self",): the nullable assignee join cannot be locked (PostgreSQL refuses FOR UPDATE on it).
    locked = Ticket.objects.select_for_update(skip_locked=True, of=("self",)).select_related("assignee")
    waiting = locked.filter(status__in=ACTIVE, waiting_since__isnull=False)
    for ticket in waiting.filter(response_warn_at__lte=now, response_warned_at__isnull=True):
        ticket.response_warned_at = now
        ticket.save(update_fields=["response_warned_at"])
        _warn(
            "first_response" if ticket.awaiting_first_response else "next_response",
            ticket,
            ticket.response_due_at,
            passed=False,
        )
        raised += 1
    for ticket in waiting.filter(response_due_at__lte=now, response_breached_at__isnull=True):
        kind = "first_response" if ticket.awaiting_first_response else "next_response"
        actions._sla_outcome(
            rules,
            kind,
            ticket,
            ticket.waiting_since,  # type: ignore[arg-type]  # the query filtered on both
            ticket.response_due_at,  # type: ignore[arg-type]
            False,
            ticket.assignee_id,
        )
        ticket.response_breached_at = now
        ticket.save(update_fields=["response_breached_at"])
        _warn(kind, ticket, ticket.response_due_at, passed=True)
        raised += 1
    active = locked.filter(status__in=ACTIVE)
    for ticket in active.filter(resolution_warn_at__lte=now, resolution_warned_at__isnull=True):
        ticket.resolution_warned_at = now
        ticket.save(update_fields=["resolution_warned_at"])
        _warn("resolution", ticket, ticket.resolution_due_at, passed=False)
        raised += 1
    for ticket in active.filter(resolution_due_at__lte=now, resolution_breached_at__isnull=True):
        actions._sla_outcome(
            rules,
            "resolution",
            ticket,
            ticket.cycle_started_at,
            ticket.resolution_due_at,  # type: ignore[arg-type]
            False,
            ticket.assignee_id,
        )
        ticket.resolution_breached_at = now
        ticket.save(update_fields=["resolution_breached_at"])
        _warn("resolution", ticket, ticket.resolution_due_at, passed=True)
        raised += 1
    raised += _window_deadlines(rules, now)
    return raised


def _window_deadlines(rules: Any, now: datetime) -> int:
    raised = 0
    warn_before = timedelta(minutes=rules.settings.window_warning_minutes)
    conversations = Conversation.objects.select_related("current_ticket").filter(
        current_ticket__status__in=ACTIVE,
        current_ticket__waiting_since__isnull=False,
        window_expires_at__isnull=False,
        window_expires_at__lte=now + warn_before,
    )
    for conversation in conversations:
        assert conversation.current_ticket_id is not None  # the query filtered on the current ticket
        ticket = Ticket.objects.select_for_update().get(pk=conversation.current_ticket_id)
        window_end = conversation.window_expires_at
        assert window_end is not None
        if window_end <= now:
            if actions.record_window_expired(rules, ticket, window_end):
                ticket.save(update_fields=["window_expired_for"])
                _window_frame(ticket, window_end, passed=True)
                raised += 1
        elif ticket.window_warned_for != window_end:
            ticket.window_warned_for = window_end
            ticket.save(update_fields=["window_warned_for"])
            _window_frame(ticket, window_end, passed=False)
            raised += 1
    return raised


def _window_frame(ticket: Ticket, window_end: datetime, passed: bool) -> None:
    record_event(
        "window.expired" if passed else "window.warning",
        warning={
            "kind": "window",
            "due_at": window_end.isoformat(),
            "passed": passed,
            "ticket_id": ticket.pk,
            "conversation_id": ticket.conversation_id,
        },
        ticket=ticket_data(ticket),
    )
