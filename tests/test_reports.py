"""Reports: who may read them, how periods are validated, and exact figures for a small hand-built history
(waits in calendar and business time, what ends a wait, resolutions per resolving agent, SLA outcomes,
windows expired unanswered, filters, local days, day and week buckets, agent rows and CSV), and sealed days."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import actions as conversation_actions
from conversations.models import Conversation, Message, SenderKind
from helpdesk.tenancy.actions import do_add_number
from helpdesk.tenancy.models import Membership, WhatsAppNumber
from tests.conftest import ACME, issue_token, queue_outbound, tenant_client
from tickets import actions, deadlines, intervals
from tickets.models import SealedIntervals, Ticket
from tickets.support_settings import check_update_support_settings
from tickets.tasks import seal_report_days

JAKARTA = ZoneInfo("Asia/Jakarta")


def wib(*args: int) -> datetime:
    """Jakarta wall-clock time (acme's default zone; business hours Mon-Fri 08:00-17:00)."""
    return datetime(*args, tzinfo=JAKARTA)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def fresh_support_rules() -> Iterator[None]:
    actions._rules_cache.clear()
    yield
    actions._rules_cache.clear()


# ------------------------------------------------------------------ driving history through the actions


def new_number(acme: Any) -> WhatsAppNumber:
    """An extra WhatsApp number of acme, so a test's figures can be isolated with `?number=`."""
    digits = str(secrets.randbelow(10**12)).zfill(12)
    return do_add_number(
        acme,
        phone_number_id="9" + digits,
        waba_id=ACME["waba"],
        display_number="1555" + digits[:7],
        access_token="token",
        app_secret="secret",
        verify_token="verify-" + digits,
    )


def customer(number: WhatsAppNumber, wa_id: str, at: datetime) -> Message:
    message = {
        "from": wa_id,
        "id": f"wamid.RP{secrets.token_hex(10)}",
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": "hello"},
    }
    with schema_context("acme"):
        stored = conversation_actions.do_receive_inbound(number, message, [])
    assert stored is not None
    return stored


def resolve(conversation_id: int, actor: Any, at: datetime) -> None:
    with schema_context("acme"):
        ticket = Ticket.objects.get(pk=Conversation.objects.get(pk=conversation_id).current_ticket_id)
        actions.do_update_ticket(ticket, actor, status="resolved", now=at)


def check_deadlines(at: datetime) -> None:
    with schema_context("acme"), transaction.atomic():
        deadlines.raise_due_warnings(at)


@dataclass
class History:
    number: WhatsAppNumber
    conversations: dict[str, int]


@pytest.fixture
def history(acme: Any, acme_number: Any, alice: Any, sam: Any) -> History:
    """Three conversations on an extra number, Monday 5 to Wednesday 7 October 2026 in Jakarta.

    A: customer 09:00 and 09:10, a bot at 09:20, a private note, alice replies 09:30 and again 09:40;
       customer 10:00, sam replies 11:00; alice resolves 11:30.
    B: customer Monday 16:00, alice replies Tuesday 09:00 (17 h, 2 business hours); sam resolves Wednesday 10:00.
    C: customer Tuesday 09:00, never answered: first response breached Tuesday 13:00, window expired Wednesday
       09:00.
    D: on acme's usual number, customer Tuesday 12:00, never answered (breached Tuesday 16:00).
    Tickets are round-robin assigned to alice, acme's only agent.
    """
    number = new_number(acme)
    a = customer(number, "6281000000001", wib(2026, 10, 5, 9)).conversation_id
    customer(number, "6281000000001", wib(2026, 10, 5, 9, 10))
    queue_outbound(a, wib(2026, 10, 5, 9, 20), kind=SenderKind.BOT)
    with schema_context("acme"):
        conversation_actions.check_add_note(Conversation.objects.get(pk=a), alice, "VIP, be quick")
    queue_outbound(a, wib(2026, 10, 5, 9, 30), alice)
    queue_outbound(a, wib(2026, 10, 5, 9, 40), alice)
    customer(number, "6281000000001", wib(2026, 10, 5, 10))
    queue_outbound(a, wib(2026, 10, 5, 11), sam)
    resolve(a, alice, wib(2026, 10, 5, 11, 30))
    b = customer(number, "6281000000002", wib(2026, 10, 5, 16)).conversation_id
    queue_outbound(b, wib(2026, 10, 6, 9), alice)
    c = customer(number, "6281000000003", wib(2026, 10, 6, 9)).conversation_id
    d = customer(acme_number, "6281000000004", wib(2026, 10, 6, 12)).conversation_id
    check_deadlines(wib(2026, 10, 6, 13))
    check_deadlines(wib(2026, 10, 7, 9))
    resolve(b, sam, wib(2026, 10, 7, 10))
    with schema_context("acme"):
        assignees = {
            t.conversation_id: t.assignee_id for t in Ticket.objects.filter(conversation_id__in=[a, b, c, d])
        }
    assert assignees == {a: alice.pk, b: alice.pk, c: alice.pk, d: alice.pk}
    return History(number, {"A": a, "B": b, "C": c, "D": d})


def stats(mean: float | None, median: float | None, p90: float | None, count: int) -> dict[str, Any]:
    return {"mean": mean, "median": median, "p90": p90, "count": count}


NONE = stats(None, None, None, 0)


def one(value: float) -> dict[str, Any]:
    return stats(value, value, value, 1)


def times(**figures: dict[str, Any]) -> dict[str, Any]:
    """All six time figures, empty unless given."""
    names = [
        f"{n}{s}"
        for n in ("first_response", "response", "resolution")
        for s in ("_seconds", "_business_seconds")
    ]
    unknown = set(figures) - set(names)
    assert not unknown, unknown
    return {name: figures.get(name, NONE) for name in names}


def volume(
    conversations: int = 0, tickets_opened: int = 0, messages_in: int = 0, messages_out: int = 0
) -> dict:
    return {
        "conversations": conversations,
        "tickets_opened": tickets_opened,
        "messages_in": messages_in,
        "messages_out": messages_out,
    }


def outcomes(resolved: int = 0, met: int = 0, breached: int = 0, expired: int = 0) -> dict[str, Any]:
    return {
        "resolved_tickets": resolved,
        "sla": {"met": met, "breached": breached},
        "windows_expired_unanswered": expired,
        "csat": {"responses": 0, "average": None, "satisfied": 0, "score": None},
    }


def client_of(user: Any) -> Any:
    return tenant_client(ACME, issue_token(user))


def get(user: Any, path: str, **params: Any) -> Any:
    return client_of(user).get(path, params)


# ------------------------------------------------------------------ who may read reports

REPORTS = ["/api/v1/reports/summary/", "/api/v1/reports/timeseries/", "/api/v1/reports/agents/"]


@pytest.mark.parametrize("path", REPORTS)
def test_agents_may_not_read_reports(db, alice, path):
    response = get(alice, path, **{"from": "2026-10-05", "to": "2026-10-07"})

    assert (response.status_code, response.json()) == (
        403,
        {"detail": "Reports are for supervisors and admins.", "code": "permission_denied"},
    )


@pytest.mark.parametrize("path", REPORTS)
@pytest.mark.parametrize("role", ["sam", "ada"], ids=["supervisor", "admin"])
def test_supervisors_and_admins_may_read_reports(db, request, role, path):
    response = get(request.getfixturevalue(role), path, **{"from": "2026-10-05", "to": "2026-10-07"})

    assert response.status_code == 200
    assert (response.json()["from"], response.json()["to"], response.json()["timezone"]) == (
        "2026-10-05",
        "2026-10-07",
        "Asia/Jakarta",
    )


@pytest.mark.parametrize("path", REPORTS)
def test_anonymous_and_other_tenants_may_not_read_reports(db, bob, path):
    params = {"from": "2026-10-05", "to": "2026-10-07"}

    anonymous = tenant_client(ACME).get(path, params)
    outsider = get(bob, path, **params)

    assert (anonymous.status_code, anonymous.json()) == (
        401,
        {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"},
    )
    assert (outsider.status_code, outsider.json()) == (
        403,
        {"detail": "Reports are for supervisors and admins.", "code": "permission_denied"},
    )


# ------------------------------------------------------------------ validation

REQUIRED = "`from` and `to` are required dates, YYYY-MM-DD (days in the tenant's time zone)."


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, REQUIRED),
        ({"from": "2026-10-05"}, REQUIRED),
        ({"to": "2026-10-05"}, REQUIRED),
        ({"from": "2026-13-01", "to": "2026-10-05"}, REQUIRED),
        ({"from": "05/10/2026", "to": "2026-10-05"}, REQUIRED),
        ({"from": "2026-10-07", "to": "2026-10-05"}, "`to` must not be before `from`."),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "A report covers at most 731 days."),
        (
            {"from": "2026-10-05", "to": "2026-10-07", "agent": "me"},
            "`agent` must be an id (a whole number).",
        ),
        (
            {"from": "2026-10-05", "to": "2026-10-07", "number": "-1"},
            "`number` must be an id (a whole number).",
        ),
    ],
    ids=[
        "nothing",
        "no-to",
        "no-from",
        "bad-month",
        "bad-format",
        "to-before-from",
        "too-long",
        "agent",
        "number",
    ],
)
@pytest.mark.parametrize("path", REPORTS)
def test_bad_periods_are_refused(db, sam, path, params, detail):
    response = get(sam, path, **params)

    assert (response.status_code, response.json()) == (400, {"detail": detail, "code": "invalid"})


def test_a_bad_interval_is_refused(db, sam):
    response = get(
        sam, "/api/v1/reports/timeseries/", **{"from": "2026-10-05", "to": "2026-10-07", "interval": "month"}
    )

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "`interval` is `day` or `week`.", "code": "invalid"},
    )


def test_a_single_day_and_the_longest_period_are_accepted(db, sam):
    single = get(sam, "/api/v1/reports/summary/", **{"from": "2026-10-05", "to": "2026-10-05"})
    longest = get(sam, "/api/v1/reports/summary/", **{"from": "2024-01-01", "to": "2025-12-31"})

    assert (single.status_code, longest.status_code) == (200, 200)


# ------------------------------------------------------------------ figures


def test_summary_of_the_history(db, sam, history):
    response = get(
        sam,
        "/api/v1/reports/summary/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk},
    )

    assert response.status_code == 200
    assert response.json() == {
        "from": "2026-10-05",
        "to": "2026-10-07",
        "timezone": "Asia/Jakarta",
        "agent": None,
        "number": history.number.pk,
        "label": None,
        # first responses: A 30 min (the bot and the note did not end the wait), B 17 h (2 business hours)
        **times(
            first_response_seconds=stats(31500.0, 31500.0, 55260.0, 2),
            first_response_business_seconds=stats(4500.0, 4500.0, 6660.0, 2),
            # plus A's second wait: 10:00 to sam's 11:00; alice's 09:40 message added nothing
            response_seconds=stats(22200.0, 3600.0, 49680.0, 3),
            response_business_seconds=stats(4200.0, 3600.0, 6480.0, 3),
            # A 2.5 h; B Monday 16:00 to Wednesday 10:00 = 42 h, 12 business hours
            resolution_seconds=stats(80100.0, 80100.0, 136980.0, 2),
            resolution_business_seconds=stats(26100.0, 26100.0, 39780.0, 2),
        ),
        "chat_volume": volume(conversations=3, tickets_opened=3, messages_in=5, messages_out=5),
        # met: A first, A next, A resolution, B first, B resolution; breached: C first
        **outcomes(resolved=2, met=5, breached=1, expired=1),
    }


def test_summary_filtered_by_agent(db, sam, alice, history):
    period = {"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk}

    mine = get(sam, "/api/v1/reports/summary/", **period, agent=alice.pk).json()
    sams = get(sam, "/api/v1/reports/summary/", **period, agent=sam.pk).json()

    # alice: both first responses, A's resolution; C's breach and expired window count for her as its assignee
    assert mine == {
        "from": "2026-10-05",
        "to": "2026-10-07",
        "timezone": "Asia/Jakarta",
        "agent": alice.pk,
        "number": history.number.pk,
        "label": None,
        **times(
            first_response_seconds=stats(31500.0, 31500.0, 55260.0, 2),
            first_response_business_seconds=stats(4500.0, 4500.0, 6660.0, 2),
            response_seconds=stats(31500.0, 31500.0, 55260.0, 2),
            response_business_seconds=stats(4500.0, 4500.0, 6660.0, 2),
            resolution_seconds=one(9000.0),
            resolution_business_seconds=one(9000.0),
        ),
        # messages in, conversations and tickets are not any agent's; messages out are hers only
        "chat_volume": volume(conversations=3, tickets_opened=3, messages_in=5, messages_out=3),
        **outcomes(resolved=1, met=3, breached=1, expired=1),
    }
    # sam: A's second response and B's resolution
    assert sams == {
        "from": "2026-10-05",
        "to": "2026-10-07",
        "timezone": "Asia/Jakarta",
        "agent": sam.pk,
        "number": history.number.pk,
        "label": None,
        **times(
            response_seconds=one(3600.0),
            response_business_seconds=one(3600.0),
            resolution_seconds=one(151200.0),
            resolution_business_seconds=one(43200.0),
        ),
        "chat_volume": volume(conversations=3, tickets_opened=3, messages_in=5, messages_out=1),
        **outcomes(resolved=1, met=2, breached=0, expired=0),
    }


def label_conversations(*conversation_ids: int) -> int:
    """A new label of acme on these conversations (through the labels' actions); its id."""
    from conversations import labels

    with schema_context("acme"):
        label = labels.do_save_label(None, "VIP " + secrets.token_hex(4), "#d97706")
        for conversation_id in conversation_ids:
            labels.do_set_conversation_labels(Conversation.objects.get(pk=conversation_id), [label.pk])
    return label.pk


def test_summary_filtered_by_label(db, sam, alice, history):
    label = label_conversations(history.conversations["A"], history.conversations["C"])
    period = {"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk, "label": label}

    labelled = get(sam, "/api/v1/reports/summary/", **period).json()
    alices = get(sam, "/api/v1/reports/summary/", **period, agent=alice.pk).json()
    agents = get(sam, "/api/v1/reports/agents/", **period).json()["results"]
    days = get(sam, "/api/v1/reports/timeseries/", **period, interval="day").json()["results"]

    # A and C only: B (unlabelled) is in none of the figures
    assert labelled == {
        "from": "2026-10-05",
        "to": "2026-10-07",
        "timezone": "Asia/Jakarta",
        "agent": None,
        "number": history.number.pk,
        "label": label,
        **times(
            first_response_seconds=one(1800.0),
            first_response_business_seconds=one(1800.0),
            response_seconds=stats(2700.0, 2700.0, 3420.0, 2),
            response_business_seconds=stats(2700.0, 2700.0, 3420.0, 2),
            resolution_seconds=one(9000.0),
            resolution_business_seconds=one(9000.0),
        ),
        # A: three customer messages, the bot's and three replies; C: one customer message
        "chat_volume": volume(conversations=2, tickets_opened=2, messages_in=4, messages_out=4),
        # met: A first, A next, A resolution; breached: C first; C's window expired
        **outcomes(resolved=1, met=3, breached=1, expired=1),
    }
    assert alices["chat_volume"] == volume(conversations=2, tickets_opened=2, messages_in=4, messages_out=2)
    assert alices["first_response_seconds"] == one(1800.0)
    sent = {row["agent"]["id"]: row["messages_out"] for row in agents}
    assert (sent[alice.pk], sent[sam.pk]) == (2, 1)
    assert [day["chat_volume"]["messages_in"] for day in days] == [3, 1, 0]
    assert [day["windows_expired_unanswered"] for day in days] == [0, 0, 1]


@pytest.mark.parametrize(
    ("label", "detail"),
    [("vip", "`label` must be an id (a whole number)."), ("999999999", "`label`: there is no such label.")],
)
def test_a_bad_label_filter_is_refused(db, sam, label, detail):
    response = get(
        sam, "/api/v1/reports/summary/", **{"from": "2026-10-05", "to": "2026-10-07", "label": label}
    )

    assert (response.status_code, response.json()) == (400, {"detail": detail, "code": "invalid"})


def test_summary_filtered_by_number(db, sam, history, acme_number):
    response = get(
        sam,
        "/api/v1/reports/summary/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": acme_number.pk},
    )

    # only D: one unanswered customer, breached Tuesday 16:00
    assert response.json() == {
        "from": "2026-10-05",
        "to": "2026-10-07",
        "timezone": "Asia/Jakarta",
        "agent": None,
        "number": acme_number.pk,
        "label": None,
        **times(),
        "chat_volume": volume(conversations=1, tickets_opened=1, messages_in=1),
        **outcomes(breached=1),
    }


def test_summary_without_filters_adds_every_number(db, sam, history):
    response = get(sam, "/api/v1/reports/summary/", **{"from": "2026-10-05", "to": "2026-10-07"})

    body = response.json()
    assert (body["number"], body["chat_volume"], body["sla"], body["resolved_tickets"]) == (
        None,
        volume(conversations=4, tickets_opened=4, messages_in=6, messages_out=5),
        {"met": 5, "breached": 2},
        2,
    )


def test_resolutions_count_on_the_day_they_happened(db, sam, history):
    def day(date: str) -> dict[str, Any]:
        return get(
            sam, "/api/v1/reports/summary/", **{"from": date, "to": date, "number": history.number.pk}
        ).json()

    monday, tuesday, wednesday, thursday = (day(f"2026-10-0{d}") for d in (5, 6, 7, 8))

    # A resolved Monday, B (opened Monday) resolved Wednesday
    assert [d["resolved_tickets"] for d in (monday, tuesday, wednesday, thursday)] == [1, 0, 1, 0]
    assert (monday["resolution_seconds"], wednesday["resolution_seconds"]) == (one(9000.0), one(151200.0))
    assert thursday == {
        "from": "2026-10-08",
        "to": "2026-10-08",
        "timezone": "Asia/Jakarta",
        "agent": None,
        "number": history.number.pk,
        "label": None,
        **times(),
        "chat_volume": volume(),
        **outcomes(),
    }


def test_a_ticket_resolved_twice_counts_once_with_both_resolution_times(db, acme, sam, alice):
    # given a ticket resolved by alice, reopened by the customer and resolved by sam, all on Monday 12 October
    number = new_number(acme)
    a = customer(number, "6281000000005", wib(2026, 10, 12, 9)).conversation_id
    queue_outbound(a, wib(2026, 10, 12, 9, 10), alice)
    resolve(a, alice, wib(2026, 10, 12, 9, 20))
    customer(number, "6281000000005", wib(2026, 10, 12, 10))
    queue_outbound(a, wib(2026, 10, 12, 10, 5), sam)
    resolve(a, sam, wib(2026, 10, 12, 10, 30))
    period = {"from": "2026-10-12", "to": "2026-10-12", "number": number.pk}

    # when sam reads the day's summary and the agents report
    summary = get(sam, "/api/v1/reports/summary/", **period).json()
    rows = {
        row["agent"]["id"]: row for row in get(sam, "/api/v1/reports/agents/", **period).json()["results"]
    }

    # then one ticket was resolved, with two resolution times (each cycle from its own start) and two first
    # responses; each resolving agent resolved it once
    assert {
        k: summary[k]
        for k in ("first_response_seconds", "resolution_seconds", "resolved_tickets", "chat_volume")
    } == {
        "first_response_seconds": stats(450.0, 450.0, 570.0, 2),
        "resolution_seconds": stats(1500.0, 1500.0, 1740.0, 2),
        "resolved_tickets": 1,
        "chat_volume": volume(conversations=1, tickets_opened=1, messages_in=2, messages_out=2),
    }
    assert (rows[alice.pk]["resolved_tickets"], rows[sam.pk]["resolved_tickets"]) == (1, 1)
    assert (rows[alice.pk]["resolution_seconds"], rows[sam.pk]["resolution_seconds"]) == (
        one(1200.0),
        one(1800.0),
    )


DAYS = {
    "2026-10-05": {
        **times(
            first_response_seconds=one(1800.0),
            first_response_business_seconds=one(1800.0),
            response_seconds=stats(2700.0, 2700.0, 3420.0, 2),
            response_business_seconds=stats(2700.0, 2700.0, 3420.0, 2),
            resolution_seconds=one(9000.0),
            resolution_business_seconds=one(9000.0),
        ),
        "chat_volume": volume(conversations=2, tickets_opened=2, messages_in=4, messages_out=4),
        **outcomes(resolved=1, met=3),
    },
    "2026-10-06": {
        **times(
            first_response_seconds=one(61200.0),
            first_response_business_seconds=one(7200.0),
            response_seconds=one(61200.0),
            response_business_seconds=one(7200.0),
        ),
        "chat_volume": volume(conversations=1, tickets_opened=1, messages_in=1, messages_out=1),
        **outcomes(met=1, breached=1),
    },
    "2026-10-07": {
        **times(resolution_seconds=one(151200.0), resolution_business_seconds=one(43200.0)),
        "chat_volume": volume(),
        **outcomes(resolved=1, met=1, expired=1),
    },
}


def test_timeseries_per_day(db, sam, history):
    response = get(
        sam,
        "/api/v1/reports/timeseries/",
        **{"from": "2026-10-04", "to": "2026-10-08", "number": history.number.pk, "interval": "day"},
    )

    empty = {**times(), "chat_volume": volume(), **outcomes()}
    assert response.json() == {
        "from": "2026-10-04",
        "to": "2026-10-08",
        "timezone": "Asia/Jakarta",
        "interval": "day",
        "results": [{"start": "2026-10-04", **empty}]
        + [{"start": day, **figures} for day, figures in DAYS.items()]
        + [{"start": "2026-10-08", **empty}],
    }


def test_timeseries_per_week_starts_on_monday_and_keeps_to_the_period(db, sam, history):
    whole = get(
        sam,
        "/api/v1/reports/timeseries/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk, "interval": "week"},
    ).json()
    clipped = get(
        sam,
        "/api/v1/reports/timeseries/",
        **{"from": "2026-10-07", "to": "2026-10-14", "number": history.number.pk, "interval": "week"},
    ).json()
    summary = get(
        sam,
        "/api/v1/reports/summary/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk},
    ).json()

    # the whole history is one week, with the summary's figures
    figures = {
        k: v for k, v in summary.items() if k not in ("from", "to", "timezone", "agent", "number", "label")
    }
    assert whole["results"] == [{"start": "2026-10-05", **figures}]
    # a period from Wednesday: the first week holds Wednesday's figures only, the next week nothing
    assert clipped["results"] == [
        {"start": "2026-10-05", **DAYS["2026-10-07"]},
        {"start": "2026-10-12", **times(), "chat_volume": volume(), **outcomes()},
    ]


def test_agents_report_has_one_row_per_member(db, sam, alice, ada, history):
    response = get(
        sam,
        "/api/v1/reports/agents/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk},
    )

    body = response.json()
    members = list(
        Membership.objects.filter(tenant__schema_name="acme")
        .order_by("user__email")
        .values_list("user_id", flat=True)
    )
    assert [row["agent"]["id"] for row in body["results"]] == members
    rows = {row["agent"]["id"]: row for row in body["results"]}
    assert rows[alice.pk] == {
        "agent": {"id": alice.pk, "name": "Alice", "email": "alice@acme.test", "role": "agent"},
        **times(
            first_response_seconds=stats(31500.0, 31500.0, 55260.0, 2),
            first_response_business_seconds=stats(4500.0, 4500.0, 6660.0, 2),
            response_seconds=stats(31500.0, 31500.0, 55260.0, 2),
            response_business_seconds=stats(4500.0, 4500.0, 6660.0, 2),
            resolution_seconds=one(9000.0),
            resolution_business_seconds=one(9000.0),
        ),
        "messages_out": 3,
        **outcomes(resolved=1, met=3, breached=1, expired=1),
    }
    assert rows[sam.pk] == {
        "agent": {"id": sam.pk, "name": "Sam", "email": "sam@acme.test", "role": "supervisor"},
        **times(
            response_seconds=one(3600.0),
            response_business_seconds=one(3600.0),
            resolution_seconds=one(151200.0),
            resolution_business_seconds=one(43200.0),
        ),
        "messages_out": 1,
        **outcomes(resolved=1, met=2),
    }
    assert rows[ada.pk] == {
        "agent": {"id": ada.pk, "name": "Ada", "email": "ada@acme.test", "role": "admin"},
        **times(),
        "messages_out": 0,
        **outcomes(),
    }


def test_agents_report_filtered_by_agent_has_their_row_only(db, sam, alice, history):
    response = get(
        sam,
        "/api/v1/reports/agents/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk, "agent": sam.pk},
    )

    assert [row["agent"]["id"] for row in response.json()["results"]] == [sam.pk]
    assert response.json()["results"][0]["messages_out"] == 1


@pytest.mark.parametrize(
    ("zone", "day_of_it", "other_day"),
    [("America/New_York", "2026-10-05", "2026-10-06"), ("Asia/Jakarta", "2026-10-06", "2026-10-05")],
    ids=["new-york", "jakarta"],
)
def test_days_are_the_tenants_local_days(db, acme, sam, alice, zone, day_of_it, other_day):
    # given acme's time zone, and a customer answered an hour later: 02:30 and 03:30 UTC on 6 October,
    # which is the evening of the 5th in New York and the morning of the 6th in Jakarta
    with schema_context("acme"):
        check_update_support_settings({"timezone": zone})
    number = new_number(acme)
    message = customer(number, "6281000000009", datetime(2026, 10, 6, 2, 30, tzinfo=UTC))
    queue_outbound(message.conversation_id, datetime(2026, 10, 6, 3, 30, tzinfo=UTC), alice)

    # when sam asks for each of the two days
    hit = get(
        sam, "/api/v1/reports/summary/", **{"from": day_of_it, "to": day_of_it, "number": number.pk}
    ).json()
    miss = get(
        sam, "/api/v1/reports/summary/", **{"from": other_day, "to": other_day, "number": number.pk}
    ).json()

    # then everything happened on the local day, and the report says which zone it used
    assert (hit["timezone"], hit["first_response_seconds"], hit["chat_volume"]) == (
        zone,
        one(3600.0),
        volume(conversations=1, tickets_opened=1, messages_in=1, messages_out=1),
    )
    assert (miss["timezone"], miss["first_response_seconds"], miss["chat_volume"]) == (zone, NONE, volume())


# ------------------------------------------------------------------ CSV


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_summary_as_csv(db, sam, history):
    response = get(
        sam,
        "/api/v1/reports/summary/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk, "format": "csv"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="summary-2026-10-05-2026-10-07.csv"'
    header = response.content.decode().splitlines()[0].split(",")
    assert header[:5] == ["from", "to", "timezone", "agent", "number"]
    assert {
        "first_response_seconds.median",
        "response_business_seconds.p90",
        "chat_volume.messages_in",
        "sla.met",
        "sla.breached",
        "resolved_tickets",
        "windows_expired_unanswered",
    } <= set(header)
    rows = csv_rows(response)
    assert len(rows) == 1
    assert {
        k: rows[0][k]
        for k in (
            "first_response_seconds.median",
            "response_seconds.count",
            "chat_volume.messages_in",
            "sla.met",
            "sla.breached",
            "resolved_tickets",
        )
    } == {
        "first_response_seconds.median": "31500.0",
        "response_seconds.count": "3",
        "chat_volume.messages_in": "5",
        "sla.met": "5",
        "sla.breached": "1",
        "resolved_tickets": "2",
    }


def test_timeseries_as_csv_has_one_row_per_bucket(db, sam, history):
    response = get(
        sam,
        "/api/v1/reports/timeseries/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk, "format": "csv"},
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = csv_rows(response)
    assert [(r["start"], r["chat_volume.messages_in"], r["resolved_tickets"]) for r in rows] == [
        ("2026-10-05", "4", "1"),
        ("2026-10-06", "1", "0"),
        ("2026-10-07", "0", "1"),
    ]
    assert response.content.decode().splitlines()[0].startswith("start,first_response_seconds.mean,")


def test_agents_as_csv_has_one_row_per_member(db, sam, alice, history):
    response = get(
        sam,
        "/api/v1/reports/agents/",
        **{"from": "2026-10-05", "to": "2026-10-07", "number": history.number.pk, "format": "csv"},
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = csv_rows(response)
    assert [r["agent.email"] for r in rows] == list(
        Membership.objects.filter(tenant__schema_name="acme")
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    alice_row = next(r for r in rows if r["agent.email"] == "alice@acme.test")
    assert (
        alice_row["messages_out"],
        alice_row["resolved_tickets"],
        alice_row["first_response_seconds.count"],
    ) == (
        "3",
        "1",
        "2",
    )


def test_a_refused_csv_request_says_why(db, sam):
    response = get(
        sam, "/api/v1/reports/summary/", **{"from": "2026-10-07", "to": "2026-10-05", "format": "csv"}
    )

    assert response.status_code == 400
    assert csv_rows(response) == [{"detail": "`to` must not be before `from`.", "code": "invalid"}]


# ------------------------------------------------------------------ sealed days (tickets/intervals.py)
# A report reads the same figures whether its days are sealed or not, reads a sealed day from its sealed rows,
# reads a day with an interval recorded after its seal as recorded until it is sealed again; the periodic job
# seals the days that have ended and only those; percentiles are PostgreSQL's percentile_cont, by selection.


def reports_of(user: Any, number: Any) -> dict[str, Any]:
    period = {"from": "2026-10-05", "to": "2026-10-07", "number": number.pk}
    return {
        path: get(user, f"/api/v1/reports/{path}/", **period, **extra).json()
        for path, extra in (("summary", {}), ("timeseries", {"interval": "day"}), ("agents", {}))
    }


def summary_of(user: Any, number: Any, first: str = "2026-10-05", last: str = "2026-10-07") -> dict[str, Any]:
    return get(user, "/api/v1/reports/summary/", **{"from": first, "to": last}, number=number.pk).json()


def seal(today: date) -> list[date]:
    with schema_context("acme"):
        return intervals.seal_closed_days(today)


def stale(number: Any) -> set[date]:
    with schema_context("acme"):
        return intervals.stale_days(date(2026, 10, 5), date(2026, 10, 7), number.pk)


def test_sealing_changes_no_figure(db, sam, alice, history: History):
    before = reports_of(sam, history.number)
    assert stale(history.number) == {date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)}

    sealed = seal(date(2026, 10, 8))

    assert {date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)} <= set(sealed)
    assert stale(history.number) == set()
    with schema_context("acme"):
        rows = sorted(
            (
                row.day.isoformat(),
                row.name,
                row.count,
                np.frombuffer(row.agent_ids, intervals.AGENTS).tolist(),
            )
            for row in SealedIntervals.objects.filter(number=history.number)
        )
    assert rows == [
        # A: alice answers first (30 min), sam answers the second wait (1 h), alice resolves.
        ("2026-10-05", "first_response", 1, [alice.pk]),
        ("2026-10-05", "resolution", 1, [alice.pk]),
        ("2026-10-05", "response", 2, sorted([alice.pk, sam.pk])),
        # B: alice answers on Tuesday, sam resolves on Wednesday. C is never answered.
        ("2026-10-06", "first_response", 1, [alice.pk]),
        ("2026-10-06", "response", 1, [alice.pk]),
        ("2026-10-07", "resolution", 1, [sam.pk]),
    ]
    assert reports_of(sam, history.number) == before
    assert seal(date(2026, 10, 8)) == []  # nothing left to seal


def test_a_sealed_day_is_read_from_its_sealed_rows(db, sam, alice, history: History):
    seal(date(2026, 10, 8))
    with schema_context("acme"):
        row = SealedIntervals.objects.get(number=history.number, day=date(2026, 10, 6), name="first_response")
        # B's first response (17 h) as if it had been 5 s: the count still matches, so the row is trusted.
        row.seconds = np.array([5.0]).tobytes()
        row.save()
    figures = summary_of(sam, history.number, "2026-10-06", "2026-10-06")
    assert figures["first_response_seconds"] == {"mean": 5.0, "median": 5.0, "p90": 5.0, "count": 1}


def test_an_interval_recorded_after_the_seal_is_reported_until_the_day_is_sealed_again(
    db, sam, alice, history: History
):
    before = summary_of(sam, history.number)
    seal(date(2026, 10, 8))

    # A late write dated Wednesday 7 October: a new customer answered after 20 minutes.
    late = customer(history.number, "6281000000009", wib(2026, 10, 7, 9, 40)).conversation_id
    queue_outbound(late, wib(2026, 10, 7, 10), alice)

    assert stale(history.number) == {date(2026, 10, 7)}
    after = summary_of(sam, history.number)
    assert after["first_response_seconds"]["count"] == before["first_response_seconds"]["count"] + 1
    assert after["response_seconds"]["count"] == before["response_seconds"]["count"] + 1
    day = summary_of(sam, history.number, "2026-10-07", "2026-10-07")
    assert day["first_response_seconds"] == {"mean": 1200.0, "median": 1200.0, "p90": 1200.0, "count": 1}

    assert seal(date(2026, 10, 8)) == [date(2026, 10, 7)]
    assert stale(history.number) == set()
    assert summary_of(sam, history.number) == after


def test_the_periodic_job_seals_ended_days_and_not_today(db, alice, acme_number, history: History):
    now = timezone.now()
    today = now.astimezone(ZoneInfo("Asia/Jakarta")).date()  # acme's zone
    waiting = customer(acme_number, "6281000000010", now - timedelta(minutes=5)).conversation_id
    queue_outbound(waiting, now, alice)

    seal_report_days.delay()

    with schema_context("acme"):
        sealed_days = set(SealedIntervals.objects.values_list("day", flat=True))
        assert intervals.stale_days(date(2026, 10, 5), today - timedelta(days=1)) == set()
        assert intervals.stale_days(today, today) == {today}  # today's reply, read as recorded
    assert {date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)} <= sealed_days
    assert today not in sealed_days


values = st.lists(
    st.floats(min_value=0, max_value=10**7, allow_nan=False, allow_infinity=False), min_size=1, max_size=300
)


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=values)
def test_percentiles_are_postgresqls_percentile_cont(db, values: list[float]):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), avg(v), percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v)"
            " FROM unnest(%s::float8[]) v",
            [values],
        )
        count, mean, (median, p90) = cursor.fetchone()
    assert intervals.describe(np.array(values)) == (count, pytest.approx(mean, rel=1e-12), median, p90)


def test_no_intervals_describe_as_empty():
    assert intervals.describe(np.array([], dtype=float)) == (0, None, None, None)


def test_consecutive_days_are_read_as_ranges():
    days = {date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 5), date(2025, 12, 31)}
    assert intervals._runs(days) == [
        (date(2025, 12, 31), date(2026, 1, 3)),
        (date(2026, 1, 5), date(2026, 1, 5)),
    ]


def test_sealed_values_are_ordered_by_agent_then_time(db, alice, sam, history: History):
    # Three more waits on Wednesday (business hours): alice answers after 40 and 10 minutes, sam after 5.
    for wa_id, (hour, minutes), agent in (
        ("6281000000011", (9, 40), alice),
        ("6281000000012", (11, 10), alice),
        ("6281000000013", (13, 5), sam),
    ):
        waiting = customer(history.number, wa_id, wib(2026, 10, 7, hour)).conversation_id
        queue_outbound(waiting, wib(2026, 10, 7, hour, minutes), agent)
    seal(date(2026, 10, 8))
    with schema_context("acme"):
        row = SealedIntervals.objects.get(number=history.number, day=date(2026, 10, 7), name="response")
    stored = list(
        zip(
            np.frombuffer(row.agent_ids, intervals.AGENTS).tolist(),
            np.frombuffer(row.seconds, intervals.PACKED).tolist(),
            np.frombuffer(row.business_seconds, intervals.PACKED).tolist(),
            strict=True,
        )
    )
    assert row.count == 3
    assert stored == sorted([(alice.pk, 2400.0, 2400.0), (alice.pk, 600.0, 600.0), (sam.pk, 300.0, 300.0)])
