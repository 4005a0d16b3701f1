"""The webhook applier in batches: a batch leaves exactly what applying every item on its own leaves, costs a
handful of statements however many messages it holds, lets one bad item fail alone, and a burst of webhooks
wakes one processing task."""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, connections
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations import actions, webhooks
from conversations.models import Conversation, InboxEvent, Message, PendingStatus
from helpdesk.tenancy.models import WebhookEvent
from tests.conftest import ACME, GLOBEX, post_webhook
from tests.faults import refused_writes
from tickets.models import ConversationDay, DailyVolume, Ticket

NOW = int(timezone.now().timestamp())


def text(wa_id: str, body: str, at: int, name: str = "", wamid: str = "") -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid or "wamid.B" + secrets.token_hex(10),
        "timestamp": str(at),
        "type": "text",
        "text": {"body": body},
        "_name": name,
    }


def webhook(
    spec: dict[str, str], *items: dict[str, Any], statuses: list[dict[str, Any]] | None = None
) -> bytes:
    """One POST of `spec`'s number with these messages (and statuses), Meta's shape."""
    messages = [{key: value for key, value in item.items() if key != "_name"} for item in items]
    contacts = [
        {"profile": {"name": item.get("_name") or "Customer"}, "wa_id": item["from"]} for item in items
    ]
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": spec["display"], "phone_number_id": spec["pnid"]},
    }
    if messages:
        value |= {"contacts": contacts, "messages": messages}
    if statuses:
        value["statuses"] = statuses
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": spec["waba"], "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def for_tenant(body: bytes, spec: dict[str, str]) -> bytes:
    """The same webhook, sent to another tenant's number (same wamids, customers and times)."""
    return (
        body.replace(ACME["pnid"].encode(), spec["pnid"].encode())
        .replace(ACME["waba"].encode(), spec["waba"].encode())
        .replace(ACME["display"].encode(), spec["display"].encode())
    )


def a_day_of_webhooks() -> list[bytes]:
    """New and returning customers, several messages per POST, a customer twice in one POST, a message that
    arrives late, a redelivery, an edit and a reaction of messages in the same batch, a status for a message we
    never sent, a customer whose profile name changed, and a customer known only by BSUID."""
    rina, budi, sari, joko = "6281100000001", "6281100000002", "6281100000003", "6281100000004"
    first = text(rina, "halo", NOW - 600, "Rina")
    late = text(budi, "sent first, arrives late", NOW - 900, "Budi")
    redelivered = webhook(ACME, text(sari, "ada stok?", NOW - 500, "Sari"))
    edit = {
        "from": rina,
        "id": "wamid.E" + secrets.token_hex(8),
        "timestamp": str(NOW - 400),
        "type": "edit",
        "edit": {"original_message_id": first["id"], "message": {"type": "text", "text": {"body": "halo!"}}},
    }
    reaction = {
        "from": budi,
        "id": "wamid.R" + secrets.token_hex(8),
        "timestamp": str(NOW - 390),
        "type": "reaction",
        "reaction": {"message_id": first["id"], "emoji": "👍"},
    }
    bsuid_only = {
        "from_user_id": "ID.1234567890abcdef",
        "id": "wamid.U" + secrets.token_hex(8),
        "timestamp": str(NOW - 380),
        "type": "text",
        "text": {"body": "no phone number"},
    }
    unknown_status = {
        "id": "wamid.NEVER" + secrets.token_hex(6),
        "status": "delivered",
        "timestamp": str(NOW),
    }
    return [
        webhook(ACME, first, text(budi, "pesanan saya?", NOW - 590, "Budi")),
        redelivered,
        webhook(
            ACME, text(rina, "masih di sana?", NOW - 300, "Rina"), text(rina, "halo??", NOW - 290, "Rina")
        ),
        webhook(ACME, late, text(joko, "hi", NOW - 200, "Joko Renamed")),
        redelivered,
        webhook(ACME, edit, reaction, statuses=[unknown_status]),
        json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": ACME["waba"],
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": ACME["display"],
                                        "phone_number_id": ACME["pnid"],
                                    },
                                    "contacts": [
                                        {"profile": {"name": "Anon"}, "user_id": "ID.1234567890abcdef"}
                                    ],
                                    "messages": [bsuid_only],
                                },
                            }
                        ],
                    }
                ],
            }
        ).encode(),
        webhook(ACME, text(sari, "terima kasih", NOW - 100, "Sari")),
    ]


def store(body: bytes) -> WebhookEvent:
    return WebhookEvent.objects.create(body=body.decode())


def one_by_one(bodies: list[bytes]) -> None:
    """Every change applied on its own, item by item, outside any batch (the applier's fallback path)."""
    for body in bodies:
        event = store(body)
        payload = webhooks._load(event)
        for change in webhooks._plan(payload, webhooks._numbers_of([payload])):
            with schema_context(change.schema_name):
                assert webhooks.apply_change(change, event.received_at) is None
        WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now())


def snapshot(schema: str) -> dict[str, Any]:
    """What a tenant's inbox, tickets and reports hold, without ids and owners that differ between tenants."""
    with schema_context(schema):
        messages = [
            (
                m.wamid,
                m.conversation.contact.wa_id or m.conversation.contact.user_id,
                m.type,
                m.text,
                m.status,
                m.created_at,
                m.sender_kind,
                m.sender_name,
                m.edited_at,
                m.reactions,
                m.original_text,
                m.delivered_at,  # (sent_at is the moment the Graph API answered: not a webhook's)
                m.read_at,
                m.failed_at,
                m.error_code,
                m.error_details,
            )
            for m in Message.objects.select_related("conversation__contact").order_by("created_at", "wamid")
        ]
        conversations = [
            (
                c.contact.wa_id or c.contact.user_id,
                c.contact.name,
                c.status,
                c.last_message_at,
                c.last_message_preview,
                c.last_inbound_at,
                c.window_expires_at,
                c.unread_count,
                c.current_ticket_id is not None,
            )
            for c in Conversation.objects.select_related("contact").order_by(
                "contact__wa_id", "contact__user_id"
            )
        ]
        tickets = [
            (
                t.conversation.contact.wa_id or t.conversation.contact.user_id,
                t.status,
                t.opened_at,
                t.waiting_since,
                t.response_due_at,
                t.resolution_due_at,
                t.awaiting_first_response,
                t.last_customer_message_at,
                t.assignee_id is not None,
                t.reopen_count,
            )
            for t in Ticket.objects.select_related("conversation__contact").order_by("opened_at")
        ]
        counters = DailyVolume.objects.aggregate(
            messages_in=Sum("messages_in"), tickets_opened=Sum("tickets_opened")
        )
        events = [
            (event.type, event.payload.get("message", {}).get("wamid"))
            for event in InboxEvent.objects.order_by("pk")
        ]
        return {
            "messages": messages,
            "conversations": conversations,
            "tickets": tickets,
            "counters": counters,
            "conversation_days": ConversationDay.objects.count(),
            "pending": sorted(PendingStatus.objects.values_list("wamid", "kind")),
            "events": sorted(events, key=str),
        }


def updates_before_their_message() -> tuple[list[bytes], list[bytes]]:
    """A reaction and an edit that overtake their message (one batch), then the message (the next batch)."""
    dewi = "6281100000005"
    message = text(dewi, "foto produk", NOW - 50, "Dewi")
    early = [
        {
            "from": dewi,
            "id": "wamid.R" + secrets.token_hex(8),
            "timestamp": str(NOW - 40),
            "type": "reaction",
            "reaction": {"message_id": message["id"], "emoji": "🙏"},
        },
        {
            "from": dewi,
            "id": "wamid.E" + secrets.token_hex(8),
            "timestamp": str(NOW - 30),
            "type": "edit",
            "edit": {
                "original_message_id": message["id"],
                "message": {"type": "text", "text": {"body": "foto!"}},
            },
        },
    ]
    return [webhook(ACME, *early)], [webhook(ACME, message)]


def sent_by_us(wa_id: str, wamids: list[str]) -> None:
    """Replies to a customer in both tenants, accepted by the Graph API with these wamids."""
    for schema in ("acme", "globex"):
        with schema_context(schema):
            conversation = Conversation.objects.get(contact__wa_id=wa_id)
            for wamid in wamids:
                queued = actions.do_queue_outbound(
                    conversation,
                    type="text",
                    text="ok",
                    content={"body": "ok"},
                    sender_kind="bot",
                    at=datetime.fromtimestamp(NOW - 10, tz=UTC),
                )
                actions.do_mark_sent(queued.pk, wamid)


def statuses_of(wamids: list[str]) -> list[bytes]:
    """Every delivery status a reply can get, some twice, some late, one failure, in three POSTs."""
    first, second = wamids

    def status(wamid: str, name: str, at: int, **extra: Any) -> dict[str, Any]:
        return {"id": wamid, "status": name, "timestamp": str(at), "recipient_id": "6281100000001", **extra}

    failure = {"code": 131047, "title": "Re-engagement message", "error_data": {"details": "window closed"}}
    return [
        webhook(ACME, statuses=[status(first, "sent", NOW), status(first, "delivered", NOW + 1)]),
        webhook(
            ACME,
            statuses=[status(first, "read", NOW + 5), status(second, "failed", NOW + 2, errors=[failure])],
        ),
        webhook(ACME, statuses=[status(first, "delivered", NOW + 1), status(second, "delivered", NOW + 3)]),
    ]


def test_a_batch_leaves_exactly_what_applying_every_item_on_its_own_leaves(db):
    # given a day of webhooks: acme's are applied in batches, the same ones to globex item by item
    early, late = updates_before_their_message()
    replies = ["wamid.OUT" + secrets.token_hex(8), "wamid.OUT" + secrets.token_hex(8)]
    for phase in (a_day_of_webhooks(), early, late, "replies", statuses_of(replies)):
        if phase == "replies":
            sent_by_us("6281100000001", replies)
            continue
        for body in phase:
            store(body)
        assert webhooks.process_pending_events() == len(phase)
        one_by_one([for_tenant(body, GLOBEX) for body in phase])

    # then both tenants hold the same messages, conversations, tickets, counters and inbox events
    batch, alone = snapshot("acme"), snapshot("globex")
    assert batch == alone
    # and the day is what it should be: six customers, ten messages once each (and our two replies), the edits
    # and reactions applied
    assert len(batch["messages"]) == 12
    assert batch["counters"] == {"messages_in": 10, "tickets_opened": 6}
    rina_first = next(m for m in batch["messages"] if m[1] == "6281100000001")
    assert (rina_first[3], rina_first[9]["customer"]["emoji"]) == ("halo!", "👍")
    dewi = next(m for m in batch["messages"] if m[1] == "6281100000005")
    assert (dewi[3], dewi[9]["customer"]["emoji"]) == ("foto!", "🙏")
    assert batch["pending"] == [
        (m, "status") for m, _ in batch["pending"]
    ]  # only the never-sent status waits
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_a_batch_costs_a_handful_of_statements_however_many_messages_it_holds(db):
    # given two loads of new and returning customers: 10 messages, and 200
    def load(messages: int) -> int:
        for post in range(messages // 5):
            customers = [f"62812{post % 7:04d}{k:04d}" for k in range(5)]
            store(webhook(ACME, *(text(wa_id, f"m{post}", NOW - 1000 + post) for wa_id in customers)))
        with CaptureQueriesContext(connection) as statements:
            webhooks.process_pending_events()
        return len(statements.captured_queries)

    small, large = load(10), load(200)

    # then twenty times the messages costs a few statements more, not twenty times as many
    assert small <= 40
    assert large <= small + 10, (small, large)
    with schema_context("acme"):
        assert Message.objects.count() == 210


def test_statuses_for_messages_not_sent_yet_are_kept_in_a_handful_of_statements(db):
    # given statuses that overtook the answers to our sends: 4 of them, then 80, each for a wamid we lack
    def load(count: int) -> int:
        tag = secrets.token_hex(4)
        for post in range(count // 4):
            statuses = [
                {
                    "id": f"wamid.OUT.{tag}.{post}.{k}",
                    "status": "sent",
                    "timestamp": str(NOW),
                    "recipient_id": "1",
                }
                for k in range(4)
            ]
            store(webhook(ACME, statuses=statuses))
        with CaptureQueriesContext(connection) as statements:
            webhooks.process_pending_events()
        return len(statements.captured_queries)

    small, large = load(4), load(80)

    # then each is kept for its message, and twenty times as many cost no more statements
    assert large <= small, (small, large)
    with schema_context("acme"):
        assert PendingStatus.objects.count() == 84
        assert set(PendingStatus.objects.values_list("kind", flat=True)) == {"status"}
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_one_message_the_database_refuses_fails_alone_and_the_rest_of_the_batch_is_applied(db):
    # given the database refuses to store one message (a real failure, injected at the database)
    good = [text(f"628130000000{k}", f"fine {k}", NOW - 100 + k) for k in range(4)]
    poison = text("6281300000009", "poison", NOW - 50)
    first, second = store(webhook(ACME, good[0], poison, good[1])), store(webhook(ACME, good[2], good[3]))
    with refused_writes("acme", "conversations_message", "NEW.text = 'poison'"):
        webhooks.process_pending_events()

    # then every other message is stored, counted and announced once; only the poison's change failed
    with schema_context("acme"):
        assert sorted(Message.objects.values_list("text", flat=True)) == [
            "fine 0",
            "fine 1",
            "fine 2",
            "fine 3",
        ]
        assert DailyVolume.objects.aggregate(total=Sum("messages_in"))["total"] == 4
        assert InboxEvent.objects.filter(type="message.created").count() == 4
        assert not Conversation.objects.filter(contact__wa_id="6281300000009").exists()
    first.refresh_from_db()
    second.refresh_from_db()
    assert [(f["key"], f["field"]) for f in first.failures] == [("0.0", "messages")]
    assert "injected failure" in first.failures[0]["error"]
    assert (second.processed_at is not None, second.failures) == (True, [])

    # when its retry comes, after the fix, only the poison message is applied: nothing twice
    WebhookEvent.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    webhooks.process_pending_events()
    with schema_context("acme"):
        assert Message.objects.count() == 5
        assert DailyVolume.objects.aggregate(total=Sum("messages_in"))["total"] == 5
        assert InboxEvent.objects.filter(type="message.created").count() == 5


def test_a_burst_of_webhooks_wakes_one_processing_task(db, django_capture_on_commit_callbacks):
    # given a processing task is already queued or running (it holds the wake key)
    webhooks._redis().set(webhooks.WAKE_KEY, "1", ex=60)
    try:
        # when webhooks arrive meanwhile
        for k in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                assert (
                    post_webhook(json.loads(webhook(ACME, text(f"62814000000{k}", "hi", NOW)))).status_code
                    == 200
                )

        # then no task was queued for them (the eager test worker would have applied them at once)
        assert WebhookEvent.objects.filter(processed_at__isnull=True).count() == 3

        # when the running task works until nothing is left
        assert webhooks.process_until_done(linger=0) == 3

        # then it gave up the key, so the next webhook wakes a task of its own
        assert webhooks._redis().get(webhooks.WAKE_KEY) is None
        with django_capture_on_commit_callbacks(execute=True):
            post_webhook(json.loads(webhook(ACME, text("6281400000099", "later", NOW))))
        assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    finally:
        webhooks._redis().delete(webhooks.WAKE_KEY)


def test_a_running_task_applies_webhooks_stored_while_it_waits_then_gives_up_its_key(committed_db):
    redis = webhooks._redis()
    redis.delete(webhooks.WAKE_LIST)
    redis.set(webhooks.WAKE_KEY, "1", ex=60)  # as a woken task holds it
    finished: list[float] = []

    def woken_task() -> None:
        try:
            webhooks.process_until_done(linger=1.5)
        finally:
            finished.append(time.monotonic())
            connections.close_all()

    wa_id = f"6281600{secrets.randbelow(10**6):06d}"
    task = threading.Thread(target=woken_task)
    try:
        task.start()
        time.sleep(0.3)
        # when a webhook arrives while the task waits (no new task is queued: the key is held)
        assert post_webhook(json.loads(webhook(ACME, text(wa_id, "while it waits", NOW)))).status_code == 200
        stored = time.monotonic()

        # then the waiting task applies it at once, without a Celery round trip
        event = WebhookEvent.objects.order_by("-pk").first()
        assert event is not None
        while event.processed_at is None and time.monotonic() - stored < 1.0:
            time.sleep(0.02)
            event.refresh_from_db()
        assert event.processed_at is not None
        assert not finished  # still waiting for more

        # and once nothing more came for the linger time, it ends and gives up the key
        task.join(10)
        assert finished
        assert finished[0] - stored >= 1.4
        assert redis.get(webhooks.WAKE_KEY) is None
        with schema_context("acme"):
            assert Message.objects.filter(conversation__contact__wa_id=wa_id).count() == 1
    finally:
        task.join(10)
        redis.delete(webhooks.WAKE_KEY, webhooks.WAKE_LIST)


def test_the_batch_store_of_a_number_is_its_tenants(db):
    # a number's messages land in its own tenant only, when both tenants' webhooks share a batch
    store(webhook(ACME, text("6281500000001", "to acme", NOW)))
    store(webhook(GLOBEX, text("6281500000002", "to globex", NOW)))
    assert webhooks.process_pending_events() == 2
    with schema_context("acme"):
        assert list(Message.objects.values_list("text", flat=True)) == ["to acme"]
    with schema_context("globex"):
        assert list(Message.objects.values_list("text", flat=True)) == ["to globex"]
