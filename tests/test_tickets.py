"""Tickets: the lifecycle driven by customer messages and agent replies, round-robin assignment, the ticket API
(permissions, bad input, filters, live frames), and SLA / 24-hour window deadlines in business time."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django_tenants.utils import schema_context
from rest_framework.fields import DateTimeField

from conversations import actions as conversation_actions
from conversations.models import Conversation, InboxEvent, Message, SenderKind
from helpdesk.tenancy.actions import do_add_member
from helpdesk.tenancy.models import Membership
from tests.conftest import ACME, GLOBEX, PASSWORD, fresh_wa_id, issue_token, queue_outbound, tenant_client
from tickets import actions, deadlines, tasks
from tickets.models import ReportingEvent, Ticket
from tickets.serializers import ticket_data
from tickets.support_settings import check_update_support_settings

NOW = int(time.time())
JAKARTA = ZoneInfo("Asia/Jakarta")
NEW_YORK = ZoneInfo("America/New_York")


def wib(*args: int) -> datetime:
    """A moment in Jakarta wall-clock time (acme's default time zone, UTC+7, Mon-Fri 08:00-17:00)."""
    return datetime(*args, tzinfo=JAKARTA)  # type: ignore[misc]


def iso(value: datetime | None) -> str | None:
    return None if value is None else DateTimeField().to_representation(value)


@pytest.fixture(autouse=True)
def fresh_support_rules() -> Iterator[None]:
    """Support rules are cached per process: never let one test's calendar leak into another."""
    actions._rules_cache.clear()
    yield
    actions._rules_cache.clear()


def configure(**changes: Any) -> None:
    with schema_context("acme"):
        check_update_support_settings(changes)


def receive(number: Any, wa_id: str, at: datetime | int, text: str = "hello") -> Message:
    """A customer message in acme with the given WhatsApp timestamp, through the webhook's action."""
    ts = int(at.timestamp()) if isinstance(at, datetime) else at
    message = {
        "from": wa_id,
        "id": f"wamid.TK{secrets.token_hex(10)}",
        "timestamp": str(ts),
        "type": "text",
        "text": {"body": text},
    }
    with schema_context("acme"):
        stored = conversation_actions.do_receive_inbound(
            number, message, [{"profile": {"name": "Rina"}, "wa_id": wa_id}]
        )
    assert stored is not None
    return stored


def reply_at(conversation_id: int, user: Any, at: datetime, kind: str = SenderKind.AGENT) -> Message:
    return queue_outbound(conversation_id, at, user, kind)


def set_status(ticket: Ticket, actor: Any, status: str, at: datetime) -> Ticket:
    with schema_context("acme"):
        return actions.do_update_ticket(ticket, actor, status=status, now=at)


def ticket_of(conversation_id: int) -> Ticket:
    with schema_context("acme"):
        current = Conversation.objects.get(pk=conversation_id).current_ticket_id
        return Ticket.objects.select_related("assignee").get(pk=current)


def tickets_of(conversation_id: int) -> list[Ticket]:
    with schema_context("acme"):
        return list(Ticket.objects.filter(conversation_id=conversation_id).order_by("pk"))


def fresh(ticket: Ticket) -> Ticket:
    with schema_context("acme"):
        return Ticket.objects.select_related("assignee").get(pk=ticket.pk)


def measured(ticket: Ticket, *names: str) -> list[tuple[Any, ...]]:
    """The ticket's reporting rows: (name, start, end, seconds, business seconds, agent, sla kind, met)."""
    with schema_context("acme"):
        rows = ReportingEvent.objects.filter(ticket_id=ticket.pk, name__in=names).order_by("pk")
        return [
            (
                r.name,
                r.event_start,
                r.event_end,
                r.value_seconds,
                r.value_business_seconds,
                r.agent_id,
                r.sla_kind,
                r.sla_met,
            )
            for r in rows
        ]


def last_event_id() -> int:
    with schema_context("acme"):
        return InboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def events_after(event_id: int) -> list[dict[str, Any]]:
    with schema_context("acme"):
        return [e.frame() for e in InboxEvent.objects.filter(pk__gt=event_id).order_by("pk")]


def check_deadlines_at(now: datetime, ticket: Ticket) -> list[tuple[str, dict[str, Any]]]:
    """Run the deadline check of acme at `now`; the warnings it raised about this ticket."""
    before = last_event_id()
    with schema_context("acme"), transaction.atomic():
        deadlines.raise_due_warnings(now)
    return [
        (frame["type"], frame["warning"])
        for frame in events_after(before)
        if frame.get("warning", {}).get("ticket_id") == ticket.pk
    ]


def warning(kind: str, due: datetime, passed: bool, ticket: Ticket) -> dict[str, Any]:
    return {
        "kind": kind,
        "due_at": due.astimezone(UTC).isoformat(),
        "passed": passed,
        "ticket_id": ticket.pk,
        "conversation_id": ticket.conversation_id,
    }


def api(user: Any, spec: dict[str, str] = ACME) -> Any:
    return tenant_client(spec, issue_token(user))


def patch(user: Any, ticket: Ticket, data: dict[str, Any], spec: dict[str, str] = ACME) -> Any:
    return api(user, spec).patch(f"/api/v1/tickets/{ticket.pk}/", data, content_type="application/json")


def snapshot(ticket: Ticket) -> dict[str, Any]:
    with schema_context("acme"):
        row = Ticket.objects.filter(pk=ticket.pk).values().get()
        sla_rows = ReportingEvent.objects.filter(ticket_id=ticket.pk).count()
    return {**row, "reporting_rows": sla_rows, "last_event": last_event_id()}


@pytest.fixture
def unassigned(db: None) -> None:
    """Automatic assignment off, so tickets start without an assignee."""
    configure(auto_assign=False)


@pytest.fixture
def agents(acme: Any, alice: Any) -> list[Any]:
    """Three new available agents of acme (created in the test's transaction); alice is away."""
    with schema_context("acme"):
        actions.do_set_availability(alice, False)
    tag = secrets.token_hex(4)
    return [
        do_add_member(acme, f"agent{i}-{tag}@acme.test", "agent", PASSWORD, f"Agent {i}").user
        for i in range(3)
    ]


# ------------------------------------------------------------------ lifecycle


def test_the_first_customer_message_opens_a_ticket_at_its_whatsapp_time(db, acme_number, alice):
    # given a customer we have never heard from
    wa_id = fresh_wa_id()
    sent = datetime.fromtimestamp(NOW - 3600, tz=UTC)

    # when their first message arrives (an hour after they sent it)
    message = receive(acme_number, wa_id, sent)

    # then one open ticket belongs to the conversation, opened at the WhatsApp timestamp
    ticket = ticket_of(message.conversation_id)
    assert tickets_of(message.conversation_id) == [ticket]
    assert (
        ticket.status,
        ticket.priority,
        ticket.opened_at,
        ticket.cycle_started_at,
        ticket.waiting_since,
        ticket.last_customer_message_at,
        ticket.awaiting_first_response,
        ticket.reopen_count,
        ticket.resolved_at,
        ticket.closed_at,
        ticket.conversation_id,
        ticket.number_id,
    ) == (
        "open",
        "normal",
        sent,
        sent,
        sent,
        sent,
        True,
        0,
        None,
        None,
        message.conversation_id,
        acme_number.pk,
    )
    # alice is acme's only agent, and available
    assert ticket.assignee_id == alice.pk


def test_more_customer_messages_keep_the_ticket_and_the_start_of_the_wait(db, acme_number):
    # given an open ticket
    wa_id = fresh_wa_id()
    first = receive(acme_number, wa_id, NOW - 300)
    ticket = ticket_of(first.conversation_id)

    # when the customer writes twice more
    receive(acme_number, wa_id, NOW - 200)
    receive(acme_number, wa_id, NOW - 100)

    # then it is the same ticket, still waiting since the first message
    after = ticket_of(first.conversation_id)
    assert tickets_of(first.conversation_id) == [ticket]
    assert (after.waiting_since, after.last_customer_message_at, after.status) == (
        ticket.opened_at,
        datetime.fromtimestamp(NOW - 100, tz=UTC),
        "open",
    )


def test_a_customer_message_moves_a_pending_ticket_back_to_open_and_starts_a_new_wait(db, acme_number, alice):
    # given a ticket that was answered and set pending
    wa_id = fresh_wa_id()
    first = receive(acme_number, wa_id, NOW - 600)
    conversation_id = first.conversation_id
    reply_at(conversation_id, alice, datetime.fromtimestamp(NOW - 500, tz=UTC))
    with schema_context("acme"):
        actions.check_update_ticket(ticket_of(conversation_id), alice, status="pending")
    pending = ticket_of(conversation_id)
    assert (pending.status, pending.waiting_since, pending.awaiting_first_response) == (
        "pending",
        None,
        False,
    )

    # when the customer writes again
    receive(acme_number, wa_id, NOW - 100)

    # then it is open again and waits for a next response since that message
    after = ticket_of(conversation_id)
    assert (
        after.pk,
        after.status,
        after.waiting_since,
        after.awaiting_first_response,
        after.reopen_count,
    ) == (
        pending.pk,
        "open",
        datetime.fromtimestamp(NOW - 100, tz=UTC),
        False,
        0,
    )


def test_bot_messages_and_notes_do_not_end_the_wait_but_an_agent_reply_does(db, acme_number, alice):
    # given a waiting customer
    wa_id = fresh_wa_id()
    message = receive(acme_number, wa_id, NOW - 60)
    with schema_context("acme"):
        conversation = Conversation.objects.get(pk=message.conversation_id)

    # when a bot, an automation, a broadcast and a private note follow
    with schema_context("acme"):
        for kind in (SenderKind.BOT, SenderKind.AUTOMATION, SenderKind.BROADCAST):
            conversation_actions.do_queue_outbound(
                conversation, type="text", text=kind, content={"body": kind}, sender_kind=kind
            )
        conversation_actions.check_add_note(conversation, alice, "Customer is a VIP")

    # then the customer is still waiting and nothing was measured
    ticket = ticket_of(message.conversation_id)
    assert (ticket.waiting_since, ticket.awaiting_first_response) == (
        datetime.fromtimestamp(NOW - 60, tz=UTC),
        True,
    )
    assert measured(ticket, "response", "first_response", "sla") == []

    # when alice replies
    with schema_context("acme"):
        sent = conversation_actions.check_send_text_reply(conversation, alice, "Hi, how can I help?")

    # then the wait ends at her reply
    ticket = ticket_of(message.conversation_id)
    assert (ticket.waiting_since, ticket.awaiting_first_response) == (None, False)
    start = datetime.fromtimestamp(NOW - 60, tz=UTC)
    assert [(*row[:3], row[5]) for row in measured(ticket, "response", "first_response")] == [
        ("response", start, sent.created_at, alice.pk),
        ("first_response", start, sent.created_at, alice.pk),
    ]


def test_a_message_within_the_reopen_window_reopens_the_resolved_ticket(db, acme_number, alice, sam):
    # given a ticket answered and resolved by alice
    wa_id = fresh_wa_id()
    t0 = wib(2026, 11, 9, 9)  # a Monday
    first = receive(acme_number, wa_id, t0)
    conversation_id = first.conversation_id
    reply_at(conversation_id, alice, t0 + timedelta(minutes=30))
    resolved = set_status(ticket_of(conversation_id), alice, "resolved", t0 + timedelta(hours=1))
    assert (resolved.status, resolved.resolved_at, resolved.resolved_by_id) == (
        "resolved",
        t0 + timedelta(hours=1),
        alice.pk,
    )

    # when the customer writes exactly 72 hours after the resolution
    back = t0 + timedelta(hours=73)
    receive(acme_number, wa_id, back)

    # then the same ticket is open again, counted as a reopen, waiting for a new first response
    ticket = ticket_of(conversation_id)
    assert tickets_of(conversation_id) == [resolved]
    assert (
        ticket.status,
        ticket.reopen_count,
        ticket.cycle_started_at,
        ticket.opened_at,
        ticket.waiting_since,
        ticket.awaiting_first_response,
        ticket.resolved_at,
        ticket.resolved_by_id,
    ) == ("open", 1, back, t0, back, True, None, None)

    # when sam answers half an hour later
    reply_at(conversation_id, sam, back + timedelta(minutes=30))

    # then that is the first response of the new cycle
    assert [(*row[:3], row[5]) for row in measured(ticket, "first_response")] == [
        ("first_response", t0, t0 + timedelta(minutes=30), alice.pk),
        ("first_response", back, back + timedelta(minutes=30), sam.pk),
    ]


def test_a_message_after_the_reopen_window_opens_a_new_ticket(db, acme_number, alice):
    # given a ticket resolved at a known time
    wa_id = fresh_wa_id()
    t0 = wib(2026, 11, 9, 9)
    first = receive(acme_number, wa_id, t0)
    conversation_id = first.conversation_id
    old = set_status(ticket_of(conversation_id), alice, "resolved", t0 + timedelta(hours=1))

    # when the customer writes one second after the 72-hour reopen window
    later = t0 + timedelta(hours=73, seconds=1)
    receive(acme_number, wa_id, later)

    # then a new ticket opens; the old one stays resolved
    new = ticket_of(conversation_id)
    assert new.pk != old.pk
    assert [(t.pk, t.status, t.reopen_count) for t in tickets_of(conversation_id)] == [
        (old.pk, "resolved", 0),
        (new.pk, "open", 0),
    ]
    assert (new.opened_at, new.waiting_since, new.awaiting_first_response) == (later, later, True)


def test_a_message_after_a_closed_ticket_opens_a_new_ticket(db, acme_number, alice):
    # given a ticket closed an hour after it opened
    wa_id = fresh_wa_id()
    t0 = wib(2026, 11, 9, 9)
    first = receive(acme_number, wa_id, t0)
    conversation_id = first.conversation_id
    old = set_status(ticket_of(conversation_id), alice, "closed", t0 + timedelta(hours=1))

    # when the customer writes again a minute later
    receive(acme_number, wa_id, t0 + timedelta(hours=1, minutes=1))

    # then a new ticket opens; the closed one is untouched
    new = ticket_of(conversation_id)
    assert [(t.pk, t.status, t.closed_at, t.reopen_count) for t in tickets_of(conversation_id)] == [
        (old.pk, "closed", t0 + timedelta(hours=1), 0),
        (new.pk, "open", None, 0),
    ]


def test_a_person_reopening_a_resolved_ticket_counts_a_reopen_and_restarts_the_resolution_clock(
    db, acme_number, alice
):
    # given a resolved ticket
    t0 = wib(2026, 11, 9, 9)
    first = receive(acme_number, fresh_wa_id(), t0)
    resolved = set_status(ticket_of(first.conversation_id), alice, "resolved", t0 + timedelta(hours=1))

    # when alice reopens it on Tuesday 10:00
    reopened = set_status(resolved, alice, "open", wib(2026, 11, 10, 10))

    # then it is a reopen with a new cycle and a resolution deadline 24 business hours later
    after = fresh(reopened)
    assert (
        after.status,
        after.reopen_count,
        after.cycle_started_at,
        after.resolved_at,
        after.resolved_by_id,
        after.resolution_due_at,
    ) == ("open", 1, wib(2026, 11, 10, 10), None, None, wib(2026, 11, 12, 16))


# ------------------------------------------------------------------ round robin


def test_round_robin_assigns_available_agents_least_recently_assigned_first(db, acme_number, agents):
    # when four new customers write
    tickets = [ticket_of(receive(acme_number, fresh_wa_id(), NOW - 60 + i).conversation_id) for i in range(4)]

    # then the three agents take turns, the first one again for the fourth
    assert [t.assignee_id for t in tickets] == [agents[0].pk, agents[1].pk, agents[2].pk, agents[0].pk]


def test_round_robin_skips_agents_who_are_away(db, acme_number, agents):
    # given the second agent sets themselves away through the API
    response = api(agents[1]).patch("/api/v1/me/", {"available": False}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {
        "id": agents[1].pk,
        "email": agents[1].email,
        "name": "Agent 1",
        "role": "agent",
        "available": False,
    }

    # when three new customers write
    tickets = [ticket_of(receive(acme_number, fresh_wa_id(), NOW - 60 + i).conversation_id) for i in range(3)]

    # then only the available agents are assigned
    assert [t.assignee_id for t in tickets] == [agents[0].pk, agents[2].pk, agents[0].pk]

    # when they come back, they are next in line (never assigned yet)
    api(agents[1]).patch("/api/v1/me/", {"available": True}, content_type="application/json")
    assert ticket_of(receive(acme_number, fresh_wa_id(), NOW).conversation_id).assignee_id == agents[1].pk


def test_with_no_agent_available_a_ticket_stays_unassigned(db, acme_number, agents):
    # given every agent is away (supervisors and admins are never auto-assigned)
    with schema_context("acme"):
        for agent in agents:
            actions.do_set_availability(agent, False)
    assert (
        Membership.objects.filter(
            tenant__schema_name="acme", user__email__in=["sam@acme.test", "ada@acme.test"], is_available=True
        ).count()
        == 2
    )

    # when a customer writes
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)

    # then nobody is assigned
    assert ticket.assignee_id is None


def test_availability_must_be_a_boolean(db, alice):
    response = api(alice).patch("/api/v1/me/", {"available": "yes"}, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "available: true or false.",
        "code": "invalid",
        "fields": {"available": ["true or false."]},
    }
    assert Membership.objects.get(user=alice, tenant__schema_name="acme").is_available is True


# ------------------------------------------------------------------ who may change a ticket


def test_an_agent_may_take_a_ticket_and_let_it_go(db, acme_number, alice, unassigned):
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)

    taken = patch(alice, ticket, {"assignee": alice.pk})
    assert taken.status_code == 200
    assert taken.json()["assignee"] == {"id": alice.pk, "name": "Alice"}
    assert fresh(ticket).assignee_id == alice.pk

    released = patch(alice, ticket, {"assignee": None})
    assert released.status_code == 200
    assert released.json()["assignee"] is None
    assert fresh(ticket).assignee_id is None


def test_an_agent_may_not_give_a_ticket_to_someone_else_and_nothing_changes(
    db, acme_number, alice, sam, unassigned
):
    # given an unassigned ticket
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    before = snapshot(ticket)

    # when alice tries to give it to sam (alone, or with a status change)
    attempts = [
        patch(alice, ticket, {"assignee": sam.pk}),
        patch(alice, ticket, {"assignee": sam.pk, "status": "pending"}),
    ]

    # then both are refused and nothing changed, not even the status sent along
    refusal = {
        "detail": "Agents can take a ticket or let it go; supervisors and admins reassign.",
        "code": "forbidden",
    }
    assert [(r.status_code, r.json()) for r in attempts] == [(403, refusal), (403, refusal)]
    assert snapshot(ticket) == before


def test_an_agent_may_not_unassign_a_colleague_and_nothing_changes(db, acme_number, alice, sam, unassigned):
    # given a ticket sam holds
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    with schema_context("acme"):
        actions.check_update_ticket(ticket, sam, assignee_id=sam.pk)
    before = snapshot(ticket)

    # when alice tries to unassign it
    response = patch(alice, ticket, {"assignee": None, "priority": "urgent"})

    # then she is refused and nothing changed
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "Only supervisors and admins can unassign another agent's ticket.", "code": "forbidden"},
    )
    assert snapshot(ticket) == before
    assert before["assignee_id"] == sam.pk


@pytest.mark.parametrize("boss", ["sam", "ada"], ids=["supervisor", "admin"])
def test_supervisors_and_admins_reassign_and_unassign(db, acme_number, alice, boss, request, agents):
    # given a ticket round-robin assigned to the first agent
    actor = request.getfixturevalue(boss)
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    assert ticket.assignee_id == agents[0].pk

    # when the supervisor / admin gives it to alice, then unassigns it
    reassigned = patch(actor, ticket, {"assignee": alice.pk})
    assert (reassigned.status_code, reassigned.json()["assignee"]) == (200, {"id": alice.pk, "name": "Alice"})
    assert fresh(ticket).assignee_id == alice.pk
    released = patch(actor, ticket, {"assignee": None})
    assert (released.status_code, released.json()["assignee"]) == (200, None)
    assert fresh(ticket).assignee_id is None


def test_any_agent_may_answer_and_resolve_a_ticket_assigned_to_someone_else(db, acme_number, alice, agents):
    # given a ticket assigned to another agent
    message = receive(acme_number, fresh_wa_id(), NOW - 10)
    ticket = ticket_of(message.conversation_id)
    assert ticket.assignee_id == agents[0].pk

    # when alice resolves it with high priority
    response = patch(alice, ticket, {"status": "resolved", "priority": "high"})

    # then it is resolved by her, still assigned to the other agent
    assert response.status_code == 200
    after = fresh(ticket)
    assert (after.status, after.priority, after.resolved_by_id, after.assignee_id, after.waiting_since) == (
        "resolved",
        "high",
        alice.pk,
        agents[0].pk,
        None,
    )
    assert response.json()["resolved_by"] == alice.pk
    assert [row[0] + ":" + str(row[5]) for row in measured(after, "resolution")] == [f"resolution:{alice.pk}"]


def test_a_member_of_another_tenant_cannot_see_or_change_acme_tickets(db, acme_number, bob):
    # given an acme ticket whose id does not exist in globex
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    with schema_context("globex"):
        assert not Ticket.objects.filter(pk=ticket.pk).exists()
    before = snapshot(ticket)

    # when bob uses acme's domain, or his own with the acme ticket's id
    on_acme = [
        api(bob).get("/api/v1/tickets/"),
        api(bob).get(f"/api/v1/tickets/{ticket.pk}/"),
        patch(bob, ticket, {"status": "closed"}),
    ]
    on_globex = [
        api(bob, GLOBEX).get(f"/api/v1/tickets/{ticket.pk}/"),
        patch(bob, ticket, {"status": "closed"}, spec=GLOBEX),
    ]

    # then acme refuses him, globex does not know the ticket, and nothing changed
    assert [r.status_code for r in on_acme] == [403, 403, 403]
    assert on_acme[0].json() == {
        "detail": "You are not a member of this helpdesk.",
        "code": "permission_denied",
    }
    assert [r.status_code for r in on_globex] == [404, 404]
    assert snapshot(ticket) == before


def test_anonymous_ticket_requests_are_refused(db, acme_number):
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    before = snapshot(ticket)
    anonymous = tenant_client(ACME)

    responses = [
        anonymous.get("/api/v1/tickets/"),
        anonymous.patch(
            f"/api/v1/tickets/{ticket.pk}/", {"status": "closed"}, content_type="application/json"
        ),
    ]

    assert [r.status_code for r in responses] == [401, 401]
    assert snapshot(ticket) == before


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (
            {"status": "archived"},
            {
                "detail": 'status: "archived" is not a valid choice.',
                "code": "invalid",
                "fields": {"status": ['"archived" is not a valid choice.']},
            },
        ),
        (
            {"priority": "critical"},
            {
                "detail": 'priority: "critical" is not a valid choice.',
                "code": "invalid",
                "fields": {"priority": ['"critical" is not a valid choice.']},
            },
        ),
        (
            {"assignee": "alice"},
            {
                "detail": "assignee: A valid integer is required.",
                "code": "invalid",
                "fields": {"assignee": ["A valid integer is required."]},
            },
        ),
        (
            {"assignee": "bob", "status": "closed"},
            {"detail": "The assignee must be a member of this helpdesk.", "code": "invalid"},
        ),
        (
            {"assignee": "nobody", "priority": "high"},
            {"detail": "The assignee must be a member of this helpdesk.", "code": "invalid"},
        ),
    ],
    ids=["status", "priority", "assignee-not-an-id", "assignee-of-another-tenant", "assignee-unknown"],
)
def test_bad_input_is_refused_and_changes_nothing(db, acme_number, sam, bob, data, answer):
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    before = snapshot(ticket)
    data = dict(data)
    if data.get("assignee") == "bob":
        data["assignee"] = bob.pk
    elif data.get("assignee") == "nobody":
        data["assignee"] = 10**9

    response = patch(sam, ticket, data)

    assert (response.status_code, response.json()) == (400, answer)
    assert snapshot(ticket) == before


def test_check_update_ticket_refuses_unknown_values_itself(db, acme_number, sam):
    # the API is not the only caller: the action validates on its own
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    before = snapshot(ticket)

    with schema_context("acme"):
        with pytest.raises(actions.TicketError) as status_error:
            actions.check_update_ticket(ticket, sam, status="archived")
        with pytest.raises(actions.TicketError) as priority_error:
            actions.check_update_ticket(ticket, sam, priority="critical")

    assert str(status_error.value) == "Unknown status 'archived'; use one of open, pending, resolved, closed."
    assert str(priority_error.value) == "Unknown priority 'critical'; use one of low, normal, high, urgent."
    assert snapshot(ticket) == before


def test_a_non_member_cannot_change_a_ticket_through_the_action(db, acme_number, bob):
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    before = snapshot(ticket)

    with schema_context("acme"), pytest.raises(actions.TicketForbidden):
        actions.check_update_ticket(ticket, bob, status="closed")

    assert snapshot(ticket) == before


# ------------------------------------------------------------------ list and filters


def listed(user: Any, query: str) -> Any:
    response = api(user).get(f"/api/v1/tickets/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_ticket_list_filters_by_status_assignee_and_priority(db, acme_number, alice, sam, unassigned):
    # given three tickets: alice's high-priority one, an unassigned pending one, sam's resolved one
    mine, waiting, done = (
        ticket_of(receive(acme_number, fresh_wa_id(), NOW - 30 + i).conversation_id) for i in range(3)
    )
    with schema_context("acme"):
        actions.check_update_ticket(mine, sam, assignee_id=alice.pk, priority="high")
        actions.check_update_ticket(waiting, sam, status="pending")
        actions.check_update_ticket(done, sam, assignee_id=sam.pk, status="resolved")
        every = {
            "all": set(Ticket.objects.values_list("pk", flat=True)),
            "pending": set(Ticket.objects.filter(status="pending").values_list("pk", flat=True)),
            "resolved": set(Ticket.objects.filter(status="resolved").values_list("pk", flat=True)),
            "me": set(Ticket.objects.filter(assignee_id=alice.pk).values_list("pk", flat=True)),
            "none": set(Ticket.objects.filter(assignee__isnull=True).values_list("pk", flat=True)),
            "sam": set(Ticket.objects.filter(assignee_id=sam.pk).values_list("pk", flat=True)),
            "high": set(Ticket.objects.filter(priority="high").values_list("pk", flat=True)),
            "open-alice-high": set(
                Ticket.objects.filter(status="open", assignee_id=alice.pk, priority="high").values_list(
                    "pk", flat=True
                )
            ),
        }
    assert len(every["all"]) <= 50

    def ids(query: str) -> set[int]:
        return {t["id"] for t in listed(alice, query)["results"]}

    # then each filter lists exactly the matching tickets, ours where they belong
    assert ids("") == every["all"]
    assert waiting.pk in every["pending"] & every["none"]
    assert done.pk in every["resolved"]
    assert mine.pk in every["me"] & every["high"]
    assert ids("?status=pending") == every["pending"]
    assert ids("?status=resolved") == every["resolved"]
    assert ids("?assignee=me") == every["me"]
    assert ids("?assignee=none") == every["none"]
    assert ids(f"?assignee={sam.pk}") == every["sam"] == {done.pk}
    assert ids("?priority=high") == every["high"]
    assert ids(f"?status=open&assignee={alice.pk}&priority=high") == every["open-alice-high"] == {mine.pk}
    assert mine.pk not in ids("?status=pending") | ids("?assignee=none")
    # newest first
    ordered = [t["id"] for t in listed(alice, "")["results"]]
    assert ordered.index(done.pk) < ordered.index(waiting.pk) < ordered.index(mine.pk)


@pytest.mark.parametrize(
    ("query", "answer"),
    [
        ("?status=archived", {"status": "Use one of: open, pending, resolved, closed."}),
        ("?priority=critical", {"priority": "Use one of: low, normal, high, urgent."}),
        ("?assignee=someone", {"assignee": "A user id, `me` or `none`."}),
    ],
)
def test_the_ticket_list_refuses_unknown_filters(db, alice, query, answer):
    response = api(alice).get(f"/api/v1/tickets/{query}")

    [(field, message)] = answer.items()
    assert (response.status_code, response.json()) == (
        400,
        {"detail": f"{field}: {message}", "code": "invalid", "fields": {field: [message]}},
    )


# ------------------------------------------------------------------ live frames


def test_a_change_records_a_ticket_and_a_conversation_frame(db, acme_number, alice, sam, unassigned):
    # given a new ticket, opened Monday 09:00 in Jakarta
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)
    before = last_event_id()

    # when sam makes it high priority and gives it to alice
    response = patch(sam, ticket, {"priority": "high", "assignee": alice.pk})

    # then the deadlines follow the high-priority targets (1 h first response, 8 h resolution, business time)
    assert response.status_code == 200
    after = fresh(ticket)
    assert (after.response_due_at, after.resolution_due_at) == (wib(2026, 11, 16, 10), wib(2026, 11, 16, 17))
    # and exactly two frames were recorded, in this shape
    with schema_context("acme"):
        conversation = Conversation.objects.get(pk=message.conversation_id)
    expected_ticket = {
        "id": ticket.pk,
        "conversation": message.conversation_id,
        "status": "open",
        "priority": "high",
        "assignee": {"id": alice.pk, "name": "Alice"},
        "opened_at": iso(t0),
        "cycle_started_at": iso(t0),
        "resolved_at": None,
        "resolved_by": None,
        "closed_at": None,
        "reopen_count": 0,
        "waiting_since": iso(t0),
        "awaiting_first_response": True,
        "last_customer_message_at": iso(t0),
        "response_due_at": iso(wib(2026, 11, 16, 10)),
        "resolution_due_at": iso(wib(2026, 11, 16, 17)),
        "csat_asked_at": None,
        "csat_score": None,
        "csat_answered_at": None,
        "created_at": iso(after.created_at),
        "updated_at": iso(after.updated_at),
    }
    expected_conversation = {
        "id": conversation.pk,
        "contact": {
            "id": conversation.contact_id,
            "wa_id": message.content["from"],
            "user_id": "",
            "username": "",
            "name": "Rina",
            "opted_in_at": None,
            "opt_in_source": "",
            "opt_in_proof": "",
            "opted_out_at": None,
            "opt_out_route": "",
            "opt_out_reason": "",
            "marketing": "",
            "marketing_changed_at": None,
            "attributes": {},
            "labels": [],
        },
        "number": {"id": acme_number.pk, "display_number": ACME["display"]},
        "status": "open",
        "last_message_at": iso(t0),
        "last_message_preview": "hello",
        "last_inbound_at": iso(t0),
        "window_expires_at": iso(t0 + timedelta(hours=24)),
        "unread_count": 1,
        "labels": [],
        "ticket": {
            "id": ticket.pk,
            "status": "open",
            "priority": "high",
            "assignee_id": alice.pk,
            "waiting_since": iso(t0),
            "awaiting_first_response": True,
            "reopen_count": 0,
            "response_due_at": iso(wib(2026, 11, 16, 10)),
            "resolution_due_at": iso(wib(2026, 11, 16, 17)),
            "csat_score": None,
        },
        "created_at": iso(conversation.created_at),
    }
    frames = events_after(before)
    assert [(f["type"], {k: v for k, v in f.items() if k not in ("type", "id")}) for f in frames] == [
        ("ticket.updated", {"ticket": expected_ticket}),
        ("conversation.updated", {"conversation": expected_conversation}),
    ]
    assert response.json() == expected_ticket
    assert frames[0]["id"] < frames[1]["id"]


def test_a_change_that_changes_nothing_records_no_frame(db, acme_number, sam, unassigned):
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), NOW - 10).conversation_id)
    before = snapshot(ticket)

    response = patch(sam, ticket, {"status": "open", "priority": "normal", "assignee": None})

    assert response.status_code == 200
    assert snapshot(ticket) == before


# ------------------------------------------------------------------ SLA deadlines and warnings


def test_the_first_response_target_warns_at_80_percent_and_breaches_once(db, acme_number, alice):
    # given a normal ticket opened Monday 09:00 (first response due after 4 business hours: 13:00)
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)
    due = wib(2026, 11, 16, 13)
    assert (ticket.response_warn_at, ticket.response_due_at) == (wib(2026, 11, 16, 12, 12), due)

    def sla_frames(now: datetime) -> list[tuple[str, dict[str, Any]]]:
        return [f for f in check_deadlines_at(now, ticket) if f[0].startswith("sla.")]

    # then nothing before 80% of the target, one warning at 80%, nothing more until the breach
    assert sla_frames(wib(2026, 11, 16, 12, 11, 59)) == []
    assert sla_frames(wib(2026, 11, 16, 12, 12)) == [
        ("sla.warning", warning("first_response", due, False, ticket))
    ]
    assert sla_frames(wib(2026, 11, 16, 12, 30)) == []
    # one breach when the target passes, recorded at the deadline, never again
    assert sla_frames(wib(2026, 11, 16, 13)) == [
        ("sla.breached", warning("first_response", due, True, ticket))
    ]
    assert sla_frames(wib(2026, 11, 16, 14)) == []
    breach = ("sla", t0, due, 4 * 3600.0, 4 * 3600.0, alice.pk, "first_response", False)
    assert measured(ticket, "sla") == [breach]

    # when alice finally answers at 14:30
    reply_at(message.conversation_id, alice, wib(2026, 11, 16, 14, 30))

    # then her response is measured, but no second SLA outcome is counted
    reply = wib(2026, 11, 16, 14, 30)
    assert measured(ticket, "sla", "response", "first_response") == [
        breach,
        ("response", t0, reply, 5.5 * 3600, 5.5 * 3600, alice.pk, "", None),
        ("first_response", t0, reply, 5.5 * 3600, 5.5 * 3600, alice.pk, "", None),
    ]
    assert sla_frames(wib(2026, 11, 16, 15)) == []


def test_a_reply_before_the_target_counts_the_sla_met(db, acme_number, alice):
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)

    reply_at(message.conversation_id, alice, wib(2026, 11, 16, 13))  # exactly at the deadline

    assert measured(ticket, "sla") == [
        ("sla", t0, wib(2026, 11, 16, 13), 4 * 3600.0, 4 * 3600.0, alice.pk, "first_response", True)
    ]
    after = fresh(ticket)
    assert (after.response_due_at, after.response_warn_at) == (None, None)
    assert check_deadlines_at(wib(2026, 11, 16, 14), ticket) == []


def test_the_resolution_target_warns_and_breaches_once_and_a_late_resolve_adds_no_second_outcome(
    db, acme_number, alice
):
    # given a ticket opened Monday 09:00, answered at once (resolution due after 24 business hours: Wed 15:00)
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    reply_at(message.conversation_id, alice, t0 + timedelta(minutes=5))
    ticket = ticket_of(message.conversation_id)
    due = wib(2026, 11, 18, 15)
    assert (ticket.resolution_warn_at, ticket.resolution_due_at) == (wib(2026, 11, 18, 10, 12), due)

    def sla_frames(now: datetime) -> list[tuple[str, dict[str, Any]]]:
        return [f for f in check_deadlines_at(now, ticket) if f[0].startswith("sla.")]

    # then a warning at 80% and a breach at the deadline, once each
    assert sla_frames(wib(2026, 11, 18, 10, 11)) == []
    assert sla_frames(wib(2026, 11, 18, 10, 12)) == [
        ("sla.warning", warning("resolution", due, False, ticket))
    ]
    assert sla_frames(wib(2026, 11, 18, 15)) == [("sla.breached", warning("resolution", due, True, ticket))]
    assert sla_frames(wib(2026, 11, 18, 16)) == []

    # when alice resolves it on Thursday
    set_status(fresh(ticket), alice, "resolved", wib(2026, 11, 19, 9))

    # then the resolution is measured, the breach stays the only resolution outcome
    assert [r for r in measured(ticket, "sla") if r[6] == "resolution"] == [
        ("sla", t0, due, (due - t0).total_seconds(), 24 * 3600.0, alice.pk, "resolution", False)
    ]
    assert measured(ticket, "resolution") == [
        ("resolution", t0, wib(2026, 11, 19, 9), 72 * 3600.0, 27 * 3600.0, alice.pk, "", None)
    ]


def test_a_priority_change_after_a_breach_does_not_count_a_second_outcome(db, acme_number, alice, sam):
    # given a first response breached at 13:00 (normal priority)
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)
    check_deadlines_at(wib(2026, 11, 16, 13), ticket)
    assert [r[7] for r in measured(ticket, "sla")] == [False]

    # when sam lowers the priority (first response target 8 h: 17:00) and alice answers at 14:00
    with schema_context("acme"):
        actions.check_update_ticket(fresh(ticket), sam, priority="low")
    check_deadlines_at(wib(2026, 11, 16, 13, 30), ticket)
    reply_at(message.conversation_id, alice, wib(2026, 11, 16, 14))

    # then the first response still has exactly one outcome: the breach
    assert [(r[6], r[7]) for r in measured(ticket, "sla")] == [("first_response", False)]


def test_a_priority_change_after_a_resolution_breach_does_not_count_a_second_outcome(
    db, acme_number, alice, sam
):
    # given a ticket answered at once whose resolution target (Wednesday 15:00) was breached
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    reply_at(message.conversation_id, alice, t0 + timedelta(minutes=5))
    ticket = ticket_of(message.conversation_id)
    check_deadlines_at(wib(2026, 11, 18, 15), ticket)

    # when sam lowers the priority (72 business hours to resolve) and alice resolves it on Thursday
    with schema_context("acme"):
        actions.check_update_ticket(fresh(ticket), sam, priority="low")
    set_status(fresh(ticket), alice, "resolved", wib(2026, 11, 19, 9))

    # then the resolution still has exactly one outcome: the breach
    assert [(r[6], r[7]) for r in measured(ticket, "sla") if r[6] == "resolution"] == [("resolution", False)]


def test_resolving_after_a_missed_first_response_target_counts_the_breach(db, acme_number, alice):
    # given a first response due at 13:00 that nobody answered, and no deadline check has run since
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)

    # when alice resolves the ticket at 13:00:30, before the periodic check notices
    set_status(ticket, alice, "resolved", wib(2026, 11, 16, 13, 0, 30))
    check_deadlines_at(wib(2026, 11, 16, 13, 1), ticket)

    # then the missed first response is still counted as breached, at its deadline
    due = wib(2026, 11, 16, 13)
    assert [r for r in measured(ticket, "sla") if r[6] == "first_response"] == [
        ("sla", t0, due, 4 * 3600.0, 4 * 3600.0, alice.pk, "first_response", False)
    ]


def test_a_late_message_that_starts_the_wait_earlier_does_not_count_a_second_breach(db, acme_number, alice):
    # given a first response breached at 14:00 (customer waiting since 10:00)
    wa_id = fresh_wa_id()
    ticket = ticket_of(receive(acme_number, wa_id, wib(2026, 11, 16, 10)).conversation_id)
    check_deadlines_at(wib(2026, 11, 16, 14), ticket)

    # when a message the customer sent at 09:30 arrives late, and the check runs again
    receive(acme_number, wa_id, wib(2026, 11, 16, 9, 30))
    check_deadlines_at(wib(2026, 11, 16, 14, 30), ticket)

    # then the wait starts at 09:30, and its first response has exactly one outcome
    assert fresh(ticket).waiting_since == wib(2026, 11, 16, 9, 30)
    assert [(r[6], r[7]) for r in measured(ticket, "sla")] == [("first_response", False)]


def test_closing_after_a_missed_resolution_target_counts_the_breach_once(db, acme_number, alice, sam):
    # given a ticket answered at once, due to be resolved Wednesday 15:00, and no deadline check running
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    reply_at(message.conversation_id, alice, t0 + timedelta(minutes=5))
    ticket = ticket_of(message.conversation_id)

    # when sam closes it at 15:30 and the check runs afterwards
    set_status(ticket, sam, "closed", wib(2026, 11, 18, 15, 30))
    check_deadlines_at(wib(2026, 11, 18, 15, 31), ticket)

    # then the missed resolution target is one breach, at its deadline, for the assignee
    due = wib(2026, 11, 18, 15)
    assert [r for r in measured(ticket, "sla") if r[6] == "resolution"] == [
        ("sla", t0, due, (due - t0).total_seconds(), 24 * 3600.0, alice.pk, "resolution", False)
    ]


def test_the_window_warns_two_hours_before_it_closes_and_its_expiry_is_recorded_once(db, acme_number, alice):
    # given a customer waiting since Monday 09:00 (their 24-hour window closes Tuesday 09:00)
    t0 = wib(2026, 11, 16, 9)
    wa_id = fresh_wa_id()
    message = receive(acme_number, wa_id, t0)
    ticket = ticket_of(message.conversation_id)
    window_end = wib(2026, 11, 17, 9)

    def window_frames(now: datetime) -> list[tuple[str, dict[str, Any]]]:
        return [f for f in check_deadlines_at(now, ticket) if f[0].startswith("window.")]

    # then a warning two hours before, once; the expiry when it closes, once
    assert window_frames(wib(2026, 11, 17, 6, 59, 59)) == []
    assert window_frames(wib(2026, 11, 17, 7)) == [
        ("window.warning", warning("window", window_end, False, ticket))
    ]
    assert window_frames(wib(2026, 11, 17, 8)) == []
    assert window_frames(window_end) == [("window.expired", warning("window", window_end, True, ticket))]
    assert window_frames(wib(2026, 11, 17, 10)) == []
    expired = ("window_expired", t0, window_end, 86400.0, 9 * 3600.0, alice.pk, "", None)
    assert measured(ticket, "window_expired") == [expired]

    # when the customer writes again on Wednesday 10:00, that window is not counted a second time
    receive(acme_number, wa_id, wib(2026, 11, 18, 10))
    assert measured(ticket, "window_expired") == [expired]

    # and when the new window closes unanswered, it is counted too (the wait still began on Monday)
    assert window_frames(wib(2026, 11, 19, 10)) == [
        ("window.expired", warning("window", wib(2026, 11, 19, 10), True, ticket))
    ]
    assert measured(ticket, "window_expired") == [
        expired,
        (
            "window_expired",
            t0,
            wib(2026, 11, 19, 10),
            73 * 3600.0,
            (8 + 9 + 9 + 2) * 3600.0,
            alice.pk,
            "",
            None,
        ),
    ]


def test_a_window_that_closes_while_nobody_checks_is_recorded_when_the_customer_writes_again(
    db, acme_number, alice
):
    # given a customer waiting since Monday 09:00, and no deadline check running
    t0 = wib(2026, 11, 16, 9)
    wa_id = fresh_wa_id()
    ticket = ticket_of(receive(acme_number, wa_id, t0).conversation_id)

    # when they write again after their window closed
    receive(acme_number, wa_id, wib(2026, 11, 17, 12))

    # then the expired window is recorded, once, even when the check runs afterwards
    check_deadlines_at(wib(2026, 11, 17, 12, 1), ticket)
    assert measured(ticket, "window_expired") == [
        ("window_expired", t0, wib(2026, 11, 17, 9), 86400.0, 9 * 3600.0, alice.pk, "", None)
    ]


def test_an_answered_customer_has_no_window_warning(db, acme_number, alice):
    t0 = wib(2026, 11, 16, 9)
    message = receive(acme_number, fresh_wa_id(), t0)
    reply_at(message.conversation_id, alice, t0 + timedelta(minutes=10))
    ticket = ticket_of(message.conversation_id)

    frames = check_deadlines_at(wib(2026, 11, 17, 7, 30), ticket) + check_deadlines_at(
        wib(2026, 11, 17, 10), ticket
    )

    assert [f for f in frames if f[0].startswith("window.")] == []
    assert measured(ticket, "window_expired") == []


def test_business_time_deadlines_skip_the_weekend_and_a_holiday(db, acme_number, alice):
    # given Monday 23 November is a holiday, and a customer writes on Friday 16:00
    configure(holidays=[{"date": "2026-11-23", "name": "Bank holiday"}])
    t0 = wib(2026, 11, 20, 16)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)

    # then 4 business hours end Tuesday 11:00 (1 h on Friday, 3 h on Tuesday), 80% at Tuesday 10:12,
    # and 24 business hours Thursday 13:00
    assert (
        ticket.response_warn_at,
        ticket.response_due_at,
        ticket.resolution_warn_at,
        ticket.resolution_due_at,
    ) == (
        wib(2026, 11, 24, 10, 12),
        wib(2026, 11, 24, 11),
        wib(2026, 11, 26, 8, 12),
        wib(2026, 11, 26, 13),
    )
    assert [f[0] for f in check_deadlines_at(wib(2026, 11, 23, 16), ticket) if f[0].startswith("sla.")] == []
    assert [
        f[0] for f in check_deadlines_at(wib(2026, 11, 24, 10, 12), ticket) if f[0].startswith("sla.")
    ] == ["sla.warning"]

    # when alice answers on Tuesday 10:30
    reply_at(message.conversation_id, alice, wib(2026, 11, 24, 10, 30))

    # then the wait is 3 days 18.5 hours of calendar time, 3.5 business hours, within the target
    calendar, business = (3 * 24 + 18.5) * 3600, 3.5 * 3600
    assert measured(ticket, "first_response", "sla") == [
        ("first_response", t0, wib(2026, 11, 24, 10, 30), calendar, business, alice.pk, "", None),
        ("sla", t0, wib(2026, 11, 24, 10, 30), calendar, business, alice.pk, "first_response", True),
    ]


def test_business_time_follows_the_wall_clock_across_a_dst_change(db, acme_number, alice):
    # given acme works in New York, and a customer writes Friday 6 March 2026 16:00 EST (DST starts Sunday)
    configure(timezone="America/New_York")
    t0 = datetime(2026, 3, 6, 16, tzinfo=NEW_YORK)
    message = receive(acme_number, fresh_wa_id(), t0)
    ticket = ticket_of(message.conversation_id)

    # then the first response is due Monday 11:00 EDT (1 business hour Friday, 3 Monday)
    assert ticket.response_due_at == datetime(2026, 3, 9, 11, tzinfo=NEW_YORK)
    assert ticket.response_due_at == datetime(2026, 3, 9, 15, tzinfo=UTC)

    # when alice answers Monday 10:00 EDT
    reply_at(message.conversation_id, alice, datetime(2026, 3, 9, 10, tzinfo=NEW_YORK))

    # then 2 days 17 hours passed (one hour less than the wall clock says), 3 of them in business hours,
    # and the response belongs to Monday in New York
    assert measured(ticket, "first_response") == [
        (
            "first_response",
            t0,
            datetime(2026, 3, 9, 10, tzinfo=NEW_YORK),
            (2 * 24 + 17) * 3600.0,
            3 * 3600.0,
            alice.pk,
            "",
            None,
        )
    ]
    with schema_context("acme"):
        days = list(ReportingEvent.objects.filter(ticket_id=ticket.pk).values_list("name", "day"))
    assert days == [
        ("response", datetime(2026, 3, 9).date()),
        ("first_response", datetime(2026, 3, 9).date()),
        ("sla", datetime(2026, 3, 9).date()),
    ]


def test_the_periodic_task_checks_every_tenant(db, acme_number, globex, alice, bob):
    # given a customer in acme and one in globex, both waiting since a week ago, unanswered
    from helpdesk.tenancy.models import WhatsAppNumber

    week_ago = datetime.fromtimestamp(NOW, tz=UTC) - timedelta(days=7)
    acme_ticket = ticket_of(receive(acme_number, fresh_wa_id(), week_ago).conversation_id)
    globex_number = WhatsAppNumber.objects.get(phone_number_id=GLOBEX["pnid"])
    with schema_context("globex"):
        stored = conversation_actions.do_receive_inbound(
            globex_number,
            {
                "from": fresh_wa_id(),
                "id": f"wamid.TK{secrets.token_hex(10)}",
                "timestamp": str(int(week_ago.timestamp())),
                "type": "text",
                "text": {"body": "hi"},
            },
            [],
        )
        assert stored is not None
        globex_ticket = Ticket.objects.get(
            pk=Conversation.objects.get(pk=stored.conversation_id).current_ticket_id
        )
        globex_before = InboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    acme_before = last_event_id()

    # when the periodic task runs
    tasks.check_deadlines.delay()

    # then each tenant's ticket got its warnings and breaches, in its own schema, each once
    expected_types = ["sla.warning", "sla.breached", "sla.warning", "sla.breached", "window.expired"]
    assert [
        f["type"] for f in events_after(acme_before) if f["warning"]["ticket_id"] == acme_ticket.pk
    ] == expected_types
    with schema_context("globex"):
        globex_frames = [e.frame() for e in InboxEvent.objects.filter(pk__gt=globex_before).order_by("pk")]
        assert [
            f["type"] for f in globex_frames if f["warning"]["ticket_id"] == globex_ticket.pk
        ] == expected_types
        assert (
            ReportingEvent.objects.filter(ticket_id=globex_ticket.pk, name="sla", sla_met=False).count() == 2
        )
    assert [r[6] for r in measured(acme_ticket, "sla")] == ["first_response", "resolution"]

    # when it runs again, nothing more is raised for them
    acme_again = last_event_id()
    tasks.check_deadlines.delay()
    assert [f for f in events_after(acme_again) if f["warning"]["ticket_id"] == acme_ticket.pk] == []


def test_frames_of_a_warning_carry_the_ticket(db, acme_number, alice):
    t0 = wib(2026, 11, 16, 9)
    ticket = ticket_of(receive(acme_number, fresh_wa_id(), t0).conversation_id)
    before = last_event_id()

    with schema_context("acme"), transaction.atomic():
        deadlines.raise_due_warnings(wib(2026, 11, 16, 12, 12))

    frames = [f for f in events_after(before) if f["warning"]["ticket_id"] == ticket.pk]
    expected = {k: v for k, v in ticket_data(fresh(ticket)).items() if k != "updated_at"}
    assert [(f["type"], {k: v for k, v in f["ticket"].items() if k != "updated_at"}) for f in frames] == [
        ("sla.warning", expected)
    ]
