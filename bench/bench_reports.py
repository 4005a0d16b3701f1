"""The report benchmark in the harness: a year of seeded history (`manage.py seed_load`), then the product's
report summary (`tickets.reports.summary` over the reporting store) against the brute-force computation of the
same figures from the raw tables (bench/report_summary.py), with an agreement check.

Full mode: 1,000,000 messages (as docs/performance-reports.md), 20 timed runs of each after warm-up; the target
is at least 20x faster than brute force. Quick mode: 20,000 messages and a few runs, to show that the harness
works: the target is stated for 1,000,000 messages, so a quick run reports the ratio without judging it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.figures import Figure, at_most

ROOT = Path(__file__).resolve().parent.parent
DAYS = 90


def seed_tenant(slug: str, messages: int, name: str = "Report benchmark", prefix: str = "32") -> float:
    """Seconds `seed_load` took for `messages` into the tenant `slug` (created here, with its number; `prefix`
    starts its Meta ids, so that two benchmarks' tenants never share one)."""
    from django.core.management import call_command

    stamp = f"{int(time.time()) % 10**6:06d}"
    call_command("create_tenant_account", slug, name=name, domain=f"{slug.replace('_', '-')}.localhost")
    call_command(
        "add_whatsapp_number",
        slug,
        phone_number_id=f"{prefix}{stamp}0000001",
        waba_id=f"{prefix}{stamp}0000002",
        display_number=f"628{prefix[-2:]}{stamp}01",
        access_token="x",
        app_secret="y",
        verify_token="z",
    )
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "manage.py", "seed_load", slug, "--messages", str(messages), "--seed", "1"],
        cwd=ROOT,
        check=True,
    )
    return time.monotonic() - started


def run(quick: bool) -> list[Figure]:
    from django.db import connection
    from django_tenants.utils import schema_context

    from bench import report_summary as brute
    from helpdesk.tenancy.actions import tenant_by_slug
    from tickets.reports import Period, summary

    messages = 20_000 if quick else 1_000_000
    repeat, brute_repeat = (5, 3) if quick else (20, 10)
    slug = f"bench_reports_{int(time.time()) % 10**6:06d}"
    seed_seconds = seed_tenant(slug, messages)

    tenant = tenant_by_slug(slug)
    zone = ZoneInfo(tenant.timezone_name)
    end = datetime.now(zone).date()
    start = end - timedelta(days=DAYS - 1)
    period = Period(start, end)
    with schema_context(tenant.schema_name):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM conversations_message")
            seeded = int(cursor.fetchone()[0])
        product_runs, product = brute.timed(lambda: summary(period, tenant.timezone_name), 2, repeat)
        brute_runs, reference = brute.timed(
            lambda: brute.brute_force(start, end, tenant.timezone_name), 1, brute_repeat
        )
    problems, worst = brute.compare(product, reference, 0.001)
    product_median, brute_median = statistics.median(product_runs), statistics.median(brute_runs)
    scale = f"{seeded:,} messages seeded over a year, last {DAYS} days"
    judged = not quick  # the target is stated for 1,000,000 messages
    return [
        Figure(
            "reports",
            f"summary, {DAYS} days, median",
            product_median,
            brute_median,
            "ms",
            "≤ 0.05x brute force (≥ 20x faster)",
            at_most(product_median, brute_median, 1 / 20) if judged else None,
            f"{scale}; tickets.reports.summary against the brute force of bench/report_summary.py, "
            f"{repeat} / {brute_repeat} timed runs after warm-up; speedup {brute_median / product_median:.0f}x"
            + ("" if judged else "; quick mode: the target is for 1,000,000 messages, not judged here"),
        ),
        Figure(
            "reports",
            f"summary, {DAYS} days, p95",
            brute.p95(product_runs),
            brute.p95(brute_runs),
            "ms",
            "",
            None,
            "",
        ),
        Figure(
            "reports",
            "summary, median, absolute",
            product_median,
            None,
            "ms",
            "< 100 ms",
            product_median < 100 if judged else None,
            "",
        ),
        Figure(
            "reports",
            "figures that disagree with brute force",
            len(problems),
            None,
            "",
            "0",
            not problems,
            f"13 figures; largest time difference {worst:.6f} s"
            + ("; " + "; ".join(problems) if problems else ""),
        ),
        Figure(
            "reports",
            "seeding (seed_load, 2 processes)",
            seeded / seed_seconds if seed_seconds else 0.0,
            None,
            "msg/s",
            "",
            None,
            f"{seed_seconds:.0f} s for {seeded:,} messages: planning, replay, sealing the ended days, VACUUM",
        ),
    ]
