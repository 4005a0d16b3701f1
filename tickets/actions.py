"""Ticket lifecycle, assignment, SLA clocks and the reporting store: every change is one function here.

conversations.actions calls `on_customer_message` and `on_outbound_message` inside its own transaction, so a
message, its ticket change and its measured intervals commit (or roll back) together. The API, the browser and
tasks change tickets only through `check_update_ticket`.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations import consent, events
from conversations.events import record_event
from conversations.models import Conversation, ConversationStatus, Message, SenderKind
from helpdesk.tenancy.access import current_schema
from helpdesk.tenancy.models import Membership, Role, Tenant, User
from tickets import satisfaction, store
from tickets.business_time import BusinessCalendar
from tickets.models import (
    BusinessHours,
    ConversationDay,
    Holiday,
    Priority,
    ReportingEvent,
    SLAPolicy,
    SupportSettings,
    Ticket,
    TicketStatus,
    conversation_status_of,
)

DEFAULT_HOURS = {weekday: [("08:00", "17:00")] for weekday in range(5)}  # Monday to Friday
HOUR = 3600
DEFAULT_SLA = {  # business seconds: first response, next response, resolution
    Priority.URGENT: (15 * 60, 30 * 60, 4 * HOUR),
    Priority.HIGH: (HOUR, 2 * HOUR, 8 * HOUR),
    Priority.NORMAL: (4 * HOUR, 8 * HOUR, 24 * HOUR),
    Priority.LOW: (8 * HOUR, 16 * HOUR, 72 * HOUR),
}
CACHE_SECONDS = 30.0


class TicketError(Exception):
    code = "invalid"
    http_status = 400


class TicketForbidden(TicketError):
    code = "forbidden"
    http_status = 403


# ------------------------------------------------------------------ the tenant's calendar and policies


@dataclass(frozen=True)
class SupportRules:
    tenant_id: int
    calendar: BusinessCalendar
    settings: SupportSettings
    policies: dict[str, SLAPolicy]


_rules_cache: dict[str, tuple[float, SupportRules]] = {}


def ensure_defaults() -> None:
    """A new tenant's sensible defaults, applied once, when its settings row is first made: Monday to Friday
    08:00-17:00 and an SLA policy per priority. Afterwards the admin's choices stand, even no hours at all."""
    if SupportSettings.objects.exists():
        return
    with transaction.atomic():
        SupportSettings.current()
        BusinessHours.objects.bulk_create(
            BusinessHours(weekday=day, opens=opens, closes=closes)
            for day, intervals in DEFAULT_HOURS.items()
            for opens, closes in intervals
        )
        for priority, (first, following, resolution) in DEFAULT_SLA.items():
            SLAPolicy.objects.get_or_create(
                priority=priority,
                defaults={
                    "first_response_seconds": first,
                    "next_response_seconds": following,
                    "resolution_seconds": resolution,
                },
            )


def support_rules() -> SupportRules:
    """The current tenant's calendar, settings and SLA policies (cached briefly per process)."""
    schema = current_schema()
    cached = _rules_cache.get(schema)
    if cached and clock.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    ensure_defaults()
    weekly: dict[int, list[Any]] = {}
    for hours in BusinessHours.objects.all():
        weekly.setdefault(hours.weekday, []).append((hours.opens, hours.closes_at))
    # schema_context() leaves a stand-in tenant on the connection: read the real one.
    tenant = Tenant.objects.get(schema_name=schema)
    rules = SupportRules(
        tenant_id=tenant.pk,
        calendar=BusinessCalendar(
            tenant.timezone_name, weekly, frozenset(Holiday.objects.values_list("date", flat=True))
        ),
        settings=SupportSettings.current(),
        policies={policy.priority: policy for policy in SLAPolicy.objects.all()},
    )
    _rules_cache[schema] = (clock.monotonic(), rules)
    return rules


def forget_support_rules() -> None:
    _rules_cache.pop(current_schema(), None)


# ------------------------------------------------------------------ counting


def _count(day: Any, number_id: int, agent_id: int, field: str) -> None:
    store.current().count(day, number_id, agent_id, field)


def _measure(
    rules: SupportRules,
    name: str,
    ticket: Ticket,
    start: datetime,
    end: datetime,
    agent_id: int | None,
    **extra: Any,
) -> ReportingEvent:
    day = rules.calendar.local_date(end)
    if name in store.MEASURE_COUNTERS:
        # Counted with the row: how reports know whether a day's sealed intervals are complete.
        _count(day, ticket.number_id, agent_id or 0, store.MEASURE_COUNTERS[name])
    return store.current().add_event(
        ReportingEvent(
            name=name,
            day=day,
            event_start=start,
            event_end=end,
            value_seconds=max(0.0, (end - start).total_seconds()),
            value_business_seconds=rules.calendar.seconds_between(start, end),
            ticket=ticket,
            conversation_id=ticket.conversation_id,
            number_id=ticket.number_id,
            agent_id=agent_id,
            **extra,
        )
    )


def _sla_outcome(
    rules: SupportRules,
    kind: str,
    ticket: Ticket,
    start: datetime,
    end: datetime,
    met: bool,
    agent_id: int | None,
) -> None:
    _measure(rules, "sla", ticket, start, end, agent_id, sla_kind=kind, sla_met=met)
    _count(
        rules.calendar.local_date(end), ticket.number_id, agent_id or 0, "sla_met" if met else "sla_breached"
    )


def record_window_expired(rules: SupportRules, ticket: Ticket, window_end: datetime) -> bool:
    """The 24-hour window closed while the customer's message was unanswered: count it once per window."""
    if (
        ticket.waiting_since is None
        or ticket.waiting_since > window_end
        or ticket.window_expired_for == window_end
    ):
        return False
    _measure(rules, "window_expired", ticket, ticket.waiting_since, window_end, ticket.assignee_id)
    _count(
        rules.calendar.local_date(window_end), ticket.number_id, ticket.assignee_id or 0, "windows_expired"
    )
    ticket.window_expired_for = window_end
    return True


# ------------------------------------------------------------------ SLA clocks


def _deadline(
    rules: SupportRules, start: datetime, seconds: int | None, share: float = 1.0
) -> datetime | None:
    if not seconds:
        return None
    return rules.calendar.add_business_seconds(start, seconds * share)


def _start_wait(rules: SupportRules, ticket: Ticket, since: datetime, same_wait: bool = False) -> None:
    """Start (or, with `same_wait`, re-time) the customer's wait; a wait has one SLA outcome at most."""
    policy = rules.policies.get(ticket.priority)
    target = None
    if policy:
        target = (
            policy.first_response_seconds if ticket.awaiting_first_response else policy.next_response_seconds
        )
    ticket.waiting_since = since
    ticket.response_due_at = _deadline(rules, since, target)
    ticket.response_warn_at = _deadline(rules, since, target, rules.settings.sla_warning_percent / 100)
    ticket.response_warned_at = None
    if not same_wait:
        ticket.response_breached_at = None


def _start_resolution_clock(rules: SupportRules, ticket: Ticket, same_cycle: bool = False) -> None:
    policy = rules.policies.get(ticket.priority)
    target = policy.resolution_seconds if policy else None
    ticket.resolution_due_at = _deadline(rules, ticket.cycle_started_at, target)
    ticket.resolution_warn_at = _deadline(
        rules, ticket.cycle_started_at, target, rules.settings.sla_warning_percent / 100
    )
    ticket.resolution_warned_at = None
    if not same_cycle:
        ticket.resolution_breached_at = None


def _record_missed_targets(rules: SupportRules, ticket: Ticket, now: datetime, resolution: bool) -> None:
    """Clocks stopped after their target passed: count the breach the periodic check has not recorded yet
    (as deadlines.raise_due_warnings would have)."""
    if (
        ticket.waiting_since
        and ticket.response_due_at
        and ticket.response_breached_at is None
        and ticket.response_due_at <= now
    ):
        _sla_outcome(
            rules,
            "first_response" if ticket.awaiting_first_response else "next_response",
            ticket,
            ticket.waiting_since,
            ticket.response_due_at,
            False,
            ticket.assignee_id,
        )
        ticket.response_breached_at = now
    if (
        resolution
        and ticket.resolution_due_at
        and ticket.resolution_breached_at is None
        and ticket.resolution_due_at <= now
    ):
        _sla_outcome(
            rules,
            "resolution",
            ticket,
            ticket.cycle_started_at,
            ticket.resolution_due_at,
            False,
            ticket.assignee_id,
        )
        ticket.resolution_breached_at = now


def _stop_wait(ticket: Ticket) -> None:
    ticket.waiting_since = ticket.response_due_at = ticket.response_warn_at = None
    ticket.response_warned_at = ticket.response_breached_at = None


# ------------------------------------------------------------------ assignment


def pick_assignee(rules: SupportRules) -> User | None:
    """Round robin among the tenant's available agents: the one assigned least recently."""
    return store.current().pick_assignee(rules)


# ------------------------------------------------------------------ lifecycle hooks from conversations


def on_customer_message(
    conversation: Conversation, message: Message, previous_window_end: datetime | None
) -> Ticket | None:
    """A customer wrote: count it, then open a ticket, reopen a recently resolved one, or start / keep the wait.
    If their previous window closed while they were still waiting, that expiry is recorded first. A rating of
    the satisfaction question, or an opt-out / opt-in keyword, is answered by the helpdesk itself: it changes
    no ticket and starts no wait."""
    rules = support_rules()
    at = message.created_at
    day = rules.calendar.local_date(at)
    # The lock order (conversations/actions.py): the ticket before the reporting counters.
    ticket = (
        store.current().lock_ticket(conversation.current_ticket_id)
        if conversation.current_ticket_id
        else None
    )
    store.current().mark_conversation_day(
        ConversationDay(day=day, conversation=conversation, number_id=conversation.number_id)
    )
    _count(day, conversation.number_id, 0, "messages_in")
    if ticket and previous_window_end and previous_window_end < at:
        record_window_expired(rules, ticket, previous_window_end)
    answer = satisfaction.answer_of(message)
    if ticket and answer and answer[0] == ticket.pk:  # a rating: kept, and the ticket stays as it is
        if satisfaction.record_answer(rules, ticket, answer[1], at):
            store.current().save_ticket(ticket)
        conversation.current_ticket = ticket
        conversation.status = conversation_status_of(ticket.status)
        return ticket
    if consent.keyword_of(message):  # STOP / START: the helpdesk confirms it (conversations/consent.py)
        if ticket is None:
            conversation.status = ConversationStatus.RESOLVED  # nothing for anyone to do
            return None
        conversation.current_ticket = ticket
        conversation.status = conversation_status_of(ticket.status)
        return ticket
    reopen_window = timedelta(hours=rules.settings.reopen_window_hours)
    if ticket and ticket.status in (TicketStatus.OPEN, TicketStatus.PENDING):
        ticket.status = TicketStatus.OPEN
        if ticket.waiting_since is None:
            _start_wait(rules, ticket, at)
        elif at < ticket.waiting_since:  # an older message that arrived late starts the wait earlier
            _start_wait(rules, ticket, at, same_wait=True)
    elif (
        ticket
        and ticket.status == TicketStatus.RESOLVED
        and ticket.resolved_at
        and at - ticket.resolved_at <= reopen_window
    ):
        ticket.status = TicketStatus.OPEN
        ticket.reopen_count += 1
        ticket.cycle_started_at = at
        ticket.resolved_at = None
        ticket.resolved_by = None
        ticket.awaiting_first_response = True
        _start_wait(rules, ticket, at)
        _start_resolution_clock(rules, ticket)
    else:
        ticket = Ticket(
            conversation=conversation,
            number_id=conversation.number_id,
            opened_at=at,
            cycle_started_at=at,
            priority=Priority.NORMAL,
            awaiting_first_response=True,
        )
        if rules.settings.auto_assign:
            ticket.assignee = pick_assignee(rules)
        _start_wait(rules, ticket, at)
        _start_resolution_clock(rules, ticket)
        _count(day, conversation.number_id, 0, "tickets_opened")
    if ticket.last_customer_message_at is None or at > ticket.last_customer_message_at:
        ticket.last_customer_message_at = at
    store.current().save_ticket(ticket)
    if conversation.current_ticket_id != ticket.pk:
        store.current().set_current_ticket(conversation, ticket)
    else:
        conversation.current_ticket = ticket  # the conversation's frame shows it: no second read
    conversation.status = conversation_status_of(ticket.status)  # the caller saves the conversation
    return ticket


def on_outbound_message(conversation: Conversation, message: Message) -> Ticket | None:
    """We wrote: count it; a person's reply (an agent's, or the business's from its phone app) ends the
    customer's wait and is measured."""
    rules = support_rules()
    is_agent = message.sender_kind == SenderKind.AGENT and message.sender_user_id is not None
    is_person = is_agent or message.sender_kind == SenderKind.PHONE_APP
    # The lock order (conversations/actions.py): the ticket before the reporting counters.
    ticket = (
        store.current().lock_ticket(conversation.current_ticket_id)
        if is_person and conversation.current_ticket_id
        else None
    )
    _count(
        rules.calendar.local_date(message.created_at),
        conversation.number_id,
        int(message.sender_user_id or 0) if is_agent else 0,
        "messages_out",
    )
    if ticket is None:
        return None
    if ticket.waiting_since is None:
        return ticket
    start, end, agent_id = ticket.waiting_since, message.created_at, message.sender_user_id
    _measure(rules, "response", ticket, start, end, agent_id)
    first = ticket.awaiting_first_response
    if first:
        _measure(rules, "first_response", ticket, start, end, agent_id)
    if ticket.response_due_at and ticket.response_breached_at is None:
        met = end <= ticket.response_due_at
        _sla_outcome(
            rules,
            "first_response" if first else "next_response",
            ticket,
            start,
            end if met else ticket.response_due_at,
            met,
            agent_id,
        )
    ticket.awaiting_first_response = False
    _stop_wait(ticket)
    store.current().save_ticket(ticket)
    return ticket


# ------------------------------------------------------------------ changes by people


def _membership(user: User) -> Membership | None:
    return Membership.objects.filter(user_id=user.pk, tenant_id=support_rules().tenant_id).first()


def check_update_ticket(
    ticket: Ticket,
    actor: User,
    *,
    status: str | None = None,
    priority: str | None = None,
    assignee_id: int | object | None = ...,
) -> Ticket:
    """Change a ticket's status, priority or assignee; one code path for the browser, the API and automation.

    Any member may change status and priority of any ticket (assignment guides work, it does not lock it);
    agents may take a ticket or let it go, supervisors and admins may assign anyone.
    """
    actor_membership = _membership(actor)
    if actor_membership is None:
        raise TicketForbidden("You are not a member of this helpdesk.")
    if status is not None and status not in TicketStatus.values:
        raise TicketError(f"Unknown status {status!r}; use one of {', '.join(TicketStatus.values)}.")
    if priority is not None and priority not in Priority.values:
        raise TicketError(f"Unknown priority {priority!r}; use one of {', '.join(Priority.values)}.")
    new_assignee: User | None = None
    if assignee_id is not ...:
        if assignee_id is not None:
            member = (
                Membership.objects.select_related("user")
                .filter(tenant_id=actor_membership.tenant_id, user_id=int(assignee_id))  # type: ignore[call-overload]
                .first()
            )
            if member is None:
                raise TicketError("The assignee must be a member of this helpdesk.")
            new_assignee = member.user
        if actor_membership.role == Role.AGENT and assignee_id not in (None, actor.pk):
            raise TicketForbidden("Agents can take a ticket or let it go; supervisors and admins reassign.")
        if (
            actor_membership.role == Role.AGENT
            and assignee_id is None
            and ticket.assignee_id not in (None, actor.pk)
        ):
            raise TicketForbidden("Only supervisors and admins can unassign another agent's ticket.")
    return do_update_ticket(
        ticket,
        actor,
        status=status,
        priority=priority,
        assignee=new_assignee,
        change_assignee=assignee_id is not ...,
        ask_satisfaction=True,
    )


def do_update_ticket(
    ticket: Ticket,
    actor: User | None,
    *,
    status: str | None = None,
    priority: str | None = None,
    assignee: User | None = None,
    change_assignee: bool = False,
    now: datetime | None = None,
    ask_satisfaction: bool = False,
) -> Ticket:
    """Apply a validated change; `now` is the moment it happens (default: now; imports and seeding pass it).
    `ask_satisfaction`: a person resolved it, so the customer may be asked to rate the help (satisfaction.py)."""
    from conversations.serializers import conversation_data
    from tickets.serializers import ticket_data

    rules = support_rules()
    now = now or timezone.now()
    with transaction.atomic():
        # The lock order (conversations/actions.py): the conversation before its ticket.
        store.current().lock_conversation(ticket.conversation_id)
        locked = store.current().lock_ticket(ticket.pk)
        assert locked is not None
        ticket = locked
        changed = False
        if priority is not None and priority != ticket.priority:
            ticket.priority = priority
            if ticket.waiting_since:
                _start_wait(rules, ticket, ticket.waiting_since, same_wait=True)
            if ticket.status in (TicketStatus.OPEN, TicketStatus.PENDING):
                _start_resolution_clock(rules, ticket, same_cycle=True)
            changed = True
        if change_assignee and (assignee.pk if assignee else None) != ticket.assignee_id:
            ticket.assignee = assignee
            changed = True
        status_changed = status is not None and status != ticket.status
        if status is not None and status_changed:
            _change_status(rules, ticket, status, actor, now)
            changed = True
        if changed:
            store.current().save_ticket(ticket)
            if status_changed:
                store.current().follow_ticket_status(ticket)  # the inbox tabs follow the ticket
            if status_changed and ask_satisfaction and ticket.status == TicketStatus.RESOLVED:
                satisfaction.do_offer(rules, ticket, now)
            if events.enabled():
                conversation = Conversation.objects.select_related("contact", "number").get(
                    pk=ticket.conversation_id
                )
                record_event("ticket.updated", ticket=ticket_data(ticket))
                record_event("conversation.updated", conversation=conversation_data(conversation))
    return ticket


def _change_status(
    rules: SupportRules, ticket: Ticket, status: str, actor: User | None, now: datetime
) -> None:
    previous = ticket.status
    ticket.status = status
    actor_id = actor.pk if actor else None
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):  # resolving has its own resolution outcome
        _record_missed_targets(rules, ticket, now, resolution=status == TicketStatus.CLOSED)
    if status == TicketStatus.RESOLVED:
        ticket.resolved_at = now
        ticket.resolved_by = actor
        _measure(rules, "resolution", ticket, ticket.cycle_started_at, now, actor_id)
        if ticket.resolution_due_at and ticket.resolution_breached_at is None:
            met = now <= ticket.resolution_due_at
            _sla_outcome(
                rules,
                "resolution",
                ticket,
                ticket.cycle_started_at,
                now if met else ticket.resolution_due_at,
                met,
                actor_id,
            )
        _stop_wait(ticket)
        ticket.resolution_due_at = ticket.resolution_warn_at = None
    elif status == TicketStatus.CLOSED:
        ticket.closed_at = now
        _stop_wait(ticket)
        ticket.resolution_due_at = ticket.resolution_warn_at = None
    elif previous in (TicketStatus.RESOLVED, TicketStatus.CLOSED):  # reopened by a person
        ticket.reopen_count += 1
        ticket.cycle_started_at = now
        ticket.resolved_at = None
        ticket.resolved_by = None
        ticket.closed_at = None
        _start_resolution_clock(rules, ticket)


def do_set_availability(user: User, available: bool) -> Membership:
    membership = _membership(user)
    if membership is None:
        raise TicketForbidden("You are not a member of this helpdesk.")
    Membership.objects.filter(pk=membership.pk).update(is_available=available)
    membership.is_available = available
    return membership
