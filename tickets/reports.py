"""Report figures from the reporting store (never from the messages): see docs/metrics.md for definitions.

`from` / `to` are whole days in the tenant's time zone, both included; every row carries the local day of its
event, so a period is a plain day range. Times are in seconds, calendar and business, with mean, median and
90th percentile (exact: PostgreSQL's percentile_cont over all the period's intervals, as tickets/intervals.py
reads them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection

from conversations.models import Conversation, Label, Message
from helpdesk.params import parse_id
from tickets import intervals
from tickets.intervals import TIMES, Intervals
from tickets.models import ConversationDay, DailyVolume, ReportingEvent, Ticket

MAX_DAYS = 731
LAST_DAY = date.max - timedelta(days=7)  # a week's bucket after `to` must still be a date


class ReportError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    agent_id: int | None = None
    number_id: int | None = None
    label_id: int | None = None

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        agent: str | None = None,
        number: str | None = None,
        label: str | None = None,
    ) -> Period:
        try:
            first = date.fromisoformat(start or "")
            last = date.fromisoformat(end or "")
        except ValueError:
            raise ReportError(
                "`from` and `to` are required dates, YYYY-MM-DD (days in the tenant's time zone)."
            ) from None
        if last < first:
            raise ReportError("`to` must not be before `from`.")
        if last > LAST_DAY:
            raise ReportError(f"`to` must not be after {LAST_DAY.isoformat()}.")
        if (last - first).days >= MAX_DAYS:
            raise ReportError(f"A report covers at most {MAX_DAYS} days.")
        ids: dict[str, int | None] = {}
        for name, value in (("agent", agent), ("number", number), ("label", label)):
            ids[name] = parse_id(value) if value else None
            if value and ids[name] is None:
                raise ReportError(f"`{name}` must be an id (a whole number).")
        if ids["label"] is not None and not Label.objects.filter(pk=ids["label"]).exists():
            raise ReportError("`label`: there is no such label.")
        return cls(first, last, ids["agent"], ids["number"], ids["label"])

    def local_bounds(self, timezone_name: str) -> tuple[datetime, datetime]:
        """The period as moments: the start of its first local day, the start of the day after its last."""
        zone = ZoneInfo(timezone_name)
        return (
            datetime.combine(self.start, time.min, zone),
            datetime.combine(self.end + timedelta(days=1), time.min, zone),
        )


def _where(
    period: Period, agent_column: str | None = "agent_id", labelled: bool = False
) -> tuple[str, list[Any]]:
    """The period's conditions on a table with `day` and `number_id` (and `conversation_id` when `labelled`)."""
    clauses = ["day BETWEEN %s AND %s"]
    params: list[Any] = [period.start, period.end]
    if period.agent_id is not None and agent_column:
        clauses.append(f"{agent_column} = %s")
        params.append(period.agent_id)
    if period.number_id is not None:
        clauses.append("number_id = %s")
        params.append(period.number_id)
    label, label_params = intervals.of_label(period.label_id if labelled else None)
    return " AND ".join(clauses) + label, params + label_params


def _stats(count: int, mean: float | None, median: float | None, p90: float | None) -> dict[str, Any]:
    def seconds(value: float | None) -> float | None:
        return None if value is None else round(float(value), 3)

    return {"mean": seconds(mean), "median": seconds(median), "p90": seconds(p90), "count": int(count or 0)}


EMPTY = {"mean": None, "median": None, "p90": None, "count": 0}
WEEK = "date_trunc('week', day)::date"
# How the time figures group the intervals, for each SQL grouping of the counts (agents: see _time_stats).
GROUP_KEYS: dict[str, Callable[[Intervals], Any]] = {
    "": lambda part: None,
    "day": lambda part: part.day,
    WEEK: lambda part: part.day - timedelta(days=part.day.weekday()),
}


def _time_stats(period: Period, group: str = "") -> dict[Any, dict[str, Any]]:
    """{group key: {"first_response_seconds": {...}, "first_response_business_seconds": {...}, ...}}"""
    parts = intervals.read(period.start, period.end, period.number_id, period.agent_id, period.label_id)
    values: dict[tuple[Any, str], tuple[np.ndarray, np.ndarray]] = {}
    if group == "agent_id":
        for name in TIMES:
            measured = intervals.by_agent([part for part in parts if part.name == name])
            values.update({(agent_id, name): pair for agent_id, pair in measured.items()})
    else:
        grouped: dict[tuple[Any, str], list[Intervals]] = {}
        for part in parts:
            grouped.setdefault((GROUP_KEYS[group](part), part.name), []).append(part)
        for key, its_parts in grouped.items():
            values[key] = (
                np.concatenate([part.seconds for part in its_parts]),
                np.concatenate([part.business_seconds for part in its_parts]),
            )
    out: dict[Any, dict[str, Any]] = {}
    for (key, name), (seconds, business_seconds) in values.items():
        figures = out.setdefault(key, _empty_times())
        figures[f"{name}_seconds"] = _stats(*intervals.describe(seconds))
        figures[f"{name}_business_seconds"] = _stats(*intervals.describe(business_seconds))
    return out


def _empty_times() -> dict[str, Any]:
    return {f"{name}{suffix}": dict(EMPTY) for name in TIMES for suffix in ("_seconds", "_business_seconds")}


def _volume(period: Period, timezone_name: str, group: str = "") -> dict[Any, dict[str, int]]:
    if period.label_id is not None:
        return _labelled_volume(period, timezone_name, group)
    where, params = _where(period, agent_column=None)
    by = f"{group}, " if group else ""
    out: dict[Any, dict[str, int]] = {}
    with connection.cursor() as cursor:
        out_filter = "" if period.agent_id is None else " AND agent_id = %s"
        cursor.execute(
            f"SELECT {by} coalesce(sum(messages_in), 0), coalesce(sum(messages_out) FILTER (WHERE TRUE{out_filter}), 0),"
            f" coalesce(sum(tickets_opened), 0) FROM {DailyVolume._meta.db_table} WHERE {where}"
            + (f" GROUP BY {group}" if group else ""),
            ([period.agent_id] if period.agent_id is not None else []) + params,
        )
        for row in cursor.fetchall():
            key, (messages_in, messages_out, opened) = (row[0], row[1:]) if group else (None, row)
            out[key] = {
                "conversations": 0,
                "tickets_opened": int(opened),
                "messages_in": int(messages_in),
                "messages_out": int(messages_out),
            }
        cursor.execute(
            f"SELECT {by} count(DISTINCT conversation_id) FROM {ConversationDay._meta.db_table} WHERE {where}"
            + (f" GROUP BY {group}" if group else ""),
            params,
        )
        for row in cursor.fetchall():
            key, distinct = (row[0], row[1]) if group else (None, row[0])
            out.setdefault(
                key, {"conversations": 0, "tickets_opened": 0, "messages_in": 0, "messages_out": 0}
            )
            out[key]["conversations"] = int(distinct)
    return out


def _labelled_rows(
    period: Period, timezone_name: str, table: str, moment: str, columns: str
) -> tuple[str, list[Any]]:
    """A subquery of a table's rows (messages, tickets) in the period, of conversations with the label, each with
    its local `day`: the daily counters do not know labels, so a label filter counts the rows themselves (only
    those of the labelled conversations, through their indexes)."""
    start, end = period.local_bounds(timezone_name)
    number = "" if period.number_id is None else " AND c.number_id = %s"
    sql = (
        f"SELECT (row.{moment} AT TIME ZONE %s)::date AS day, {columns} FROM {table} row"
        f" JOIN {Conversation._meta.db_table} c ON c.id = row.conversation_id"
        f" WHERE c.labels @> ARRAY[%s]::bigint[] AND row.{moment} >= %s AND row.{moment} < %s{number}"
    )
    return sql, [timezone_name, period.label_id, start, end] + ([] if number == "" else [period.number_id])


def _labelled_volume(period: Period, timezone_name: str, group: str = "") -> dict[Any, dict[str, int]]:
    """Chat volume of the conversations that carry the period's label (as _volume, from the rows)."""
    by = f"{group}, " if group else ""
    grouping = f" GROUP BY {group}" if group else ""
    out: dict[Any, dict[str, int]] = {}
    messages, message_params = _labelled_rows(
        period,
        timezone_name,
        Message._meta.db_table,
        "created_at",
        "row.direction, row.sender_kind, row.sender_user_id AS agent_id, row.is_history",
    )
    agent = "" if period.agent_id is None else " AND agent_id = %s"
    tickets, ticket_params = _labelled_rows(
        period, timezone_name, Ticket._meta.db_table, "opened_at", "row.id"
    )
    where, params = _where(period, agent_column=None, labelled=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {by} count(*) FILTER (WHERE direction = 'in' AND sender_kind = 'customer'),"
            f" count(*) FILTER (WHERE direction = 'out'{agent}) FROM ({messages}) rows WHERE NOT is_history"
            + grouping,
            ([] if period.agent_id is None else [period.agent_id]) + message_params,
        )
        for row in cursor.fetchall():
            key, (messages_in, messages_out) = (row[0], row[1:]) if group else (None, row)
            figures = out.setdefault(key, _no_volume())
            figures["messages_in"], figures["messages_out"] = int(messages_in), int(messages_out)
        cursor.execute(f"SELECT {by} count(*) FROM ({tickets}) rows{grouping}", ticket_params)
        for row in cursor.fetchall():
            key, opened = (row[0], row[1]) if group else (None, row[0])
            out.setdefault(key, _no_volume())["tickets_opened"] = int(opened)
        cursor.execute(
            f"SELECT {by} count(DISTINCT conversation_id) FROM {ConversationDay._meta.db_table} WHERE {where}"
            + grouping,
            params,
        )
        for row in cursor.fetchall():
            key, distinct = (row[0], row[1]) if group else (None, row[0])
            out.setdefault(key, _no_volume())["conversations"] = int(distinct)
    return out


def _outcomes(period: Period, group: str = "") -> dict[Any, dict[str, Any]]:
    """Resolved tickets (distinct, from the resolution rows), the SLA / window counters of DailyVolume (of a
    label: counted from their ReportingEvent rows) and the satisfaction answers."""
    where, params = _where(period, labelled=True)
    by = f"{group}, " if group else ""
    grouping = f" GROUP BY {group}" if group else ""
    out: dict[Any, dict[str, Any]] = {}
    if period.label_id is None:
        counters = f"SELECT {by} sum(sla_met), sum(sla_breached), sum(windows_expired) FROM {DailyVolume._meta.db_table}"
    else:
        counters = (
            f"SELECT {by} count(*) FILTER (WHERE name = 'sla' AND sla_met), count(*) FILTER (WHERE name = 'sla'"
            f" AND NOT sla_met), count(*) FILTER (WHERE name = 'window_expired') FROM {ReportingEvent._meta.db_table}"
        )
    with connection.cursor() as cursor:
        cursor.execute(f"{counters} WHERE {where}{grouping}", params)
        for row in cursor.fetchall():
            key, (met, breached, expired) = (row[0], row[1:]) if group else (None, row)
            out[key] = _no_outcomes()
            out[key]["sla"] = {"met": int(met or 0), "breached": int(breached or 0)}
            out[key]["windows_expired_unanswered"] = int(expired or 0)
        cursor.execute(
            f"SELECT {by} count(DISTINCT ticket_id) FROM {ReportingEvent._meta.db_table}"
            f" WHERE {where} AND name = 'resolution'{grouping}",
            params,
        )
        for row in cursor.fetchall():
            key, resolved = (row[0], row[1]) if group else (None, row[0])
            out.setdefault(key, _no_outcomes())["resolved_tickets"] = int(resolved)
        cursor.execute(
            f"SELECT {by} count(*), avg(score), count(*) FILTER (WHERE score >= {SATISFIED})"
            f" FROM {ReportingEvent._meta.db_table} WHERE {where} AND name = 'csat'{grouping}",
            params,
        )
        for row in cursor.fetchall():
            key, (answers, average, satisfied) = (row[0], row[1:]) if group else (None, row)
            out.setdefault(key, _no_outcomes())["csat"] = _csat(int(answers), average, int(satisfied))
    return out


SATISFIED = 4  # a rating of 4 or 5 counts as satisfied (the usual CSAT score: the share of those)


def _csat(answers: int, average: Any, satisfied: int) -> dict[str, Any]:
    return {
        "responses": answers,
        "average": None if not answers else round(float(average), 2),
        "satisfied": satisfied,
        "score": None if not answers else round(100 * satisfied / answers, 1),
    }


def _no_outcomes() -> dict[str, Any]:
    return {
        "resolved_tickets": 0,
        "sla": {"met": 0, "breached": 0},
        "windows_expired_unanswered": 0,
        "csat": _csat(0, None, 0),
    }


def _no_volume() -> dict[str, int]:
    return {"conversations": 0, "tickets_opened": 0, "messages_in": 0, "messages_out": 0}


def summary(period: Period, timezone_name: str) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "timezone": timezone_name,
        "agent": period.agent_id,
        "number": period.number_id,
        "label": period.label_id,
    }
    figures.update(_time_stats(period).get(None, _empty_times()))
    figures["chat_volume"] = _volume(period, timezone_name).get(None, _no_volume())
    figures.update(_outcomes(period).get(None, _no_outcomes()))
    return figures


def timeseries(period: Period, interval: str, timezone_name: str) -> dict[str, Any]:
    if interval not in ("day", "week"):
        raise ReportError("`interval` is `day` or `week`.")
    group = "day" if interval == "day" else WEEK
    times, outcomes = _time_stats(period, group), _outcomes(period, group)
    volume = _volume(period, timezone_name, group)
    buckets = []
    step = timedelta(days=1 if interval == "day" else 7)
    bucket = period.start if interval == "day" else period.start - timedelta(days=period.start.weekday())
    while bucket <= period.end:
        buckets.append(
            {
                "start": bucket.isoformat(),
                **times.get(bucket, _empty_times()),
                "chat_volume": volume.get(bucket, _no_volume()),
                **outcomes.get(bucket, _no_outcomes()),
            }
        )
        bucket += step
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "timezone": timezone_name,
        "interval": interval,
        "results": buckets,
    }


def agents(period: Period, members: list[dict[str, Any]], timezone_name: str) -> dict[str, Any]:
    """One row per member: `members` is [{"id", "name", "email", "role"}] of the tenant."""
    times, outcomes = _time_stats(period, "agent_id"), _outcomes(period, "agent_id")
    if period.label_id is None:
        where, params = _where(period, agent_column=None)
        sent_sql = f"SELECT agent_id, sum(messages_out) FROM {DailyVolume._meta.db_table} WHERE {where}"
    else:
        rows_sql, params = _labelled_rows(
            period,
            timezone_name,
            Message._meta.db_table,
            "created_at",
            "row.sender_user_id AS agent_id, row.is_history",
        )
        sent_sql = f"SELECT agent_id, count(*) FROM ({rows_sql}) rows WHERE NOT is_history"
    with connection.cursor() as cursor:
        cursor.execute(f"{sent_sql} AND agent_id <> 0 GROUP BY agent_id", params)
        sent = {row[0]: int(row[1]) for row in cursor.fetchall()}
    rows = []
    for member in members:
        if period.agent_id is not None and member["id"] != period.agent_id:
            continue
        rows.append(
            {
                "agent": member,
                **times.get(member["id"], _empty_times()),
                "messages_out": sent.get(member["id"], 0),
                **outcomes.get(member["id"], _no_outcomes()),
            }
        )
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "timezone": timezone_name,
        "results": rows,
    }
