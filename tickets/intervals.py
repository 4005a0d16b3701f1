"""The measured intervals (first responses, responses, resolutions) as the reports read them.

Every interval is a ReportingEvent row, written when it happens. Exact percentiles need every value of the
period, and sorting them all on each request was most of a report's time. So a day that has ended is sealed
(`seal_closed_days`, a periodic job): its values are packed, one SealedIntervals row per measure and number
(with the agent of each value alongside), and a 90-day report reads a few hundred rows, whatever the number of
agents, and selects the percentiles from them in memory.

A sealed row is trusted only while its `count` equals the day's counter in DailyVolume, which is written in the
same transaction as every interval: an interval recorded late for a sealed day (a deadline sweep catching up
after a pause, say) makes the two differ, and the report reads that day from ReportingEvent until the next seal.
Reports are therefore exact whatever state the sealing is in; sealing only makes them fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import psycopg
from django.db import connection, transaction

from conversations.models import Conversation
from tickets.models import DailyVolume, ReportingEvent, SealedIntervals
from tickets.store import MEASURE_COUNTERS

TIMES = tuple(MEASURE_COUNTERS)  # first_response, response, resolution
PACKED = np.dtype("<f8")
AGENTS = np.dtype("<i8")


@dataclass(frozen=True)
class Intervals:
    """The values of one measure on one day for one number: aligned arrays, ordered by agent (0: none) and then
    by calendar seconds."""

    day: date
    name: str
    number_id: int
    agent_ids: np.ndarray
    seconds: np.ndarray
    business_seconds: np.ndarray

    @classmethod
    def ordered(
        cls, day: date, name: str, number_id: int, agent_ids: Any, seconds: Any, business_seconds: Any
    ) -> Intervals:
        agent_ids = np.asarray(agent_ids, AGENTS)
        seconds, business_seconds = np.asarray(seconds, PACKED), np.asarray(business_seconds, PACKED)
        order = np.lexsort((business_seconds, seconds, agent_ids))
        return cls(day, name, number_id, agent_ids[order], seconds[order], business_seconds[order])

    def of_agent(self, agent_id: int) -> Intervals:
        mine = self.agent_ids == agent_id
        return Intervals(
            self.day,
            self.name,
            self.number_id,
            self.agent_ids[mine],
            self.seconds[mine],
            self.business_seconds[mine],
        )


def _of_number(number_id: int | None) -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) that keeps one number's rows, or none."""
    return ("", []) if number_id is None else (" AND number_id = %s", [number_id])


def stale_days(first: date, last: date, number_id: int | None = None) -> set[date]:
    """Days in [first, last] whose sealed rows do not hold exactly the intervals their counters count (never
    sealed, or an interval recorded since)."""
    number, number_params = _of_number(number_id)
    params: list[Any] = [first, last, *number_params]
    counted = " UNION ALL ".join(
        f"SELECT day, '{name}' AS name, number_id, sum({counter}) AS n FROM {DailyVolume._meta.db_table}"  # noqa: S608
        f" WHERE day BETWEEN %s AND %s{number} GROUP BY day, number_id HAVING sum({counter}) > 0"
        for name, counter in MEASURE_COUNTERS.items()
    )
    sql = (
        f"SELECT DISTINCT day FROM ({counted}) counted"  # noqa: S608 (names from the code, values as parameters)
        f" FULL JOIN (SELECT day, name, number_id, count AS n FROM {SealedIntervals._meta.db_table}"
        f" WHERE day BETWEEN %s AND %s{number}) sealed USING (day, name, number_id)"
        " WHERE counted.n IS DISTINCT FROM sealed.n"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params * (len(MEASURE_COUNTERS) + 1))
        return {row[0] for row in cursor.fetchall()}


def _fetch_binary(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows with bytea columns as bytes. Django's cursors bind on the client, and those receive bytea as hex text;
    a server-binding cursor on the same connection (and transaction) receives it as is: 2.4x faster here."""
    connection.cursor().close()  # opens the connection and puts it on the tenant's search_path (django-tenants)
    with psycopg.Cursor(connection.connection) as binary:
        binary.execute(sql, params, binary=True, prepare=False)  # no prepared statement across tenants
        return binary.fetchall()


def of_label(label_id: int | None, column: str = "conversation_id") -> tuple[str, list[Any]]:
    """The SQL condition (and its parameters) that keeps the rows of conversations carrying a label now (the
    label's GIN index), or none."""
    if label_id is None:
        return "", []
    return (
        f" AND {column} IN (SELECT id FROM {Conversation._meta.db_table} WHERE labels @> ARRAY[%s]::bigint[])",  # noqa: S608
        [label_id],
    )


def _recorded(first: date, last: date, number_id: int | None, label_id: int | None = None) -> list[Intervals]:
    """The intervals dated in [first, last] as recorded in ReportingEvent (of conversations with a label).

    PostgreSQL packs them per measure and day (big-endian, as float8send / int8send write them), in the order of
    the reporting_name_day index, so without a sort; they are split by number here. One statement, so one
    consistent snapshot.
    """
    number, number_params = _of_number(number_id)
    label, label_params = of_label(label_id)
    rows = _fetch_binary(
        "SELECT name, day, string_agg(int8send(number_id), ''), string_agg(int8send(coalesce(agent_id, 0)), ''),"  # noqa: S608
        " string_agg(float8send(value_seconds), ''), string_agg(float8send(value_business_seconds), '')"
        f" FROM {ReportingEvent._meta.db_table}"
        f" WHERE name IN ('first_response', 'response', 'resolution') AND day BETWEEN %s AND %s"
        f" AND number_id IS NOT NULL{number}{label} GROUP BY name, day",  # every interval has its ticket's number
        [first, last, *number_params, *label_params],
    )
    found = []
    for name, day, packed_numbers, packed_agents, packed_seconds, packed_business_seconds in rows:
        numbers, agents = np.frombuffer(packed_numbers, ">i8"), np.frombuffer(packed_agents, ">i8")
        seconds = np.frombuffer(packed_seconds, ">f8")
        business_seconds = np.frombuffer(packed_business_seconds, ">f8")
        for number_of_day in sorted(set(numbers.tolist())):
            theirs = numbers == number_of_day
            found.append(
                Intervals.ordered(
                    day, name, number_of_day, agents[theirs], seconds[theirs], business_seconds[theirs]
                )
            )
    return found


def _runs(days: set[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) ranges."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] == day - timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def read(
    first: date,
    last: date,
    number_id: int | None = None,
    agent_id: int | None = None,
    label_id: int | None = None,
) -> list[Intervals]:
    """Every interval dated in [first, last] (of one number, of one agent): sealed where the seal is current,
    as recorded elsewhere. Of the conversations with a label: as recorded (a seal does not know labels)."""
    if label_id is not None:
        found = _recorded(first, last, number_id, label_id)
    else:
        found = _sealed_or_recorded(first, last, number_id)
    if agent_id is not None:
        found = [part for part in (whole.of_agent(agent_id) for whole in found) if len(part.seconds)]
    return found


def _sealed_or_recorded(first: date, last: date, number_id: int | None) -> list[Intervals]:
    stale = stale_days(first, last, number_id)
    number, number_params = _of_number(number_id)
    rows = _fetch_binary(
        f"SELECT day, name, number_id, agent_ids, seconds, business_seconds"  # noqa: S608
        f" FROM {SealedIntervals._meta.db_table} WHERE day BETWEEN %s AND %s AND NOT day = ANY(%s){number}",
        [first, last, sorted(stale), *number_params],
    )
    found = [
        Intervals(
            day,
            name,
            number,
            np.frombuffer(agent_ids, AGENTS),
            np.frombuffer(seconds, PACKED),
            np.frombuffer(business_seconds, PACKED),
        )
        for day, name, number, agent_ids, seconds, business_seconds in rows
    ]
    for run_first, run_last in _runs(stale):
        found += _recorded(run_first, run_last, number_id)
    return found


def seal_closed_days(today: date) -> list[date]:
    """Seal every day before `today` (the tenant's local date) whose seal is missing or out of date."""
    days = sorted(stale_days(date.min, today - timedelta(days=1)))
    for day in days:
        seal_day(day)
    return days


def seal_day(day: date) -> None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One sealer per day at a time (the periodic job and a history import may overlap).
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)", [day.toordinal()])
        SealedIntervals.objects.filter(day=day).delete()
        SealedIntervals.objects.bulk_create(
            [
                SealedIntervals(
                    day=day,
                    name=part.name,
                    number_id=part.number_id,
                    count=len(part.seconds),
                    agent_ids=part.agent_ids.tobytes(),
                    seconds=part.seconds.tobytes(),
                    business_seconds=part.business_seconds.tobytes(),
                )
                for part in _recorded(day, day, None)
            ]
        )


def by_agent(parts: list[Intervals]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{agent id: (calendar seconds, business seconds)} of all the parts together."""
    agent_ids = np.concatenate([part.agent_ids for part in parts]) if parts else np.array([], AGENTS)
    if not len(agent_ids):
        return {}
    order = np.argsort(agent_ids, kind="stable")
    agent_ids = agent_ids[order]
    seconds = np.concatenate([part.seconds for part in parts])[order]
    business_seconds = np.concatenate([part.business_seconds for part in parts])[order]
    starts = np.flatnonzero(np.r_[True, agent_ids[1:] != agent_ids[:-1]])
    ends = np.r_[starts[1:], len(agent_ids)]
    return {
        int(agent_ids[start]): (seconds[start:end], business_seconds[start:end])
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
    }


def percentile_cont(values: np.ndarray, fractions: tuple[float, ...]) -> list[float]:
    """PostgreSQL's percentile_cont (linear interpolation between the two nearest ranks), by selection rather
    than a full sort: the same arithmetic, so the same figures."""
    last = len(values) - 1
    ranks = sorted(
        {rank for fraction in fractions for rank in (math.floor(fraction * last), math.ceil(fraction * last))}
    )
    ordered = np.partition(values, ranks)
    results = []
    for fraction in fractions:
        position = fraction * last
        low, high = math.floor(position), math.ceil(position)
        low_value, high_value = float(ordered[low]), float(ordered[high])
        results.append(low_value + (position - low) * (high_value - low_value))
    return results


def describe(values: np.ndarray) -> tuple[int, float | None, float | None, float | None]:
    """count, mean, median and 90th percentile."""
    if not len(values):
        return 0, None, None, None
    median, p90 = percentile_cont(values, (0.5, 0.9))
    return len(values), float(values.sum()) / len(values), median, p90
