"""`seed_load SLUG --messages N`: a year of realistic history (ending now) for load tests and benchmarks.

Customers, conversations on the tenant's first WhatsApp number, tickets, customer messages, bot greetings,
agent replies, private notes, priority changes, resolutions, reopens and unanswered windows, replayed through
the real actions so the reporting store is exactly what live traffic would have left (see
tickets/management/load_history.py for what is and is not replayed). Several worker processes take disjoint
customers (default: one per core). By default each chunk of 100 customers is written in one transaction at its
end; with `--exact` every action writes and commits as it runs, as live (about 7x slower). docs/performance.md
has the measurements.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django_tenants.utils import schema_context

from helpdesk.tenancy.actions import TenancyError, do_add_member, tenant_by_slug
from helpdesk.tenancy.models import Membership, Role, Tenant, WhatsAppNumber
from tickets.intervals import seal_closed_days
from tickets.management.load_history import (
    CustomerPlan,
    Planner,
    Runner,
    make_plans,
)

AGENT_PASSWORD = "load-pass-123"
WA_PREFIX = "62899"  # seeded customers' phone numbers: WA_PREFIX + their index on 8 digits
CHUNK = 100  # customers per chunk: one bulk write (and transaction) at its end


class Command(BaseCommand):
    help = "Generate about N messages of realistic history (the past year) for a tenant, through the actions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--messages", type=int, required=True, help="Messages the tenant should have")
        parser.add_argument(
            "--agents", type=int, default=8, help="Agent users agentN@SLUG.load (created if missing)"
        )
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same plans")
        parser.add_argument(
            "--workers", type=int, default=os.cpu_count() or 2, help="Processes (default: cores)"
        )
        parser.add_argument("--days", type=int, default=365, help="Length of the history in days")
        parser.add_argument("--end", default="", help="End of the history, ISO 8601 (default: now)")
        parser.add_argument(
            "--exact",
            action="store_true",
            help="Call do_receive_inbound per customer message and lock the conversation per reply "
            "(the reference path, about 7x slower; see load_history.Runner)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            tenant = tenant_by_slug(options["slug"])
        except TenancyError as error:
            raise CommandError(str(error)) from error
        number = WhatsAppNumber.objects.filter(tenant=tenant).order_by("pk").first()
        if number is None:
            raise CommandError(
                f"{tenant.schema_name} has no WhatsApp number: add one with add_whatsapp_number."
            )
        for n in range(1, options["agents"] + 1):
            email = f"agent{n}@{tenant.schema_name}.load"
            if not Membership.objects.filter(tenant=tenant, user__email=email).exists():
                do_add_member(tenant, email, Role.AGENT, AGENT_PASSWORD, f"Agent {n}")
        end = int(datetime.fromisoformat(options["end"]).timestamp()) if options["end"] else int(time.time())

        from conversations.models import Contact, Message
        from tickets.actions import support_rules

        with schema_context(tenant.schema_name):
            rules = support_rules()
            existing = Message.objects.count()
            last = (
                Contact.objects.filter(wa_id__startswith=WA_PREFIX)
                .order_by("-wa_id")
                .values_list("wa_id", flat=True)
                .first()
            )
            first_index = int(last[len(WA_PREFIX) :]) + 1 if last else 0
        wanted = options["messages"] - existing
        if wanted <= 0:
            self.stdout.write(f"{tenant.schema_name} has {existing} messages already; nothing to do.")
            return
        planner = Planner(
            seed=options["seed"],
            end=end,
            days=options["days"],
            timezone_name=tenant.timezone_name,
            reopen_window_hours=rules.settings.reopen_window_hours,
            wa_prefix=WA_PREFIX,
        )
        plans = make_plans(planner, first_index, wanted)
        planned = sum(plan.message_count for plan in plans)
        planning_seconds = time.monotonic() - started
        self.stdout.write(
            f"planned {len(plans)} customers, {planned} messages in {planning_seconds:.1f} s; "
            f"replaying with {options['workers']} workers"
        )

        replay_started = time.monotonic()
        done = _replay(tenant, number, plans, end, options["workers"], options["exact"], self.stdout.write)
        replay_seconds = time.monotonic() - replay_started
        rate = done / replay_seconds if replay_seconds else 0.0
        seal_started = time.monotonic()
        with schema_context(tenant.schema_name):
            # What the hourly job (tickets.tasks.seal_report_days) would do next: seal the days that have ended.
            sealed_days = seal_closed_days(datetime.fromtimestamp(end, ZoneInfo(tenant.timezone_name)).date())
        seal_seconds = time.monotonic() - seal_started
        vacuum_started = time.monotonic()
        with schema_context(tenant.schema_name), connection.cursor() as cursor:
            # What autovacuum would soon do after so many inserts: statistics and the visibility map (which
            # lets index-only scans skip the table), so reports are measured in a steady state.
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [tenant.schema_name])
            for (table,) in cursor.fetchall():
                cursor.execute(f'VACUUM (ANALYZE) "{tenant.schema_name}"."{table}"')
            total = Message.objects.count()
        vacuum_seconds = time.monotonic() - vacuum_started
        total_seconds = time.monotonic() - started
        result = {
            "slug": tenant.schema_name,
            "database": connection.settings_dict["NAME"],
            "messages_created": done,
            "messages_total": total,
            "customers": len(plans),
            "workers": options["workers"],
            "seed": options["seed"],
            "end": datetime.fromtimestamp(end, UTC).isoformat(),
            "planning_seconds": round(planning_seconds, 1),
            "replay_seconds": round(replay_seconds, 1),
            "seal_seconds": round(seal_seconds, 1),
            "sealed_days": len(sealed_days),
            "vacuum_seconds": round(vacuum_seconds, 1),
            "total_seconds": round(total_seconds, 1),
            "messages_per_second": round(rate, 1),
            "exact": options["exact"],
            "load_average_after": [round(load, 2) for load in os.getloadavg()],
            "finished_at": datetime.now(UTC).isoformat(),
        }
        _save_result(result)
        self.stdout.write(
            self.style.SUCCESS(
                f"{done} messages in {replay_seconds:.0f} s replay ({rate:.0f} messages/s), {total_seconds:.0f} s in all "
                f"(planning {planning_seconds:.0f} s, sealing {len(sealed_days)} days {seal_seconds:.0f} s, "
                f"vacuum {vacuum_seconds:.0f} s); "
                f"{tenant.schema_name} now has {total} messages"
            )
        )


def result_path(database: str, slug: str) -> Path:
    return Path(settings.BASE_DIR) / "bench" / "results" / f"seed-{database}-{slug}.json"


def _save_result(result: dict[str, Any]) -> None:
    path = result_path(result["database"], result["slug"])
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps([*previous, result], indent=1) + "\n")


def _replay(
    tenant: Tenant,
    number: WhatsAppNumber,
    plans: list[CustomerPlan],
    end: int,
    workers: int,
    exact: bool,
    say: Any,
) -> int:
    """Fork `workers` processes over disjoint customers; report progress; return the messages written."""
    shares = [plans[n::workers] for n in range(workers)]
    connections.close_all()  # each child opens its own connection
    # ... and its own pool: a forked child would share the parent's pooled connections (and lack its threads).
    for each in connections.all():
        each.close_pool()  # type: ignore[attr-defined]
    context = multiprocessing.get_context("fork")
    progress: Any = context.Queue()
    processes = [
        context.Process(target=_work, args=(n, tenant.pk, number.pk, share, end, exact, progress))
        for n, share in enumerate(shares)
        if share
    ]
    for process in processes:
        process.start()
    counts = dict.fromkeys(range(len(processes)), 0)
    finished = 0
    started = last_report = time.monotonic()
    while finished < len(processes):
        try:
            worker, count, final = progress.get(timeout=5)
        except queue.Empty:
            if any(process.exitcode not in (None, 0) for process in processes):
                break
            continue
        counts[worker] = count
        finished += final
        if time.monotonic() - last_report > 15:
            last_report = time.monotonic()
            done = sum(counts.values())
            say(f"  {done} messages, {done / (last_report - started):.0f}/s")
    for process in processes:
        process.join()
    failed = [process.exitcode for process in processes if process.exitcode != 0]
    if failed:
        raise CommandError(f"{len(failed)} worker(s) failed (exit codes {failed}); see the traceback above.")
    return sum(counts.values())


def _work(
    worker: int,
    tenant_id: int,
    number_id: int,
    plans: list[CustomerPlan],
    end: int,
    exact: bool,
    progress: Any,
) -> None:
    # Connection settings of this process only, for speed; none changes what is written. One schema for the
    # whole process: set the search path once per connection, not before every statement. Server-side binding
    # with prepared statements: the same few statements run hundreds of thousands of times.
    settings.TENANT_LIMIT_SET_CALLS = True
    connection.settings_dict["OPTIONS"] = {
        **connection.settings_dict["OPTIONS"],
        "server_side_binding": True,
        "prepare_threshold": 1,
    }
    try:
        tenant = Tenant.objects.get(pk=tenant_id)
        number = WhatsAppNumber.objects.get(pk=number_id)
        agents = [
            membership.user
            for membership in Membership.objects.select_related("user")
            .filter(tenant=tenant, role=Role.AGENT, user__is_active=True)
            .order_by("user_id")
        ]
        connection.set_tenant(tenant)  # type: ignore[attr-defined]
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        runner = Runner(number, agents, end, exact=exact)
        with runner.replaying():
            for start in range(0, len(plans), CHUNK):
                runner.run_chunk(plans[start : start + CHUNK])
                progress.put((worker, runner.messages, 0))
        progress.put((worker, runner.messages, 1))
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    finally:
        connections.close_all()
