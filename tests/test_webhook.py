"""Meta's webhook on the public domain: the handshake, signatures, storage of every inbound type, batches,
redelivery, the 24-hour window and account-level events."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import AccountEvent, Contact, Conversation, InboxEvent, Message
from helpdesk.tenancy.models import WebhookEvent, WhatsAppNumber
from tests.conftest import (
    ACME,
    GLOBEX,
    PAYLOADS,
    fresh_wa_id,
    payload,
    post_webhook,
    public_client,
    retarget,
    sign,
)


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def deliver(capture: Any, p: dict[str, Any] | bytes, **kwargs: Any) -> Any:
    """POST a webhook and run what its commit triggers (the eager processing task)."""
    with capture(execute=True):
        return post_webhook(p, **kwargs)


def text_message(wa_id: str, wamid: str, ts: int, body: str) -> dict[str, Any]:
    return {"from": wa_id, "id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": body}}


def messages_payload(
    messages: list[dict[str, Any]], contacts: list[dict[str, Any]], spec: dict[str, str] = ACME
) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": spec["waba"],
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": spec["display"],
                                "phone_number_id": spec["pnid"],
                            },
                            "contacts": contacts,
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }


def stored_counts() -> dict[str, int]:
    """Everything a webhook could store, in the shared schema and in both tenants."""
    counts = {"webhook_events": WebhookEvent.objects.count()}
    for schema in ("acme", "globex"):
        with schema_context(schema):
            counts[f"{schema}.contacts"] = Contact.objects.count()
            counts[f"{schema}.messages"] = Message.objects.count()
            counts[f"{schema}.account_events"] = AccountEvent.objects.count()
            counts[f"{schema}.inbox_events"] = InboxEvent.objects.count()
    return counts


# ------------------------------------------------------------------ handshake


@pytest.mark.parametrize("verify_token", [ACME["verify"], GLOBEX["verify"]])
def test_handshake_echoes_the_challenge_for_a_registered_verify_token(db, verify_token):
    # given a registered verify token
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": verify_token}

    # when Meta verifies the endpoint
    response = public_client().get("/webhooks/whatsapp/", query)

    # then the challenge comes back verbatim
    assert response.status_code == 200
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "not-a-token"},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": ""},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.mode": "unsubscribe", "hub.challenge": "1158201444", "hub.verify_token": ACME["verify"]},
        {},
    ],
    ids=["wrong-token", "empty-token", "missing-token", "wrong-mode", "no-parameters"],
)
def test_handshake_is_refused_without_echo_for_a_wrong_or_missing_token(db, query):
    # when the handshake does not name a registered verify token
    response = public_client().get("/webhooks/whatsapp/", query)

    # then it is refused and neither the challenge nor any token leaks
    assert response.status_code == 403
    assert response.content == b"Verify token does not match."


# ------------------------------------------------------------------ signatures and bodies


def _acme_text(wa_id: str) -> dict[str, Any]:
    return retarget(payload("inbound_text.json"), wa_id=wa_id, text="Halo")


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha256=" + "0" * 64, "md5=abc", "sha256=" + "f" * 63],
    ids=["missing", "empty", "empty-digest", "wrong-digest", "wrong-scheme", "short-digest"],
)
def test_webhook_with_a_missing_or_wrong_signature_is_refused_and_nothing_is_stored(
    db, django_capture_on_commit_callbacks, signature
):
    # given a payload for acme's number
    wa_id = fresh_wa_id()
    before = stored_counts()

    # when it arrives without a valid signature
    if signature is None:
        response = deliver(django_capture_on_commit_callbacks, _acme_text(wa_id), secret=None)
    else:
        response = deliver(django_capture_on_commit_callbacks, _acme_text(wa_id), signature=signature)

    # then it is refused and nothing is stored
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Invalid or missing X-Hub-Signature-256.",
        "code": "invalid_signature",
    }
    assert stored_counts() == before


def test_webhook_signed_with_another_tenants_secret_is_refused_and_nothing_is_stored(
    db, django_capture_on_commit_callbacks
):
    # given a payload for acme's number, signed with globex's app secret
    wa_id = fresh_wa_id()
    before = stored_counts()

    # when it arrives
    response = deliver(django_capture_on_commit_callbacks, _acme_text(wa_id), secret=GLOBEX["secret"])

    # then it is refused and nothing is stored anywhere
    assert response.status_code == 403
    assert stored_counts() == before


def test_a_new_app_secret_is_checked_from_the_next_webhook_on(db, django_capture_on_commit_callbacks):
    # given acme's secret was used (and is kept by this process for a few seconds)
    assert deliver(django_capture_on_commit_callbacks, _acme_text(fresh_wa_id())).status_code == 200
    number = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    try:
        # when the admin replaces it
        number.app_secret = "a-rotated-app-secret"
        number.save()

        # then a webhook signed with the old one is refused at once, one with the new one is stored
        before = stored_counts()
        assert deliver(django_capture_on_commit_callbacks, _acme_text(fresh_wa_id())).status_code == 403
        assert stored_counts() == before
        fresh = _acme_text(fresh_wa_id())
        assert (
            deliver(django_capture_on_commit_callbacks, fresh, secret="a-rotated-app-secret").status_code
            == 200
        )
    finally:
        number.app_secret = ACME["secret"]
        number.save()


def test_webhook_signed_over_a_reserialized_body_is_refused_and_nothing_is_stored(
    db, django_capture_on_commit_callbacks
):
    # given a body in Meta's escaped-unicode form and a signature computed over a re-serialized copy of it
    p = retarget(payload("inbound_text.json"), wa_id=fresh_wa_id(), text="Terima kasih 🙏 — sampai jumpa")
    on_the_wire = json.dumps(p).encode()
    reserialized = json.dumps(p, ensure_ascii=False, separators=(",", ":")).encode()
    assert on_the_wire != reserialized
    before = stored_counts()

    # when the wire bytes arrive with the signature of the re-serialized body
    response = deliver(
        django_capture_on_commit_callbacks, on_the_wire, signature=sign(reserialized, ACME["secret"])
    )

    # then it is refused and nothing is stored
    assert response.status_code == 403
    assert stored_counts() == before


def test_webhook_signature_is_checked_over_the_raw_bytes_of_an_escaped_unicode_body(
    db, django_capture_on_commit_callbacks
):
    # given a body in Meta's escaped-unicode form, signed over exactly those bytes
    wa_id = fresh_wa_id()
    p = retarget(payload("inbound_text.json"), wa_id=wa_id, text="Terima kasih 🙏")
    body = json.dumps(p).encode()
    assert b"\\ud83d\\ude4f" in body

    # when it arrives
    response = deliver(django_capture_on_commit_callbacks, body)

    # then it is stored, byte for byte, and the text is decoded
    assert response.status_code == 200
    assert WebhookEvent.objects.order_by("-pk")[0].body == body.decode()
    with schema_context("acme"):
        assert Message.objects.get(conversation__contact__wa_id=wa_id).text == "Terima kasih 🙏"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"object": "whatsapp_business_account", "entry": [', "The body is not valid JSON."),
        (b"\xff\xfe not utf-8", "The body is not valid JSON."),
        (b"", "The body is not valid JSON."),
        (b'["a", "list"]', "The body must be a JSON object."),
    ],
    ids=["truncated", "not-utf8", "empty", "not-an-object"],
)
def test_malformed_json_with_a_valid_signature_is_refused_with_400_and_nothing_is_stored(
    db, django_capture_on_commit_callbacks, body, detail
):
    before = stored_counts()

    # when a correctly signed body is not a JSON object
    response = deliver(django_capture_on_commit_callbacks, body, secret=ACME["secret"])

    # then it is refused and nothing is stored
    assert response.status_code == 400
    assert response.json() == {
        "detail": detail,
        "code": "invalid_json" if "JSON." in detail and "object" not in detail else "invalid_shape",
    }
    assert stored_counts() == before


def test_webhook_for_an_unknown_phone_number_id_is_acknowledged_and_nothing_is_stored(
    db, django_capture_on_commit_callbacks
):
    # given a payload for a number nobody registered
    unknown = {"slug": "x", "waba": "999000000000001", "display": "15559999999", "pnid": "999000000000002"}
    p = retarget(payload("inbound_text.json"), spec=unknown, wa_id=fresh_wa_id())
    before = stored_counts()

    # when it arrives (signed with some secret: there is no number to check it against)
    response = deliver(django_capture_on_commit_callbacks, p, secret="whatever")

    # then Meta gets its 200 (no retries) and nothing is stored
    assert response.status_code == 200
    assert response.json() == {"detail": "No registered number; ignored."}
    assert stored_counts() == before


# ------------------------------------------------------------------ every inbound type

EXPECTED_INBOUND = {
    "inbound_audio_voice.json": ("audio", ""),
    "inbound_button_template_quick_reply.json": ("button", "Unsubscribe"),
    "inbound_contacts.json": ("contacts", "Chandler Bing"),
    "inbound_document.json": ("document", "Invoice"),
    "inbound_image.json": ("image", "Damaged box"),
    "inbound_interactive_button_reply.json": ("interactive", "Yes, solved"),
    "inbound_interactive_list_reply.json": ("interactive", "Billing"),
    "inbound_location.json": ("location", "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025"),
    "inbound_sticker.json": ("sticker", ""),
    "inbound_text.json": ("text", "Hi, my order #4521 has not arrived yet."),
    "inbound_text_reply_context.json": ("text", "Yes, that is the right address."),
    "inbound_unsupported.json": ("unsupported", ""),
    "inbound_video.json": ("video", "Unboxing"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_INBOUND))
def test_every_inbound_payload_file_is_stored_faithfully(db, django_capture_on_commit_callbacks, name):
    # given an example payload exactly as Meta sends it (it names acme's number)
    raw = (PAYLOADS / name).read_bytes()
    sent = json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]
    expected_type, expected_text = EXPECTED_INBOUND[name]

    # when it arrives, signed over its raw bytes
    response = deliver(django_capture_on_commit_callbacks, raw)

    # then the raw event is kept byte for byte and the message is stored with a readable text
    assert response.status_code == 200
    assert response.json() == {"detail": "Stored."}
    event = WebhookEvent.objects.order_by("-pk")[0]
    assert event.body == raw.decode()
    assert event.processed_at is not None
    with schema_context("acme"):
        stored = Message.objects.select_related("conversation__contact").get(wamid=sent["id"])
    assert {
        "direction": stored.direction,
        "type": stored.type,
        "text": stored.text,
        "content": stored.content,
        "status": stored.status,
        "created_at": stored.created_at,
        "reply_to_wamid": stored.reply_to_wamid,
        "sender_kind": stored.sender_kind,
        "sender_name": stored.sender_name,
        "contact": (stored.conversation.contact.wa_id, stored.conversation.contact.name),
    } == {
        "direction": "in",
        "type": expected_type,
        "text": expected_text,
        "content": sent,
        "status": "received",
        "created_at": at(int(sent["timestamp"])),
        "reply_to_wamid": sent.get("context", {}).get("id", ""),
        "sender_kind": "customer",
        "sender_name": "Sheena Nelson",
        "contact": ("16505551234", "Sheena Nelson"),
    }


def test_a_document_without_caption_reads_as_its_filename(db, django_capture_on_commit_callbacks):
    # given a document sent with no caption
    p = retarget(payload("inbound_document.json"), wa_id=fresh_wa_id())
    message = p["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["document"]["caption"]

    # when it arrives
    deliver(django_capture_on_commit_callbacks, p)

    # then the agent reads its filename
    with schema_context("acme"):
        assert Message.objects.get(wamid=message["id"]).text == "invoice-4521.pdf"


def test_a_location_without_name_reads_as_its_coordinates(db, django_capture_on_commit_callbacks):
    p = retarget(payload("inbound_location.json"), wa_id=fresh_wa_id())
    message = p["entry"][0]["changes"][0]["value"]["messages"][0]
    message["location"] = {"latitude": -6.2, "longitude": 106.816666}

    deliver(django_capture_on_commit_callbacks, p)

    with schema_context("acme"):
        assert Message.objects.get(wamid=message["id"]).text == "-6.2, 106.816666"


# ------------------------------------------------------------------ batches and redelivery


def test_a_batch_with_two_entries_several_messages_and_a_status_stores_everything(
    db, django_capture_on_commit_callbacks, acme_number, alice
):
    # given an outbound message acme sent to Rina earlier
    rina, budi = fresh_wa_id(), fresh_wa_id()
    now = int(time.time())
    with schema_context("acme"):
        first = actions.do_receive_inbound(
            acme_number, text_message(rina, "wamid.B0" + rina, now - 60, "earlier"), []
        )
        assert first is not None
        reply = actions.check_send_text_reply(first.conversation, alice, "We are on it")
        actions.do_mark_sent(reply.pk, "wamid.OUT" + rina)

    # and a batch: entry 1 with two messages from two people, entry 2 with a message and a delivery status
    batch = messages_payload(
        [
            text_message(rina, "wamid.B1" + rina, now - 3, "one"),
            text_message(budi, "wamid.B2" + budi, now - 2, "two"),
        ],
        [{"profile": {"name": "Rina"}, "wa_id": rina}, {"profile": {"name": "Budi"}, "wa_id": budi}],
    )
    second_entry = messages_payload(
        [text_message(rina, "wamid.B3" + rina, now - 1, "three")],
        [{"profile": {"name": "Rina"}, "wa_id": rina}],
    )["entry"][0]
    second_entry["changes"][0]["value"]["statuses"] = [
        {"id": "wamid.OUT" + rina, "status": "delivered", "timestamp": str(now), "recipient_id": rina}
    ]
    batch["entry"].append(second_entry)

    # when the batch arrives
    response = deliver(django_capture_on_commit_callbacks, batch)

    # then every message is stored in its conversation and the status is applied
    assert response.status_code == 200
    with schema_context("acme"):
        stored = {
            (m.wamid, m.conversation.contact.wa_id, m.text, m.created_at)
            for m in Message.objects.filter(direction="in", conversation__contact__wa_id__in=[rina, budi])
        }
        reply.refresh_from_db()
        rina_conversation = Conversation.objects.get(contact__wa_id=rina)
        budi_conversation = Conversation.objects.get(contact__wa_id=budi)
    assert stored == {
        ("wamid.B0" + rina, rina, "earlier", at(now - 60)),
        ("wamid.B1" + rina, rina, "one", at(now - 3)),
        ("wamid.B2" + budi, budi, "two", at(now - 2)),
        ("wamid.B3" + rina, rina, "three", at(now - 1)),
    }
    assert (reply.status, reply.delivered_at) == ("delivered", at(now))
    assert (rina_conversation.unread_count, rina_conversation.last_inbound_at) == (2, at(now - 1))
    assert (budi_conversation.unread_count, budi_conversation.last_inbound_at) == (1, at(now - 2))


def test_redelivery_of_the_same_wamid_stores_one_message(db, django_capture_on_commit_callbacks):
    # given a message that was delivered once
    wa_id = fresh_wa_id()
    p = retarget(payload("inbound_text.json"), wa_id=wa_id, text="only once")
    deliver(django_capture_on_commit_callbacks, p)
    with schema_context("acme"):
        events_before = InboxEvent.objects.count()

    # when Meta delivers the same webhook twice more
    first_retry = deliver(django_capture_on_commit_callbacks, p)
    second_retry = deliver(django_capture_on_commit_callbacks, p)

    # then both are acknowledged, and there is still one message, counted unread once, with no new event
    assert (first_retry.status_code, second_retry.status_code) == (200, 200)
    with schema_context("acme"):
        assert list(
            Message.objects.filter(conversation__contact__wa_id=wa_id).values_list("text", flat=True)
        ) == ["only once"]
        assert Conversation.objects.get(contact__wa_id=wa_id).unread_count == 1
        assert InboxEvent.objects.count() == events_before


def test_the_same_wamid_twice_inside_one_batch_stores_one_message(db, django_capture_on_commit_callbacks):
    # given a batch that carries the same message twice
    wa_id = fresh_wa_id()
    message = text_message(wa_id, "wamid.DUP" + wa_id, int(time.time()), "twice in a batch")
    p = messages_payload([message, dict(message)], [{"profile": {"name": "Dewi"}, "wa_id": wa_id}])
    with schema_context("acme"):
        events_before = InboxEvent.objects.count()

    # when it arrives
    deliver(django_capture_on_commit_callbacks, p)

    # then one message is stored and one event recorded
    with schema_context("acme"):
        assert Message.objects.filter(conversation__contact__wa_id=wa_id).count() == 1
        assert Conversation.objects.get(contact__wa_id=wa_id).unread_count == 1
        assert InboxEvent.objects.count() == events_before + 1


# ------------------------------------------------------------------ the 24-hour window


def test_each_inbound_opens_or_extends_the_window_and_a_late_older_one_does_not_shorten_it(
    db, django_capture_on_commit_callbacks
):
    wa_id = fresh_wa_id()
    now = int(time.time())
    contacts = [{"profile": {"name": "Sari"}, "wa_id": wa_id}]

    def window() -> tuple[Any, ...]:
        with schema_context("acme"):
            c = Conversation.objects.get(contact__wa_id=wa_id)
            return c.last_inbound_at, c.window_expires_at, c.last_message_at, c.last_message_preview

    # when a first message arrives, it opens the window for 24 h after its WhatsApp timestamp
    deliver(
        django_capture_on_commit_callbacks,
        messages_payload([text_message(wa_id, "wamid.W1" + wa_id, now - 7200, "first")], contacts),
    )
    assert window() == (at(now - 7200), at(now - 7200) + timedelta(hours=24), at(now - 7200), "first")

    # when a later message arrives, it extends the window
    deliver(
        django_capture_on_commit_callbacks,
        messages_payload([text_message(wa_id, "wamid.W2" + wa_id, now - 3600, "second")], contacts),
    )
    assert window() == (at(now - 3600), at(now - 3600) + timedelta(hours=24), at(now - 3600), "second")

    # when an older message arrives late, the window and the latest message stay as they were
    deliver(
        django_capture_on_commit_callbacks,
        messages_payload([text_message(wa_id, "wamid.W0" + wa_id, now - 10800, "zeroth")], contacts),
    )
    assert window() == (at(now - 3600), at(now - 3600) + timedelta(hours=24), at(now - 3600), "second")
    with schema_context("acme"):
        assert Message.objects.get(wamid="wamid.W0" + wa_id).created_at == at(now - 10800)


def test_an_inbound_message_older_than_a_day_leaves_the_window_closed(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    ts = int(time.time()) - 25 * 3600
    deliver(django_capture_on_commit_callbacks, retarget(payload("inbound_text.json"), wa_id=wa_id, ts=ts))

    with schema_context("acme"):
        conversation = Conversation.objects.get(contact__wa_id=wa_id)
    assert conversation.window_expires_at == at(ts) + timedelta(hours=24)
    assert conversation.window_is_open() is False


# ------------------------------------------------------------------ account-level events

ACCOUNT_FILES = sorted(
    p.name
    for pattern in (
        "template_status_update*.json",
        "template_category_update*.json",
        "template_quality_update*.json",
        "phone_number_quality_update*.json",
        "account_update_*.json",
        "business_capability_update*.json",
    )
    for p in PAYLOADS.glob(pattern)
)


def test_account_level_payload_files_are_all_covered():
    assert ACCOUNT_FILES == [
        "account_update_disabled.json",
        "account_update_violation.json",
        "business_capability_update.json",
        "phone_number_quality_update.json",
        "template_category_update.json",
        "template_quality_update.json",
        "template_status_update.json",
        "template_status_update_paused.json",
        "template_status_update_rejected.json",
    ]


@pytest.mark.parametrize("name", ACCOUNT_FILES)
def test_account_level_event_is_routed_by_waba_id_to_its_tenant_only(
    db, django_capture_on_commit_callbacks, name
):
    # given an account-level webhook for acme's WABA (entry[].id), with no phone number in it
    raw = (PAYLOADS / name).read_bytes()
    entry = json.loads(raw)["entry"][0]
    change = entry["changes"][0]
    assert entry["id"] == ACME["waba"]
    before = stored_counts()

    # when it arrives signed with acme's app secret
    response = deliver(django_capture_on_commit_callbacks, raw)

    # then it is stored as one account event in acme, and nowhere else; no message is made of it. An event
    # naming the number's display number is the number's; the others are the account's.
    assert response.status_code == 200
    named = change["value"].get("display_phone_number") == ACME["display"]
    acme_number = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    with schema_context("acme"):
        stored = AccountEvent.objects.order_by("-pk")[0]
        assert (
            stored.number_id,
            stored.waba_id,
            stored.field,
            stored.event,
            stored.value,
            stored.occurred_at,
        ) == (
            acme_number.pk if named else None,
            ACME["waba"],
            change["field"],
            change["value"].get("event", ""),
            change["value"],
            at(entry["time"]),
        )
    # a violation or a disabled account raises an alert, and a template's change is shown on the templates
    # page: each is pushed live (one inbox event)
    alerts = 1 if change["value"].get("event") in ("ACCOUNT_VIOLATION", "DISABLED_UPDATE") else 0
    alerts += 1 if "template" in change["field"] else 0
    assert stored_counts() == {
        **before,
        "webhook_events": before["webhook_events"] + 1,
        "acme.account_events": before["acme.account_events"] + 1,
        "acme.inbox_events": before["acme.inbox_events"] + alerts,
    }


def test_account_level_event_for_globex_waba_goes_to_globex_only(db, django_capture_on_commit_callbacks):
    # given a template status update for globex's WABA
    p = retarget(payload("template_status_update.json"), spec=GLOBEX)
    before = stored_counts()

    # when it arrives signed with globex's secret
    response = deliver(django_capture_on_commit_callbacks, p, secret=GLOBEX["secret"])

    # then globex has it and acme does not
    assert response.status_code == 200
    with schema_context("globex"):
        stored = AccountEvent.objects.order_by("-pk")[0]
    assert (stored.waba_id, stored.field, stored.event, stored.value) == (
        GLOBEX["waba"],
        "message_template_status_update",
        "APPROVED",
        p["entry"][0]["changes"][0]["value"],
    )
    assert stored_counts() == {
        **before,
        "webhook_events": before["webhook_events"] + 1,
        "globex.account_events": before["globex.account_events"] + 1,
        "globex.inbox_events": before["globex.inbox_events"] + 1,  # the templates page follows it live
    }


def test_account_level_event_for_globex_waba_signed_with_acmes_secret_is_refused(
    db, django_capture_on_commit_callbacks
):
    p = retarget(payload("account_update_disabled.json"), spec=GLOBEX)
    before = stored_counts()

    response = deliver(django_capture_on_commit_callbacks, p, secret=ACME["secret"])

    assert response.status_code == 403
    assert stored_counts() == before


def test_value_errors_are_stored_as_an_account_event_of_the_number(
    db, django_capture_on_commit_callbacks, acme_number
):
    # given a system-level error webhook (value.errors, no message) for acme's number
    raw = (PAYLOADS / "webhook_value_errors_130429.json").read_bytes()
    value = json.loads(raw)["entry"][0]["changes"][0]["value"]
    before = stored_counts()
    received_from = timezone.now()

    # when it arrives
    response = deliver(django_capture_on_commit_callbacks, raw)

    # then it is kept as an account event of that number, with the error as sent
    assert response.status_code == 200
    with schema_context("acme"):
        stored = AccountEvent.objects.order_by("-pk")[0]
    assert (stored.number_id, stored.waba_id, stored.field, stored.event, stored.value) == (
        acme_number.pk,
        ACME["waba"],
        "messages.errors",
        "",
        value,
    )
    assert stored.value["errors"][0]["code"] == 130429
    assert received_from <= stored.occurred_at <= timezone.now()
    assert stored_counts() == {
        **before,
        "webhook_events": before["webhook_events"] + 1,
        "acme.account_events": before["acme.account_events"] + 1,
    }


def test_user_preferences_are_stored_as_an_account_event_of_the_number(
    db, django_capture_on_commit_callbacks, acme_number
):
    raw = (PAYLOADS / "user_preferences_marketing_stop.json").read_bytes()
    value = json.loads(raw)["entry"][0]["changes"][0]["value"]
    before = stored_counts()

    response = deliver(django_capture_on_commit_callbacks, raw)

    assert response.status_code == 200
    with schema_context("acme"):
        stored = AccountEvent.objects.order_by("-pk")[0]
    assert (stored.number_id, stored.field, stored.value) == (acme_number.pk, "user_preferences", value)
    assert stored_counts()["acme.messages"] == before["acme.messages"]


def test_an_account_change_for_another_tenants_waba_cannot_ride_along_with_a_signed_message(
    db, django_capture_on_commit_callbacks
):
    # given one entry that names globex's WABA and carries acme's message plus an account-level change
    p = retarget(payload("inbound_text.json"), wa_id=fresh_wa_id())
    entry = p["entry"][0]
    entry["id"] = GLOBEX["waba"]
    entry["time"] = int(time.time())
    entry["changes"].append(payload("account_update_disabled.json")["entry"][0]["changes"][0])
    before = stored_counts()

    # when it arrives signed only with acme's app secret
    response = deliver(django_capture_on_commit_callbacks, p)

    # then it is refused: globex's secret did not sign it, and nothing is stored in either tenant
    assert response.status_code == 403
    assert stored_counts() == before


def test_an_entry_with_a_message_and_an_account_change_of_the_same_tenant_is_stored(
    db, django_capture_on_commit_callbacks
):
    # given one entry of acme's WABA with a message and an account-level change
    wa_id = fresh_wa_id()
    p = retarget(payload("inbound_text.json"), wa_id=wa_id, text="both")
    p["entry"][0]["time"] = 1743451903
    p["entry"][0]["changes"].append(payload("account_update_violation.json")["entry"][0]["changes"][0])
    before = stored_counts()

    # when it arrives signed with acme's secret
    response = deliver(django_capture_on_commit_callbacks, p)

    # then both are stored in acme
    assert response.status_code == 200
    with schema_context("acme"):
        assert Message.objects.get(conversation__contact__wa_id=wa_id).text == "both"
        stored = AccountEvent.objects.order_by("-pk")[0]
    assert (stored.field, stored.event, stored.occurred_at) == (
        "account_update",
        "ACCOUNT_VIOLATION",
        at(1743451903),
    )
    assert stored_counts() == {
        **before,
        "webhook_events": before["webhook_events"] + 1,
        "acme.contacts": before["acme.contacts"] + 1,
        "acme.messages": before["acme.messages"] + 1,
        "acme.inbox_events": before["acme.inbox_events"] + 2,  # the message, and the violation's alert
        "acme.account_events": before["acme.account_events"] + 1,
    }
