"""Inbox API latency: the conversation list and a conversation's messages through the whole stack, against one
hand-written SELECT of the same page, and the statements each request runs.

    DATABASE_URL=... REDIS_URL=... SECRET_KEY=... .venv/bin/python -m bench.bench_inbox_api [--quick] [--keep]

`run(quick)` is what bench/run.py calls once Django is set up on a freshly migrated scratch database; run as a
script, the module sets Django up itself (DJANGO_SETTINGS_MODULE=helpdesk.settings) against DATABASE_URL, which
must be migrated (`manage.py migrate`).

What it does: creates a tenant of its own (unique slug, its domain, a WhatsApp number, an agent with an API
token), seeds 10,000 open conversations (1,000 with --quick), each with its contact, its open ticket and three
messages, and one conversation with 200 messages, in bulk. Then, alternating product and reference on one
connection:

- product: `GET /api/v1/conversations/` (the first page: 50 most recent) and
  `GET /api/v1/conversations/<id>/messages/?page=last` (50 newest messages of the long conversation), in-process
  through Django's test Client with the tenant's Host header and `Authorization: Token`, so every middleware,
  the tenant lookup, token authentication, the membership check, the count, the page and JSON rendering run;
- reference: one SELECT via a raw cursor returning the same rows' columns (schema-qualified, no search path).

Figures: p50 and p95 of both, the p50 ratio (target ≤ 5x), and the statements per request (target: at most
a small constant, with `SET search_path` once). The tenant is dropped afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_inbox_api.py`: make `bench` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.figures import Figure, at_most

BENCHMARK = "inbox API"
PAGE = 50  # the API's default page size
LONG_THREAD = 200  # messages of the conversation whose messages are listed
MESSAGES_EACH = 3
MAX_RATIO = 5.0
MAX_STATEMENTS = 8  # per request, whatever the page size; SET search_path among them once


@dataclass
class Seeded:
    slug: str
    domain: str
    token: str
    long_conversation: int
    conversations: int
    seconds: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ------------------------------------------------------------------ seeding


def seed(conversations: int) -> Seeded:
    """A fresh tenant with `conversations` open conversations (contact, open ticket, three messages each) and
    one more with LONG_THREAD messages, written in bulk."""
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from conversations.models import Contact, Conversation, Message
    from helpdesk.tenancy.actions import do_add_member, do_add_number, do_create_tenant, do_issue_api_token
    from tickets.models import Ticket

    started = time.perf_counter()
    slug = f"bench_api_{secrets.token_hex(4)}"
    domain = f"{slug.replace('_', '-')}.localhost"
    tenant = do_create_tenant(slug, "Inbox API benchmark", domain)
    pnid = str(900_000_000_000_000 + secrets.randbelow(10**14))
    number = do_add_number(
        tenant,
        phone_number_id=pnid,
        waba_id=str(int(pnid) + 1),
        display_number="15550001234",
        access_token="bench-token",
        app_secret="bench-secret",
        verify_token="bench-verify",
        simulator=True,
    )
    membership = do_add_member(tenant, f"agent@{slug}.bench", "agent", secrets.token_urlsafe(16), "Agent")
    token, _ = do_issue_api_token(membership.user)

    now = datetime.now(UTC).replace(microsecond=0)
    total = conversations + 1
    with schema_context(slug), transaction.atomic():
        contacts = Contact.objects.bulk_create(
            [
                Contact(number=number, wa_id=f"62811{i:08d}", name=f"Customer {i}", created_at=now)
                for i in range(total)
            ],
            batch_size=2000,
        )
        # Oldest first, so the long thread (the last one) is the most recent conversation.
        moments = [now - timedelta(seconds=30 * (total - i)) for i in range(total)]
        convs = Conversation.objects.bulk_create(
            [
                Conversation(
                    number=number,
                    contact=contact,
                    status="open",
                    last_message_at=at,
                    last_message_preview=f"Message {i}",
                    last_inbound_at=at,
                    window_expires_at=at + timedelta(hours=24),
                    unread_count=1,
                    created_at=at - timedelta(minutes=5),
                )
                for i, (contact, at) in enumerate(zip(contacts, moments, strict=True))
            ],
            batch_size=2000,
        )
        Ticket.objects.bulk_create(
            [
                Ticket(
                    conversation=conv,
                    number=number,
                    opened_at=conv.created_at,
                    cycle_started_at=conv.created_at,
                    waiting_since=conv.last_inbound_at,
                    last_customer_message_at=conv.last_inbound_at,
                    response_due_at=conv.last_inbound_at + timedelta(hours=1),
                    resolution_due_at=conv.last_inbound_at + timedelta(hours=8),
                    assignee=membership.user if i % 3 == 0 else None,
                )
                for i, conv in enumerate(convs)
            ],
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Conversation._meta.db_table} AS c SET current_ticket_id = t.id "
                f"FROM {Ticket._meta.db_table} AS t WHERE t.conversation_id = c.id"
            )

        def message(conv: Conversation, k: int, at: datetime) -> Message:
            inbound = k % 2 == 0
            text = f"Message {k} of {conv.pk}"
            return Message(
                conversation=conv,
                direction="in" if inbound else "out",
                type="text",
                text=text,
                content={"body": text},
                status="received" if inbound else "read",
                wamid=f"wamid.BENCH{conv.pk}.{k}",
                sender_kind="customer" if inbound else "agent",
                sender_user_id=None if inbound else membership.user.pk,
                sender_name="Customer" if inbound else "Agent",
                created_at=at,
                sent_at=None if inbound else at,
                delivered_at=None if inbound else at + timedelta(seconds=1),
                read_at=None if inbound else at + timedelta(seconds=2),
                reactions={"customer": {"emoji": "👍"}} if k == 1 else {},
            )

        batch: list[Message] = []
        for conv in convs[:-1]:
            for k in range(MESSAGES_EACH):
                batch.append(
                    message(conv, k, conv.last_message_at - timedelta(seconds=MESSAGES_EACH - 1 - k))
                )  # type: ignore[operator]
            if len(batch) >= 6000:
                Message.objects.bulk_create(batch, batch_size=2000)
                batch = []
        long = convs[-1]
        batch += [
            message(long, k, long.last_message_at - timedelta(seconds=LONG_THREAD - 1 - k))  # type: ignore[operator]
            for k in range(LONG_THREAD)
        ]
        Message.objects.bulk_create(batch, batch_size=2000)
    with schema_context(slug), connection.cursor() as cursor:
        for model in (Contact, Conversation, Ticket, Message):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return Seeded(slug, domain, token, long.pk, conversations, time.perf_counter() - started)


def drop(slug: str) -> None:
    """The tenant's schema and its rows in the shared schema, in plain SQL (the ORM's cascade would look for the
    tenant's tables in the schema being dropped)."""
    from django.db import connection
    from knox.models import AuthToken

    from helpdesk.tenancy.models import Domain, Membership, Tenant, User, WhatsAppNumber

    connection.set_schema_to_public()
    tenant = Tenant.objects.get(schema_name=slug)
    users = list(User.objects.filter(email__endswith=f"@{slug}.bench").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{slug}" CASCADE')
        for model, column, values in (
            (AuthToken, "user_id", users),
            (Membership, "tenant_id", [tenant.pk]),
            (User, "id", users),
            (WhatsAppNumber, "tenant_id", [tenant.pk]),
            (Domain, "tenant_id", [tenant.pk]),
            (Tenant, "id", [tenant.pk]),
        ):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {column} = ANY(%s)", [values])


# ------------------------------------------------------------------ the reference: one SELECT


def list_sql(slug: str) -> str:
    from conversations.models import Contact, Conversation
    from helpdesk.tenancy.models import WhatsAppNumber
    from tickets.models import Ticket

    return f"""
        SELECT c.id, c.status, c.last_message_at, c.last_message_preview, c.last_inbound_at,
               c.window_expires_at, c.unread_count, c.created_at,
               p.id, p.wa_id, p.user_id, p.username, p.name, p.opted_in_at, p.opted_out_at, p.marketing,
               p.marketing_changed_at,
               n.id, n.display_number,
               t.id, t.status, t.priority, t.assignee_id, t.waiting_since, t.awaiting_first_response,
               t.reopen_count, t.response_due_at, t.resolution_due_at
        FROM "{slug}".{Conversation._meta.db_table} c
        JOIN "{slug}".{Contact._meta.db_table} p ON p.id = c.contact_id
        JOIN public.{WhatsAppNumber._meta.db_table} n ON n.id = c.number_id
        LEFT JOIN "{slug}".{Ticket._meta.db_table} t ON t.id = c.current_ticket_id
        ORDER BY c.last_message_at DESC NULLS FIRST, c.id DESC
        LIMIT {PAGE}
    """


def messages_sql(slug: str) -> str:
    from conversations.models import Message

    return f"""
        SELECT * FROM (
            SELECT id, conversation_id, direction, type, text, content, status, wamid, reply_to_wamid,
                   sender_kind, sender_name, created_at, sent_at, delivered_at, read_at, failed_at, error_code,
                   error_title, error_details, edited_at, deleted_at, reactions, is_history
            FROM "{slug}".{Message._meta.db_table}
            WHERE conversation_id = %s
            ORDER BY created_at DESC, id DESC
            LIMIT {PAGE}
        ) page ORDER BY created_at, id
    """


# ------------------------------------------------------------------ measuring


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def statements(call: Callable[[], Any]) -> tuple[int, int]:
    """Statements one call runs, and how many of them set the search path."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    sql = [q["sql"] for q in captured.captured_queries]
    return len(sql), sum(1 for s in sql if s.upper().startswith("SET SEARCH_PATH"))


def measure(seeded: Seeded, repeat: int) -> list[Figure]:
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST=seeded.domain, HTTP_AUTHORIZATION=f"Token {seeded.token}")
    endpoints = {
        "conversation list": ("/api/v1/conversations/", list_sql(seeded.slug), []),
        "messages": (
            f"/api/v1/conversations/{seeded.long_conversation}/messages/?page=last",
            messages_sql(seeded.slug),
            [seeded.long_conversation],
        ),
    }
    figures: list[Figure] = []
    for name, (url, sql, params) in endpoints.items():

        def product(url: str = url) -> Any:
            response = client.get(url)
            assert response.status_code == 200, response.content[:500]
            return response

        def reference(sql: str = sql, params: list[Any] = params) -> list[tuple[Any, ...]]:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        # Same rows on both sides.
        shown = [row["id"] for row in product().json()["results"]]
        assert shown == [row[0] for row in reference()], f"{name}: the API and the SELECT disagree"
        assert len(shown) == PAGE, f"{name}: {len(shown)} rows, not a full page"
        timed(product, 20)  # warm up
        timed(reference, 20)
        product_ms: list[float] = []
        reference_ms: list[float] = []
        for _ in range(repeat):  # alternate, so both see the same machine
            product_ms += timed(product, 1)[0]
            reference_ms += timed(reference, 1)[0]
        count, sets = statements(product)
        p50, ref50 = statistics.median(product_ms), statistics.median(reference_ms)
        p95, ref95 = _percentile(product_ms, 0.95), _percentile(reference_ms, 0.95)
        rows = f"{seeded.conversations:,} open conversations"
        how = f"{repeat} requests via the test Client (full middleware, token auth), {rows}, page of {PAGE}"
        figures += [
            Figure(
                BENCHMARK,
                f"{name}: p50 request latency vs one SELECT of the same page",
                round(p50, 3),
                round(ref50, 3),
                "ms",
                f"≤ {MAX_RATIO:g}x reference",
                at_most(p50, ref50, MAX_RATIO),
                how,
            ),
            Figure(
                BENCHMARK,
                f"{name}: p95 request latency vs one SELECT of the same page",
                round(p95, 3),
                round(ref95, 3),
                "ms",
                "informational",
                None,
                how,
            ),
            Figure(
                BENCHMARK,
                f"{name}: statements per request (of them SET search_path: {sets})",
                count,
                1,
                "statements",
                f"≤ {MAX_STATEMENTS}, SET search_path once",
                count <= MAX_STATEMENTS and sets == 1,
                "CaptureQueriesContext around one request; the reference is the one SELECT",
            ),
        ]
    return figures


def run(quick: bool) -> list[Figure]:
    """Seed a tenant of its own, measure, drop it. Django is set up by the caller."""
    from django.conf import settings
    from django.http.request import validate_host
    from django.test.utils import override_settings

    seeded = seed(1_000 if quick else 10_000)
    try:
        allowed = list(settings.ALLOWED_HOSTS)
        if not validate_host(seeded.domain, allowed):  # the tenant's domain must pass ALLOWED_HOSTS
            allowed.append(seeded.domain)
        with override_settings(ALLOWED_HOSTS=allowed):
            return measure(seeded, 100 if quick else 500)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            drop(seeded.slug)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 conversations, fewer repetitions")
    parser.add_argument("--keep", action="store_true", help="keep the tenant afterwards")
    args = parser.parse_args()
    if args.keep:
        os.environ["BENCH_KEEP"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    import django

    django.setup()
    started = time.perf_counter()
    for figure in run(args.quick):
        ratio = f" ({figure.ratio:.1f}x)" if figure.ratio is not None else ""
        verdict = {True: "met", False: "NOT MET", None: "-"}[figure.met]
        print(
            f"{figure.measure}: {figure.product:g} vs {figure.reference} {figure.unit}{ratio}"
            f" [{figure.target}: {verdict}]"
        )
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
