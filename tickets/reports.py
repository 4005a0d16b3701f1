"""Report figures from the reporting store (never from the messages): see docs/metrics.md for definitions.

`from` / `to` are whole days in the tenant's time zone, both included; every row carries the local day of its
event, so a period is a plain day range. Times are in seconds, calendar and business, with mean, median and
90th percentile (exact: PostgreSQL's percentile_cont over all the period's intervals, as tickets/intervals.py
reads them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.db import connection

from helpdesk.params import parse_id
from tickets import intervals
from tickets.intervals import TIMES, Intervals
from tickets.models import ConversationDay, DailyVolume, ReportingEvent

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

    @classmethod
    def parse(
        cls, start: str | None, end: str | None, agent: str | None = None, number: str | None = None
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
        for label, value in (("agent", agent), ("number", number)):
            ids[label] = parse_id(value) if value else None
            if value and ids[label] is None:
                raise ReportError(f"`{label}` must be an id (a whole number).")
        return cls(first, last, ids["agent"], ids["number"])


def _where(period: Period, agent_column: str | None = "agent_id") -> tuple[str, list[Any]]:
    clauses = ["day BETWEEN %s AND %s"]
    params: list[Any] = [period.start, period.end]
    if period.agent_id is not None and agent_column:
        clauses.append(f"{agent_column} = %s")
        params.append(period.agent_id)
    if period.number_id is not None:
        clauses.append("number_id = %s")
        params.append(period.number_id)
    return " AND ".join(clauses), params


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
    parts = intervals.read(period.start, period.end, period.number_id, period.agent_id)
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


def _volume(period: Period, group: str = "") -> dict[Any, dict[str, int]]:
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


def _outcomes(period: Period, group: str = "") -> dict[Any, dict[str, Any]]:
    """Resolved tickets (distinct, from the resolution rows) and the SLA / window counters of DailyVolume."""
    where, params = _where(period)
    by = f"{group}, " if group else ""
    grouping = f" GROUP BY {group}" if group else ""
    out: dict[Any, dict[str, Any]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {by} coalesce(sum(sla_met), 0), coalesce(sum(sla_breached), 0), coalesce(sum(windows_expired), 0)"
            f" FROM {DailyVolume._meta.db_table} WHERE {where}{grouping}",
            params,
        )
        for row in cursor.fetchall():
            key, (met, breached, expired) = (row[0], row[1:]) if group else (None, row)
            out[key] = _no_outcomes()
            out[key]["sla"] = {"met": int(met), "breached": int(breached)}
            out[key]["windows_expired_unanswered"] = int(expired)
        cursor.execute(
            f"SELECT {by} count(DISTINCT ticket_id) FROM {ReportingEvent._meta.db_table}"
            f" WHERE {where} AND name = 'resolution'{grouping}",
            params,
        )
        for row in cursor.fetchall():
            key, resolved = (row[0], row[1]) if group else (None, row[0])
            out.setdefault(key, _no_outcomes())["resolved_tickets"] = int(resolved)
    return out


def _no_outcomes() -> dict[str, Any]:
    return {"resolved_tickets": 0, "sla": {"met": 0, "breached": 0}, "windows_expired_unanswered": 0}


def _no_volume() -> dict[str, int]:
    return {"conversations": 0, "tickets_opened": 0, "messages_in": 0, "messages_out": 0}


def summary(period: Period, timezone_name: str) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "timezone": timezone_name,
        "agent": period.agent_id,
        "number": period.number_id,
    }
    figures.update(_time_stats(period).get(None, _empty_times()))
    figures["chat_volume"] = _volume(period).get(None, _no_volume())
    figures.update(_outcomes(period).get(None, _no_outcomes()))
    return figures


def timeseries(period: Period, interval: str, timezone_name: str) -> dict[str, Any]:
    if interval not in ("day", "week"):
        raise ReportError("`interval` is `day` or `week`.")
    group = "day" if interval == "day" else WEEK
    times, volume, outcomes = _time_stats(period, group), _volume(period, group), _outcomes(period, group)
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
    where, params = _where(period, agent_column=None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT agent_id, sum(messages_out) FROM {DailyVolume._meta.db_table} WHERE {where}"
            " AND agent_id <> 0 GROUP BY agent_id",
            params,
        )
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
