"""Property: for random histories (customer messages, agent replies, bot messages, notes, status, priority and
assignment changes, gaps from seconds to days, four time zones, business hours with a holiday, across a DST
change) the reports equal a brute-force recomputation from the raw message rows and the changes applied.

The brute force below is written from the metric definitions, not from tickets.actions: it replays the
messages and changes in time order with its own ticket model and its own business calendar (built day by day
from the weekly hours, holidays and zoneinfo), with the periodic deadline check running before every step
and at the end, as it does every minute in production.
"""

from __future__ import annotations

import math
import os
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.db.models import Sum
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conversations import actions as conversation_actions
from conversations.models import Conversation, Message, SenderKind
from helpdesk.tenancy.actions import do_add_member, do_add_number
from helpdesk.tenancy.models import Tenant
from tests.conftest import ACME, PASSWORD
from tickets import actions, deadlines, intervals, reports
from tickets.models import SealedIntervals, Ticket
from tickets.support_settings import check_update_support_settings

EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "30"))  # more for a deeper local run
TIMEZONES = ["Asia/Jakarta", "America/New_York", "Europe/Berlin", "Asia/Kolkata"]
# Histories start about two days before a DST change (none in Jakarta and Kolkata, but the same span).
DST_CHANGE = {
    "America/New_York": datetime(2026, 3, 8, 7, tzinfo=UTC),
    "Europe/Berlin": datetime(2026, 3, 29, 1, tzinfo=UTC),
    "Asia/Jakarta": datetime(2026, 3, 8, 7, tzinfo=UTC),
    "Asia/Kolkata": datetime(2026, 3, 29, 1, tzinfo=UTC),
}
# Opening hours of a day, whole local hours; 24 is midnight at the end of the day. No hour is ever 2 or 3,
# which do not exist on the spring-forward day.
DAY_OPTIONS: list[list[tuple[int, int]]] = [
    [],
    [(8, 17)],
    [(9, 12), (13, 18)],
    [(0, 24)],
    [(1, 4)],
    [(20, 24)],
]
ACTIONS = (
    ["customer"] * 5
    + ["reply"] * 4
    + ["bot", "note", "resolve", "resolve", "close", "pending", "reopen", "priority", "assign"]
)
PRIORITIES = ["low", "normal", "high", "urgent"]
TARGETS = {  # the tenant defaults (tickets.actions.DEFAULT_SLA), restated: first, next, resolution
    "urgent": (15 * 60, 30 * 60, 4 * 3600),
    "high": (3600, 2 * 3600, 8 * 3600),
    "normal": (4 * 3600, 8 * 3600, 24 * 3600),
    "low": (8 * 3600, 16 * 3600, 72 * 3600),
}
REOPEN_WINDOW = timedelta(hours=72)
FAR = datetime(9999, 1, 1, tzinfo=UTC)
CUSTOMER_WINDOW = timedelta(hours=24)


# ------------------------------------------------------------------ the random scenario


@dataclass(frozen=True)
class Step:
    conversation: int
    action: str
    gap: int  # seconds since the previous step
    agent: int  # 0 or 1
    choice: int  # which priority / assignee / bot kind


@dataclass(frozen=True)
class Scenario:
    zone: str
    start_offset: int
    weekly: dict[int, list[tuple[int, int]]]
    holiday_offset: int
    steps: list[Step]
    tail: int  # seconds from the last step to the final deadline check
    sub_period: tuple[int, int]


gaps = st.one_of(st.integers(1, 120), st.integers(120, 4 * 3600), st.integers(4 * 3600, 4 * 86400))
steps = st.builds(
    Step,
    st.sampled_from([0, 0, 0, 1, 1, 2]),
    st.sampled_from(ACTIONS),
    gaps,
    st.integers(0, 1),
    st.integers(0, 3),
)
scenarios = st.builds(
    Scenario,
    zone=st.sampled_from(TIMEZONES),
    start_offset=st.integers(0, 2 * 86400),
    weekly=st.fixed_dictionaries({day: st.sampled_from(DAY_OPTIONS) for day in range(7)}).map(
        lambda weekly: weekly if any(weekly.values()) else {**weekly, 0: [(8, 17)]}
    ),
    holiday_offset=st.integers(0, 5),
    steps=st.lists(steps, min_size=8, max_size=30),
    tail=st.integers(0, 3 * 86400),
    sub_period=st.tuples(st.integers(0, 8), st.integers(0, 8)),
)


# ------------------------------------------------------------------ the brute force


class Calendar:
    """Business intervals as UTC moments, built day by day over [first, last] from the weekly hours."""

    def __init__(
        self,
        zone: ZoneInfo,
        weekly: dict[int, list[tuple[int, int]]],
        holidays: set[date],
        first: date,
        last: date,
    ) -> None:
        self.intervals: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            if day not in holidays:
                for opens, closes in weekly[day.weekday()]:
                    start = datetime(day.year, day.month, day.day, opens, tzinfo=zone)
                    following = day + timedelta(days=1)
                    end = (
                        datetime(following.year, following.month, following.day, tzinfo=zone)
                        if closes == 24
                        else datetime(day.year, day.month, day.day, closes, tzinfo=zone)
                    )
                    self.intervals.append((start.astimezone(UTC), end.astimezone(UTC)))
            day += timedelta(days=1)

    def seconds(self, start: datetime, end: datetime) -> float:
        return sum(
            max(0.0, (min(end, close) - max(start, open_)).total_seconds()) for open_, close in self.intervals
        )

    def add(self, start: datetime, seconds: int) -> datetime:
        """`seconds` of business time after `start`; FAR when that lies beyond the calendar (after the end)."""
        remaining = seconds
        for open_, close in self.intervals:
            if close <= start:
                continue
            begin = max(start, open_)
            available = (close - begin).total_seconds()
            if available >= remaining:
                return begin + timedelta(seconds=remaining)
            remaining -= available
        return FAR


@dataclass(eq=False)
class Case:
    conversation: int
    opened_at: datetime
    cycle_start: datetime
    status: str = "open"
    priority: str = "normal"
    assignee: int | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    waiting_since: datetime | None = None
    awaiting_first: bool = True
    response_due: datetime | None = None
    response_breached: bool = False
    resolution_due: datetime | None = None
    resolution_breached: bool = False
    window_expired_for: datetime | None = None


@dataclass
class Measured:
    name: str
    day: date
    seconds: float
    business: float
    agent: int | None
    case: Case
    met: bool | None = None


@dataclass
class BruteForce:
    zone: ZoneInfo
    calendar: Calendar
    measured: list[Measured] = field(default_factory=list)
    messages_in: Counter[date] = field(default_factory=Counter)
    messages_out: Counter[tuple[date, int]] = field(default_factory=Counter)
    opened: Counter[date] = field(default_factory=Counter)
    conversation_days: set[tuple[date, int]] = field(default_factory=set)
    cases: list[Case] = field(default_factory=list)
    current: dict[int, Case] = field(default_factory=dict)
    window_end: dict[int, datetime] = field(default_factory=dict)

    def day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def measure(
        self,
        name: str,
        case: Case,
        start: datetime,
        end: datetime,
        agent: int | None,
        met: bool | None = None,
    ) -> None:
        self.measured.append(
            Measured(
                name,
                self.day(end),
                (end - start).total_seconds(),
                self.calendar.seconds(start, end),
                agent,
                case,
                met,
            )
        )

    def start_wait(self, case: Case, since: datetime) -> None:
        first, following, _ = TARGETS[case.priority]
        case.waiting_since = since
        case.response_due = self.calendar.add(since, first if case.awaiting_first else following)
        case.response_breached = False

    def start_resolution(self, case: Case) -> None:
        case.resolution_due = self.calendar.add(case.cycle_start, TARGETS[case.priority][2])
        case.resolution_breached = False

    def response_kind(self, case: Case) -> str:
        return "first_response" if case.awaiting_first else "next_response"

    def breach_response(self, case: Case, now: datetime) -> None:
        if (
            case.waiting_since
            and case.response_due
            and not case.response_breached
            and case.response_due <= now
        ):
            self.measure("sla", case, case.waiting_since, case.response_due, case.assignee, met=False)
            case.response_breached = True

    def breach_resolution(self, case: Case, now: datetime) -> None:
        if case.resolution_due and not case.resolution_breached and case.resolution_due <= now:
            self.measure("sla", case, case.cycle_start, case.resolution_due, case.assignee, met=False)
            case.resolution_breached = True

    def window_expired(self, case: Case, window_end: datetime) -> None:
        if case.waiting_since and case.waiting_since <= window_end and case.window_expired_for != window_end:
            self.measure("window_expired", case, case.waiting_since, window_end, case.assignee)
            case.window_expired_for = window_end

    def check_deadlines(self, now: datetime) -> None:
        for conversation, case in self.current.items():
            if case.status not in ("open", "pending"):
                continue
            self.breach_response(case, now)
            self.breach_resolution(case, now)
            if self.window_end[conversation] <= now:
                self.window_expired(case, self.window_end[conversation])

    def customer(self, conversation: int, at: datetime) -> None:
        day = self.day(at)
        self.messages_in[day] += 1
        self.conversation_days.add((day, conversation))
        case = self.current.get(conversation)
        previous_end = self.window_end.get(conversation)
        if case and previous_end and previous_end < at:
            self.window_expired(case, previous_end)
        if case and case.status in ("open", "pending"):
            case.status = "open"
            if case.waiting_since is None:
                self.start_wait(case, at)
        elif case and case.status == "resolved" and at - case.resolved_at <= REOPEN_WINDOW:  # type: ignore[operator]
            case.status, case.reopen_count, case.cycle_start = "open", case.reopen_count + 1, at
            case.resolved_at, case.awaiting_first = None, True
            self.start_wait(case, at)
            self.start_resolution(case)
        else:
            case = Case(conversation, opened_at=at, cycle_start=at)
            self.cases.append(case)
            self.current[conversation] = case
            self.opened[day] += 1
            self.start_wait(case, at)
            self.start_resolution(case)
        self.window_end[conversation] = at + CUSTOMER_WINDOW

    def outbound(self, conversation: int, at: datetime, agent: int | None) -> None:
        self.messages_out[(self.day(at), agent or 0)] += 1
        case = self.current.get(conversation)
        if agent is None or case is None or case.waiting_since is None:
            return
        start = case.waiting_since
        self.measure("response", case, start, at, agent)
        if case.awaiting_first:
            self.measure("first_response", case, start, at, agent)
        if case.response_due and not case.response_breached:
            met = at <= case.response_due
            self.measure("sla", case, start, at if met else case.response_due, agent, met=met)
        case.awaiting_first = False
        self.stop_wait(case)

    def stop_wait(self, case: Case) -> None:
        case.waiting_since = case.response_due = None
        case.response_breached = False

    def change(self, conversation: int, at: datetime, action: str, value: Any, seen_status: str) -> None:
        case = self.current[conversation]
        assert case.status == seen_status, (action, case.status, seen_status)
        if action == "resolve":
            self.breach_response(case, at)
            self.measure("resolution", case, case.cycle_start, at, value)
            if case.resolution_due and not case.resolution_breached:
                met = at <= case.resolution_due
                self.measure(
                    "sla", case, case.cycle_start, at if met else case.resolution_due, value, met=met
                )
            case.status, case.resolved_at, case.resolution_due = "resolved", at, None
            self.stop_wait(case)
        elif action == "close":
            self.breach_response(case, at)
            self.breach_resolution(case, at)
            case.status, case.resolution_due = "closed", None
            self.stop_wait(case)
        elif action == "pending":
            case.status = "pending"
        elif action == "reopen":
            case.status, case.reopen_count, case.cycle_start, case.resolved_at = (
                "open",
                case.reopen_count + 1,
                at,
                None,
            )
            self.start_resolution(case)
        elif action == "priority" and value != case.priority:
            case.priority = value
            if case.waiting_since:  # the same wait, re-timed: still one outcome at most
                breached = case.response_breached
                self.start_wait(case, case.waiting_since)
                case.response_breached = breached
            if case.status in ("open", "pending"):
                breached = case.resolution_breached
                self.start_resolution(case)
                case.resolution_breached = breached
        elif action == "assign":
            case.assignee = value

    # ---------------------------------------------------------- figures

    def figures(self, days: set[date], agent: int | None = None) -> dict[str, Any]:
        def mine(row: Measured) -> bool:
            return row.day in days and (agent is None or row.agent == agent)

        out: dict[str, Any] = {}
        for name in ("first_response", "response", "resolution"):
            rows = [row for row in self.measured if row.name == name and mine(row)]
            out[f"{name}_seconds"] = stats([row.seconds for row in rows])
            out[f"{name}_business_seconds"] = stats([row.business for row in rows])
        out["chat_volume"] = {
            "conversations": len({c for d, c in self.conversation_days if d in days}),
            "tickets_opened": sum(n for d, n in self.opened.items() if d in days),
            "messages_in": sum(n for d, n in self.messages_in.items() if d in days),
            "messages_out": sum(
                n for (d, a), n in self.messages_out.items() if d in days and (agent is None or a == agent)
            ),
        }
        out["messages_out"] = out["chat_volume"]["messages_out"]
        out["resolved_tickets"] = len(
            {id(row.case) for row in self.measured if row.name == "resolution" and mine(row)}
        )
        sla = [row for row in self.measured if row.name == "sla" and mine(row)]
        out["sla"] = {"met": sum(1 for r in sla if r.met), "breached": sum(1 for r in sla if not r.met)}
        out["windows_expired_unanswered"] = sum(
            1 for r in self.measured if r.name == "window_expired" and mine(r)
        )
        return out


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "median": None, "p90": None, "count": 0}
    ordered = sorted(values)

    def percentile(q: float) -> float:
        position = q * (len(ordered) - 1)
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {
        "mean": sum(ordered) / len(ordered),
        "median": percentile(0.5),
        "p90": percentile(0.9),
        "count": len(ordered),
    }


def assert_same(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for name in ("first_response", "response", "resolution"):
        for suffix in ("_seconds", "_business_seconds"):
            key = name + suffix
            got, want = actual[key], expected[key]
            assert got["count"] == want["count"], (where, key, got, want)
            for figure in ("mean", "median", "p90"):
                if want[figure] is None:
                    assert got[figure] is None, (where, key, figure, got, want)
                else:
                    assert got[figure] == pytest.approx(want[figure], abs=1e-3), (
                        where,
                        key,
                        figure,
                        got,
                        want,
                    )
    for key in ("resolved_tickets", "sla", "windows_expired_unanswered"):
        assert actual[key] == expected[key], (where, key, actual[key], expected[key])
    if "chat_volume" in actual:
        assert actual["chat_volume"] == expected["chat_volume"], (
            where,
            actual["chat_volume"],
            expected["chat_volume"],
        )
    if "messages_out" in actual:
        assert actual["messages_out"] == expected["messages_out"], (where, actual["messages_out"])


# ------------------------------------------------------------------ applying a history through the actions


class Rollback(Exception):
    """Raised at the end of every example: its data never stays in the database."""


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


@pytest.fixture
def carl(acme: Any) -> Any:
    return do_add_member(acme, f"carl-{secrets.token_hex(4)}@acme.test", "agent", PASSWORD, "Carl").user


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
def test_reports_equal_a_brute_force_recomputation(db, acme, alice, sam, carl, scenario):
    agents = [alice, carl]
    actions._rules_cache.clear()
    try:
        with schema_context("acme"), transaction.atomic():
            run(scenario, acme, agents, sam)
            raise Rollback
    except Rollback:
        pass
    finally:
        actions._rules_cache.clear()
    assert Tenant.objects.get(schema_name="acme").timezone_name == "Asia/Jakarta"


def run(scenario: Scenario, acme: Any, agents: list[Any], sam: Any) -> None:
    zone = ZoneInfo(scenario.zone)
    start = DST_CHANGE[scenario.zone] - timedelta(days=2) + timedelta(seconds=scenario.start_offset)
    holiday = start.astimezone(zone).date() + timedelta(days=scenario.holiday_offset)
    check_update_support_settings(
        {
            "timezone": scenario.zone,
            "auto_assign": False,
            "business_hours": [
                {
                    "weekday": day,
                    "opens": f"{opens:02d}:00",
                    "closes": "00:00" if closes == 24 else f"{closes:02d}:00",
                }
                for day, hours in scenario.weekly.items()
                for opens, closes in hours
            ],
            "holidays": [{"date": holiday.isoformat(), "name": "Holiday"}],
        }
    )
    digits = str(secrets.randbelow(10**12)).zfill(12)
    number = do_add_number(
        acme,
        phone_number_id="8" + digits,
        waba_id=ACME["waba"],
        display_number="1555" + digits[:7],
        access_token="token",
        app_secret="secret",
        verify_token="verify-" + digits,
    )

    # apply the history, with the periodic deadline check before every step
    conversations: dict[int, int] = {}
    applied: list[tuple[datetime, int, str, Any, str]] = []  # (at, conversation, action, value, status seen)
    checks: list[datetime] = []
    at = int(start.timestamp())
    for step in scenario.steps:
        at += step.gap
        moment = datetime.fromtimestamp(at, tz=UTC)
        checks.append(moment)
        deadlines.raise_due_warnings(moment)
        conversation_id = conversations.get(step.conversation)
        agent = agents[step.agent]
        if step.action == "customer":
            message = conversation_actions.do_receive_inbound(
                number,
                {
                    "from": f"62810000{step.conversation:05d}",
                    "id": f"wamid.PB{secrets.token_hex(12)}",
                    "timestamp": str(at),
                    "type": "text",
                    "text": {"body": "hi"},
                },
                [],
            )
            assert message is not None
            conversations[step.conversation] = message.conversation_id
            continue
        if conversation_id is None:
            continue  # nobody wrote in this conversation yet
        conversation = Conversation.objects.get(pk=conversation_id)
        if step.action in ("reply", "bot"):
            kind = (
                SenderKind.AGENT
                if step.action == "reply"
                else [SenderKind.BOT, SenderKind.AUTOMATION, SenderKind.BROADCAST, SenderKind.BOT][
                    step.choice
                ]
            )
            with transaction.atomic():
                locked = Conversation.objects.select_for_update().get(pk=conversation_id)
                sent = Message.objects.create(
                    conversation=locked,
                    direction="out",
                    type="text",
                    text="x",
                    content={"body": "x"},
                    status="queued",
                    sender_kind=kind,
                    sender_user_id=agent.pk if step.action == "reply" else None,
                    created_at=moment,
                )
                actions.on_outbound_message(locked, sent)
            continue
        if step.action == "note":
            conversation_actions.check_add_note(conversation, agent, "a private note")
            continue
        ticket = Ticket.objects.get(pk=conversation.current_ticket_id)
        seen = ticket.status
        if step.action == "resolve" and seen in ("open", "pending"):
            actions.do_update_ticket(ticket, agent, status="resolved", now=moment)
            applied.append((moment, conversation_id, "resolve", agent.pk, seen))
        elif step.action == "close" and seen in ("open", "pending", "resolved"):
            actions.do_update_ticket(ticket, sam, status="closed", now=moment)
            applied.append((moment, conversation_id, "close", None, seen))
        elif step.action == "pending" and seen == "open":
            actions.do_update_ticket(ticket, sam, status="pending", now=moment)
            applied.append((moment, conversation_id, "pending", None, seen))
        elif step.action == "reopen" and seen in ("resolved", "closed"):
            actions.do_update_ticket(ticket, sam, status="open", now=moment)
            applied.append((moment, conversation_id, "reopen", None, seen))
        elif step.action == "priority":
            actions.do_update_ticket(ticket, sam, priority=PRIORITIES[step.choice], now=moment)
            applied.append((moment, conversation_id, "priority", PRIORITIES[step.choice], seen))
        elif step.action == "assign":
            assignee = [agents[0], agents[1], None, agents[0]][step.choice]
            actions.do_update_ticket(ticket, sam, assignee=assignee, change_assignee=True, now=moment)
            applied.append((moment, conversation_id, "assign", assignee.pk if assignee else None, seen))
    end = datetime.fromtimestamp(at + scenario.tail, tz=UTC)
    deadlines.raise_due_warnings(end)
    checks.append(end)

    # recompute from the raw rows
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date() + timedelta(days=1)
    brute = BruteForce(
        zone,
        Calendar(
            zone, scenario.weekly, {holiday}, first_day - timedelta(days=2), last_day + timedelta(days=2)
        ),
    )
    timeline: list[tuple[datetime, int, Any]] = [(moment, 0, ("check",)) for moment in checks]
    for row in Message.objects.filter(conversation__number=number).values(
        "conversation_id", "direction", "sender_kind", "sender_user_id", "created_at"
    ):
        timeline.append((row["created_at"], 1, ("message", row)))
    timeline += [
        (moment, 1, ("change", (conversation_id, action, value, seen)))
        for moment, conversation_id, action, value, seen in applied
    ]
    for moment, _, (kind, *payload) in sorted(timeline, key=lambda entry: (entry[0], entry[1])):
        if kind == "check":
            brute.check_deadlines(moment)
        elif kind == "message":
            row = payload[0]
            if row["direction"] == "in":
                brute.customer(row["conversation_id"], moment)
            else:
                agent_id = row["sender_user_id"] if row["sender_kind"] == SenderKind.AGENT else None
                brute.outbound(row["conversation_id"], moment, agent_id)
        else:
            conversation_id, action, value, seen = payload[0]
            brute.change(conversation_id, moment, action, value, seen)

    # the tickets themselves: same cases, statuses, reopens, priorities and assignees
    stored = list(
        Ticket.objects.filter(number=number)
        .order_by("conversation_id", "opened_at")
        .values_list("conversation_id", "opened_at", "status", "reopen_count", "priority", "assignee_id")
    )
    modelled = sorted(
        (
            (c.conversation, c.opened_at, c.status, c.reopen_count, c.priority, c.assignee)
            for c in brute.cases
        ),
        key=lambda t: (t[0], t[1]),
    )
    assert stored == modelled
    names = Counter(
        row.name if row.name != "sla" else f"sla {'met' if row.met else 'breached'}" for row in brute.measured
    )
    for name in ("response", "resolution", "sla met", "sla breached", "window_expired"):
        event(f"{name}: {'yes' if names[name] else 'no'}")
    event(f"reopened: {'yes' if any(c.reopen_count for c in brute.cases) else 'no'}")
    event(f"tickets per conversation > 1: {'yes' if len(brute.cases) > len(conversations) else 'no'}")
    event(f"spans the DST change: {'yes' if start < DST_CHANGE[scenario.zone] < end else 'no'}")

    # and the reports: with nothing sealed (every day read as recorded), with the days before the sub-period's
    # end sealed, and with every day sealed (tickets/intervals.py); each time equal to the brute force
    low, high = sorted(first_day + timedelta(days=n) for n in scenario.sub_period)
    high = min(high, last_day)
    low = min(low, high)
    check_reports(brute, number, agents, sam, scenario.zone, (first_day, last_day), (low, high))
    intervals.seal_closed_days(high)
    check_reports(brute, number, agents, sam, scenario.zone, (first_day, last_day), (low, high))
    intervals.seal_closed_days(last_day + timedelta(days=1))
    assert intervals.stale_days(first_day, last_day, number.pk) == set()
    sealed = SealedIntervals.objects.filter(number=number).aggregate(total=Sum("count"))["total"] or 0
    assert sealed == sum(1 for row in brute.measured if row.name in intervals.TIMES)
    check_reports(brute, number, agents, sam, scenario.zone, (first_day, last_day), (low, high))


def check_reports(
    brute: BruteForce,
    number: Any,
    agents: list[Any],
    sam: Any,
    zone: str,
    whole: tuple[date, date],
    part: tuple[date, date],
) -> None:
    first_day, last_day = whole
    low, high = part
    every_day = {first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)}
    period = reports.Period(first_day, last_day, number_id=number.pk)
    assert_same(reports.summary(period, zone), brute.figures(every_day), "summary")
    for agent in agents:
        assert_same(
            reports.summary(reports.Period(first_day, last_day, agent.pk, number.pk), zone),
            brute.figures(every_day, agent.pk),
            f"summary of agent {agent.pk}",
        )
    assert_same(
        reports.summary(reports.Period(low, high, number_id=number.pk), zone),
        brute.figures({d for d in every_day if low <= d <= high}),
        f"summary {low}..{high}",
    )
    daily = reports.timeseries(period, "day", zone)["results"]
    assert [bucket["start"] for bucket in daily] == sorted(d.isoformat() for d in every_day)
    for bucket in daily:
        assert_same(bucket, brute.figures({date.fromisoformat(bucket["start"])}), f"day {bucket['start']}")
    weekly = reports.timeseries(period, "week", zone)["results"]
    assert [bucket["start"] for bucket in weekly] == sorted({week_start(d).isoformat() for d in every_day})
    for bucket in weekly:
        monday = date.fromisoformat(bucket["start"])
        assert_same(
            bucket, brute.figures({d for d in every_day if week_start(d) == monday}), f"week {monday}"
        )
    members = [
        {"id": user.pk, "name": user.display_name, "email": user.email, "role": "agent"}
        for user in [*agents, sam]
    ]
    rows = reports.agents(period, members, zone)["results"]
    assert [row["agent"]["id"] for row in rows] == [member["id"] for member in members]
    for row in rows:
        expected = brute.figures(every_day, row["agent"]["id"])
        del expected["chat_volume"]
        assert_same(row, expected, f"agent row {row['agent']['id']}")
