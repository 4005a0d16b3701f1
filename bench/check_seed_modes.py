"""Check that seed_load's fast replay leaves exactly the rows of its reference replay.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/check_seed_modes.py [--messages 5000] [--seed 3] [--keep]

Creates two fresh tenants, seeds the same plans (same seed, same end, one worker each) once with `--exact`
(do_receive_inbound per customer message, every row written by the actions as they run) and once with the
default write-behind replay, then compares every row the history consists of: contacts, conversations,
messages, notes, tickets, reporting events, daily volumes and conversation days. Ids differ between tenants,
so rows are compared by what identifies them (a contact's wa_id, a ticket's conversation and opening time, an
agent's e-mail). Exits 1 on any difference. Drops both tenants afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from helpdesk.tenancy.actions import do_add_number, do_create_tenant  # noqa: E402
from helpdesk.tenancy.models import Tenant, User  # noqa: E402
from tickets.store import COUNTERS  # noqa: E402


def snapshot(slug: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row of the seeded history, with ids replaced by what they stand for."""
    agents = {
        user.pk: user.email.split("@")[0] for user in User.objects.filter(email__endswith=f"@{slug}.load")
    }

    def who(user_id: Any) -> Any:
        return None if user_id is None else agents.get(int(user_id), f"user {user_id}")

    out: dict[str, Counter[tuple[Any, ...]]] = {}
    with schema_context(slug), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, k.wa_id FROM conversations_conversation c "
            "JOIN conversations_contact k ON k.id = c.contact_id"
        )
        customer = dict(cursor.fetchall())
        cursor.execute("SELECT id, conversation_id, opened_at FROM tickets_ticket")
        ticket = {pk: (customer[conversation], opened) for pk, conversation, opened in cursor.fetchall()}

        def rows(name: str, sql: str, shape: Any) -> None:
            cursor.execute(sql)
            out[name] = Counter(shape(row) for row in cursor.fetchall())

        rows("contacts", "SELECT wa_id, name, created_at FROM conversations_contact", tuple)
        rows(
            "conversations",
            "SELECT id, status, last_message_at, last_message_preview, last_inbound_at, "
            "window_expires_at, unread_count, current_ticket_id, created_at FROM conversations_conversation",
            lambda r: (customer[r[0]], *r[1:7], ticket.get(r[7]), r[8]),
        )
        rows(
            "messages",
            "SELECT conversation_id, direction, type, text, content::text, status, wamid, "
            "reply_to_wamid, sender_kind, sender_user_id, sender_name, created_at, sent_at, delivered_at, read_at "
            "FROM conversations_message",
            lambda r: (customer[r[0]], *r[1:9], who(r[9]), *r[10:]),
        )
        rows(
            "notes",
            "SELECT conversation_id, author_id, author_name, text, created_at FROM conversations_note",
            lambda r: (customer[r[0]], who(r[1]), *r[2:]),
        )
        cursor.execute("SELECT * FROM tickets_ticket LIMIT 0")
        columns = [column.name for column in cursor.description]
        people = {"assignee_id", "resolved_by_id"}

        def ticket_row(r: tuple[Any, ...]) -> tuple[Any, ...]:
            values = dict(zip(columns, r, strict=True))
            key = ticket[values.pop("id")]
            values.pop("conversation_id")
            values.pop("number_id")
            return (
                key,
                *((name, who(value) if name in people else value) for name, value in sorted(values.items())),
            )

        rows("tickets", "SELECT * FROM tickets_ticket", ticket_row)
        rows(
            "reporting events",
            "SELECT name, day, event_start, event_end, value_seconds, value_business_seconds, "
            "ticket_id, conversation_id, agent_id, sla_kind, sla_met FROM tickets_reportingevent",
            lambda r: (*r[:6], ticket.get(r[6]), customer.get(r[7]), who(r[8]), *r[9:]),
        )
        rows(
            "daily volumes",
            f"SELECT day, agent_id, {', '.join(COUNTERS)} FROM tickets_dailyvolume",
            lambda r: (r[0], who(r[1]) if r[1] else 0, *r[2:]),
        )
        rows(
            "sealed intervals",
            "SELECT day, name, count, agent_ids, seconds, business_seconds FROM tickets_sealedintervals",
            lambda r: (
                *r[:3],
                tuple(who(agent) if agent else 0 for agent in np.frombuffer(r[3], "<i8").tolist()),
                bytes(r[4]),
                bytes(r[5]),
            ),
        )
        rows(
            "conversation days",
            "SELECT day, conversation_id FROM tickets_conversationday",
            lambda r: (r[0], customer[r[1]]),
        )
    return out


def _tenant(slug: str, phone_number_id: str) -> Tenant:
    tenant = do_create_tenant(slug, slug, f"{slug}.localhost")
    do_add_number(
        tenant,
        phone_number_id=phone_number_id,
        waba_id=phone_number_id[:-1] + "9",
        display_number="62813" + phone_number_id[-8:],
        access_token="x",
        app_secret="y",
        verify_token="z",
    )
    return tenant


def _drop(tenant: Tenant) -> None:
    """The schema, the tenant's shared rows and its seeded agents (the ORM's cascade would look for tenant
    tables in the public schema)."""
    from helpdesk.tenancy.models import Domain, Membership, WhatsAppNumber
    from tickets.management.commands.seed_load import result_path

    result_path(connection.settings_dict["NAME"], tenant.schema_name).unlink(missing_ok=True)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        for model in (Membership, WhatsAppNumber, Domain):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE tenant_id = %s", [tenant.pk])
        cursor.execute(f"DELETE FROM {Tenant._meta.db_table} WHERE id = %s", [tenant.pk])
        cursor.execute(
            f"DELETE FROM {User._meta.db_table} WHERE email LIKE %s", [f"%@{tenant.schema_name}.load"]
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keep", action="store_true", help="Keep both tenants")
    args = parser.parse_args()

    stamp = int(time.time())
    end = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(stamp))
    tenants = []
    snapshots = {}
    try:
        for n, mode in enumerate(("exact", "fast")):
            slug = f"seedcheck_{stamp}_{mode}"
            tenants.append(_tenant(slug, f"39{stamp:010d}{n}"))
            started = time.monotonic()
            output = io.StringIO()
            call_command(
                "seed_load",
                slug,
                messages=args.messages,
                seed=args.seed,
                days=args.days,
                end=end,
                workers=1,
                exact=mode == "exact",
                stdout=output,
            )
            print(
                f"{mode}: seeded in {time.monotonic() - started:.1f} s: {output.getvalue().splitlines()[-1]}"
            )
            snapshots[mode] = snapshot(slug)
    finally:
        if not args.keep:
            for tenant in tenants:
                _drop(tenant)
    failed = False
    for table, exact_rows in snapshots["exact"].items():
        fast_rows = snapshots["fast"][table]
        missing, extra = exact_rows - fast_rows, fast_rows - exact_rows
        status = (
            "same"
            if not missing and not extra
            else f"DIFFERENT ({sum(missing.values())} only in exact, {sum(extra.values())} only in fast)"
        )
        print(f"{table:18} {sum(exact_rows.values()):>8} rows  {status}")
        for row in list(missing)[:3]:
            print("    exact:", row)
        for row in list(extra)[:3]:
            print("    fast: ", row)
        failed |= bool(missing or extra)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
