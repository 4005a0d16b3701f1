"""Report latency: the product path (tickets.reports.summary over the reporting store) against a brute-force
SQL computation of the same figures from the raw tables, in one run, with an agreement check.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/report_summary.py SLUG [--days 90] [--repeat 20]

Prints both latencies (median and p95 over --repeat runs after --warmup runs), the speedup, the figures side by
side, the seed time (from bench/results/, written by `manage.py seed_load`) and the database size. Exits 1 if the
two computations disagree (counts exactly, times within --tolerance seconds).

The brute force is what a report written without a reporting store would run: window functions over
conversations_message (a wait starts at the customer's first message after the last human agent reply and ends
at the next human agent reply), tickets_ticket for ticket openings, reopens and resolutions. Two limits of the
raw tables it lives with (docs/performance-reports.md): a ticket keeps only its latest cycle, so the first response of a
reopened cycle is recognised by `cycle_started_at` (seed_load reopens a ticket at most once), and a reopened
ticket that is open again has lost its resolution time (counted by its reopen date instead, which is within the
reopen window after it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from helpdesk.tenancy.actions import tenant_by_slug  # noqa: E402
from helpdesk.tenancy.models import Membership  # noqa: E402
from tickets import intervals, reports  # noqa: E402
from tickets.models import SealedIntervals  # noqa: E402
from tickets.reports import Period, summary  # noqa: E402

# The figures both sides compute: (path in the summary dict, kind).
FIGURES = [
    (("first_response_seconds", "count"), "count"),
    (("first_response_seconds", "mean"), "seconds"),
    (("first_response_seconds", "median"), "seconds"),
    (("first_response_seconds", "p90"), "seconds"),
    (("response_seconds", "count"), "count"),
    (("response_seconds", "mean"), "seconds"),
    (("response_seconds", "median"), "seconds"),
    (("response_seconds", "p90"), "seconds"),
    (("chat_volume", "conversations"), "count"),
    (("chat_volume", "tickets_opened"), "count"),
    (("chat_volume", "messages_in"), "count"),
    (("chat_volume", "messages_out"), "count"),
    (("resolved_tickets",), "count"),
]

REPLY = "direction = 'out' AND sender_kind = 'agent' AND sender_user_id IS NOT NULL"  # a human agent's reply
WAITS_SQL = f"""
WITH thread AS (  -- the whole history of every conversation an agent answered in the period
    SELECT conversation_id, created_at, direction, ({REPLY}) AS is_reply,
           count(*) FILTER (WHERE {REPLY})
               OVER (PARTITION BY conversation_id ORDER BY created_at, id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS replies_before
    FROM conversations_message
    WHERE conversation_id IN (SELECT conversation_id FROM conversations_message
                              WHERE created_at >= %(start)s AND created_at < %(end)s AND {REPLY})
),
waits AS (  -- between two agent replies: the first customer message starts the wait, the reply ends it
    SELECT conversation_id,
           min(created_at) FILTER (WHERE direction = 'in') AS started,
           min(created_at) FILTER (WHERE is_reply) AS answered
    FROM thread
    GROUP BY conversation_id, replies_before
),
cycle_starts AS (  -- a ticket's opening message, and the message that reopened it
    SELECT conversation_id, opened_at AS started FROM tickets_ticket
    UNION ALL
    SELECT conversation_id, cycle_started_at FROM tickets_ticket WHERE reopen_count > 0
),
responses AS MATERIALIZED (
    SELECT extract(epoch FROM w.answered - w.started)::float8 AS seconds,
           EXISTS (SELECT 1 FROM cycle_starts s WHERE s.conversation_id = w.conversation_id
                                                 AND s.started = w.started) AS first
    FROM waits w
    WHERE w.started IS NOT NULL AND w.answered >= %(start)s AND w.answered < %(end)s
)
SELECT count(*) FILTER (WHERE first), avg(seconds) FILTER (WHERE first),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE first),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE first),
       count(*), avg(seconds),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
FROM responses
"""

VOLUME_SQL = """
SELECT count(DISTINCT conversation_id) FILTER (WHERE direction = 'in'),
       count(*) FILTER (WHERE direction = 'in'),
       count(*) FILTER (WHERE direction = 'out')
FROM conversations_message
WHERE created_at >= %(start)s AND created_at < %(end)s
"""

TICKETS_SQL = """
SELECT count(*) FILTER (WHERE opened_at >= %(start)s AND opened_at < %(end)s),
       count(*) FILTER (WHERE (resolved_at >= %(start)s AND resolved_at < %(end)s)
                           OR (resolved_at IS NULL AND reopen_count > 0
                               AND cycle_started_at >= %(start)s AND cycle_started_at < %(end)s))
FROM tickets_ticket
"""


def _stats(count: Any, mean: Any, median: Any, p90: Any) -> dict[str, Any]:
    def seconds(value: Any) -> float | None:
        return None if value is None else round(float(value), 3)

    return {"count": int(count or 0), "mean": seconds(mean), "median": seconds(median), "p90": seconds(p90)}


def brute_force(start: date, end: date, timezone_name: str) -> dict[str, Any]:
    """The same figures from conversations_message and tickets_ticket (local days -> UTC instants)."""
    zone = ZoneInfo(timezone_name)
    bounds = {
        "start": datetime.combine(start, dtime(0), zone),
        "end": datetime.combine(end + timedelta(days=1), dtime(0), zone),
    }
    with connection.cursor() as cursor:
        cursor.execute(WAITS_SQL, bounds)
        row = cursor.fetchone()
        first, every = _stats(*row[:4]), _stats(*row[4:])
        cursor.execute(VOLUME_SQL, bounds)
        conversations, messages_in, messages_out = cursor.fetchone()
        cursor.execute(TICKETS_SQL, bounds)
        opened, resolved = cursor.fetchone()
    return {
        "first_response_seconds": first,
        "response_seconds": every,
        "chat_volume": {
            "conversations": conversations,
            "tickets_opened": opened,
            "messages_in": messages_in,
            "messages_out": messages_out,
        },
        "resolved_tickets": resolved,
    }


def _get(figures: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = figures
    for key in path:
        value = value[key]
    return value


def compare(product: dict[str, Any], brute: dict[str, Any], tolerance: float) -> tuple[list[str], float]:
    problems, worst = [], 0.0
    for path, kind in FIGURES:
        a, b = _get(product, path), _get(brute, path)
        if kind == "count" or a is None or b is None:
            if a != b:
                problems.append(f"{'.'.join(path)}: product {a} != brute force {b}")
            continue
        diff = abs(float(a) - float(b))
        worst = max(worst, diff)
        if diff > tolerance:
            problems.append(f"{'.'.join(path)}: product {a} vs brute force {b} (diff {diff:.6f} s)")
    return problems, worst


def timed(function: Callable[[], Any], warmup: int, repeat: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(warmup):
        result = function()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        runs.append((time.perf_counter() - started) * 1000)
    return runs, result


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]


def _size(value: int) -> str:
    return f"{value / 1024**3:.2f} GiB" if value >= 1024**3 else f"{value / 1024**2:.0f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("slug")
    parser.add_argument("--days", type=int, default=90, help="Period: the last N local days, today included")
    parser.add_argument("--repeat", type=int, default=20, help="Timed runs of each computation")
    parser.add_argument(
        "--brute-repeat", type=int, default=None, help="Timed brute-force runs (default: --repeat)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="Untimed runs first")
    parser.add_argument("--tolerance", type=float, default=0.001, help="Allowed difference of times, seconds")
    parser.add_argument(
        "--unsealed",
        action="store_true",
        help="Also time the product path with no day sealed, as before the hourly job first runs (the sealed "
        "rows are deleted inside a transaction that is rolled back: the database is left as it was)",
    )
    args = parser.parse_args()

    tenant = tenant_by_slug(args.slug)
    zone = ZoneInfo(tenant.timezone_name)
    end = datetime.now(zone).date()
    start = end - timedelta(days=args.days - 1)
    period = Period(start, end)
    database = connection.settings_dict["NAME"]
    with schema_context(tenant.schema_name):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM conversations_message")
            messages = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM tickets_ticket")
            tickets = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM tickets_reportingevent")
            events = cursor.fetchone()[0]
            cursor.execute("SELECT pg_database_size(current_database())")
            database_size = cursor.fetchone()[0]
            cursor.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                [tenant.schema_name],
            )
            schema_size = cursor.fetchone()[0]
        product_runs, product = timed(lambda: summary(period, tenant.timezone_name), args.warmup, args.repeat)
        brute_runs, brute = timed(
            lambda: brute_force(start, end, tenant.timezone_name),
            min(args.warmup, 1),
            args.brute_repeat or args.repeat,
        )
        members = [
            {"id": m.user_id, "name": m.user.display_name, "email": m.user.email, "role": m.role}
            for m in Membership.objects.select_related("user").filter(tenant=tenant)
        ]
        zone_name = tenant.timezone_name
        endpoints = {  # what the reports page asks for besides the summary (product path only)
            "timeseries per day": lambda: reports.timeseries(period, "day", zone_name),
            "timeseries per week": lambda: reports.timeseries(period, "week", zone_name),
            f"agents ({len(members)} members)": lambda: reports.agents(period, members, zone_name),
        }
        others = {
            label: statistics.median(timed(run, 1, max(3, args.repeat // 2))[0])
            for label, run in endpoints.items()
        }
        parts = {}
        for name in ("_time_stats", "_volume", "_outcomes"):  # where the product path spends its time
            part = getattr(reports, name, None)
            if part is not None:
                parts[name.strip("_")] = statistics.median(timed(partial(part, period), 1, args.repeat)[0])
        stale = sorted(intervals.stale_days(start, end))
        unsealed: list[float] = []
        unsealed_figures: dict[str, Any] = {}
        if args.unsealed:
            with transaction.atomic():
                SealedIntervals.objects.all().delete()
                unsealed, unsealed_figures = timed(
                    lambda: summary(period, tenant.timezone_name), args.warmup, args.repeat
                )
                transaction.set_rollback(True)

    print(
        f"tenant {tenant.schema_name}: {messages:,} messages, {tickets:,} tickets, {events:,} reporting events"
    )
    print(f"database {database}: {_size(database_size)} (schema {tenant.schema_name}: {_size(schema_size)})")
    seeds = ROOT / "bench" / "results" / f"seed-{database}-{tenant.schema_name}.json"
    if seeds.exists():
        for run in json.loads(seeds.read_text()):
            print(
                f"seeded: {run['messages_created']:,} messages in {run['replay_seconds']:,.0f} s "
                f"({run['messages_per_second']:,.0f} messages/s, {run['workers']} workers"
                f"{', exact' if run.get('exact') else ''}; {run['total_seconds']:,.0f} s in all) "
                f"finished {run['finished_at'][:19]}"
            )
    else:
        print(f"seed time: unknown ({seeds.relative_to(ROOT)} not found)")
    print(
        f"period: {start} .. {end} ({args.days} days, {tenant.timezone_name}); machine: {os.cpu_count()} cores, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"sealed (tickets/intervals.py): {args.days - len(stale)} of {args.days} days; read as recorded: "
        + (", ".join(str(day) for day in stale) or "none")
    )
    print()
    product_median, brute_median = statistics.median(product_runs), statistics.median(brute_runs)
    print(f"{'':34}{'median':>12}{'p95':>12}{'runs':>6}")
    print(
        f"{'product path (reports.summary)':34}{product_median:>9.2f} ms{p95(product_runs):>9.2f} ms"
        f"{len(product_runs):>6}"
    )
    print(
        f"{'brute force (raw tables)':34}{brute_median:>9.2f} ms{p95(brute_runs):>9.2f} ms{len(brute_runs):>6}"
    )
    if parts:
        print("product path by query (medians): " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))
    print("other reports, same period (medians): " + ", ".join(f"{k} {v:.1f} ms" for k, v in others.items()))
    print(f"speedup (median / median): {brute_median / product_median:.1f}x")
    if unsealed:
        print(
            f"with no day sealed (rolled back): product path median {statistics.median(unsealed):.2f} ms, "
            f"p95 {p95(unsealed):.2f} ms, speedup {brute_median / statistics.median(unsealed):.1f}x"
        )
    print()
    print(f"{'figure':38}{'product':>16}{'brute force':>16}")
    for path, _kind in FIGURES:
        print(f"{'.'.join(path):38}{_get(product, path)!s:>16}{_get(brute, path)!s:>16}")
    problems, worst = compare(product, brute, args.tolerance)
    if unsealed:
        unsealed_problems, _ = compare(unsealed_figures, brute, args.tolerance)
        problems += [f"with no day sealed: {problem}" for problem in unsealed_problems]
    print()
    targets = [
        ("product path median under 100 ms", product_median < 100),
        ("product path at least 20x faster", brute_median / product_median >= 20),
    ]
    for label, ok in targets:
        print(f"target: {label}: {'yes' if ok else 'NO'}")
    if problems:
        print("DISAGREEMENT:")
        for problem in problems:
            print("  " + problem)
        return 1
    print(f"agreement: all {len(FIGURES)} figures agree (largest time difference {worst:.6f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
