"""Every shape the Cloud API sends (REFERENCE.md 2.5-2.7), handled as an agent expects: edits, deletions,
reactions and system notices are not new customer messages; echoes from the phone app are our replies;
history is shown but never counted; Flows replies are readable; BSUID-only customers are reachable; marketing
preferences are kept on the contact."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import responses
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import Contact, Conversation, InboxEvent, Message
from tests.conftest import ACME, GRAPH_URL, api_token, fresh_wa_id, post_webhook, tenant_client
from tickets.models import DailyVolume, ReportingEvent, Ticket

NOW = int(time.time())


def deliver(capture: Any, field: str, value: dict[str, Any]) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": ACME["waba"],
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": ACME["display"],
                                "phone_number_id": ACME["pnid"],
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }
    with capture(execute=True):
        assert post_webhook(body).status_code == 200


def wamid() -> str:
    return "wamid.T" + secrets.token_hex(12)


def text(wa_id: str, body: str, ts: int = NOW, id: str | None = None) -> dict[str, Any]:
    return {"from": wa_id, "id": id or wamid(), "timestamp": str(ts), "type": "text", "text": {"body": body}}


def customer_writes(capture: Any, wa_id: str, *messages: dict[str, Any]) -> None:
    deliver(
        capture,
        "messages",
        {"contacts": [{"profile": {"name": "Rina"}, "wa_id": wa_id}], "messages": list(messages)},
    )


def thread(wa_id: str) -> list[Message]:
    with schema_context("acme"):
        return list(Message.objects.filter(conversation__contact__wa_id=wa_id).order_by("created_at", "pk"))


def conversation_of(wa_id: str) -> Conversation:
    with schema_context("acme"):
        return Conversation.objects.select_related("current_ticket").get(contact__wa_id=wa_id)


def shown_reactions(wa_id: str) -> dict[str, str]:
    """The reactions of the customer's first message, as the API shows them."""
    from conversations.serializers import message_data

    with schema_context("acme"):
        return dict(message_data(thread(wa_id)[0])["reactions"])


def last_event() -> InboxEvent:
    with schema_context("acme"):
        return InboxEvent.objects.order_by("-pk")[0]


# ------------------------------------------------------------------ edits and deletions


def test_an_edit_updates_the_original_message_and_is_not_a_new_one(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    original = text(wa_id, "pesanan #12 belum sampai")
    customer_writes(django_capture_on_commit_callbacks, wa_id, original)
    before = conversation_of(wa_id)

    edit = {
        "from": wa_id,
        "id": wamid(),
        "timestamp": str(NOW + 60),
        "type": "edit",
        "edit": {
            "original_message_id": original["id"],
            "message": {"type": "text", "text": {"body": "pesanan #21 belum sampai"}},
        },
    }
    customer_writes(django_capture_on_commit_callbacks, wa_id, edit)

    [message] = thread(wa_id)
    assert (message.text, message.original_text) == ("pesanan #21 belum sampai", "pesanan #12 belum sampai")
    assert conversation_of(wa_id).last_message_preview == "pesanan #21 belum sampai"
    assert message.edited_at is not None
    after = conversation_of(wa_id)
    assert (after.unread_count, after.current_ticket_id) == (before.unread_count, before.current_ticket_id)
    event = last_event()
    assert (
        event.type,
        event.payload["message"]["text"],
        event.payload["message"]["edited_at"] is not None,
    ) == (
        "message.updated",
        "pesanan #21 belum sampai",
        True,
    )

    # a redelivery of the edit changes nothing
    with schema_context("acme"):
        count = InboxEvent.objects.count()
    customer_writes(django_capture_on_commit_callbacks, wa_id, edit)
    with schema_context("acme"):
        assert InboxEvent.objects.count() == count


def test_an_edit_of_a_caption_and_an_edit_that_overtakes_its_message(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    photo = {
        "from": wa_id,
        "id": wamid(),
        "timestamp": str(NOW),
        "type": "image",
        "image": {"id": "9", "mime_type": "image/jpeg", "caption": "rusak"},
    }
    edit = {
        "from": wa_id,
        "id": wamid(),
        "timestamp": str(NOW + 5),
        "type": "edit",
        "edit": {
            "original_message_id": photo["id"],
            "message": {"type": "image", "image": {"caption": "kotak rusak"}},
        },
    }
    # the edit arrives first: kept until its message comes
    customer_writes(django_capture_on_commit_callbacks, wa_id, text(wa_id, "halo"))
    customer_writes(django_capture_on_commit_callbacks, wa_id, edit)
    customer_writes(django_capture_on_commit_callbacks, wa_id, photo)

    [image] = [m for m in thread(wa_id) if m.type == "image"]
    assert (image.text, image.content["image"]["caption"], image.content["image"]["id"]) == (
        "kotak rusak",
        "kotak rusak",
        "9",
    )


def test_a_deleted_message_shows_as_deleted_and_keeps_its_text_for_the_audit(
    db, django_capture_on_commit_callbacks, alice
):
    wa_id = fresh_wa_id()
    original = text(wa_id, "nomor kartu saya 4111")
    customer_writes(django_capture_on_commit_callbacks, wa_id, original)
    revoke = {
        "from": wa_id,
        "id": wamid(),
        "timestamp": str(NOW + 30),
        "type": "revoke",
        "revoke": {"original_message_id": original["id"]},
    }
    customer_writes(django_capture_on_commit_callbacks, wa_id, revoke)

    [message] = thread(wa_id)
    assert message.deleted_at is not None and message.text == "nomor kartu saya 4111"  # noqa: PT018
    listed = (
        tenant_client(ACME, api_token("alice@acme.test"))
        .get(f"/api/v1/conversations/{message.conversation_id}/messages/")
        .json()["results"]
    )
    assert [(m["deleted"], m["text"], m["content"]) for m in listed] == [(True, "", {})]
    assert "4111" not in json.dumps(last_event().payload)
    assert conversation_of(wa_id).last_message_preview == ""  # nor in the conversation list


# ------------------------------------------------------------------ reactions and notices


def test_a_reaction_attaches_to_its_message_without_counting_as_a_customer_message(
    db, django_capture_on_commit_callbacks
):
    wa_id = fresh_wa_id()
    original = text(wa_id, "terima kasih")
    customer_writes(django_capture_on_commit_callbacks, wa_id, original)
    with schema_context("acme"):
        conversation = Conversation.objects.get(contact__wa_id=wa_id)
        Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
        Ticket.objects.filter(pk=conversation.current_ticket_id).update(status="resolved", waiting_since=None)
        counted = DailyVolume.objects.values_list("messages_in", flat=True)
        counted_before = sum(counted)

    def react(emoji: str, ts: int) -> None:
        customer_writes(
            django_capture_on_commit_callbacks,
            wa_id,
            {
                "from": wa_id,
                "id": wamid(),
                "timestamp": str(ts),
                "type": "reaction",
                "reaction": {"message_id": original["id"], "emoji": emoji},
            },
        )

    react("❤️", NOW + 10)
    [message] = thread(wa_id)
    assert message.reactions["customer"]["emoji"] == "❤️"
    after = conversation_of(wa_id)
    assert after.unread_count == 0
    with schema_context("acme"):
        ticket = Ticket.objects.get(pk=after.current_ticket_id)
        assert (ticket.status, ticket.waiting_since) == ("resolved", None)
        assert Ticket.objects.filter(conversation=after).count() == 1
        assert sum(DailyVolume.objects.values_list("messages_in", flat=True)) == counted_before

    react("", NOW + 20)  # removed
    assert shown_reactions(wa_id) == {}
    react("👍", NOW + 15)  # an older reaction arriving late does not come back
    assert shown_reactions(wa_id) == {}
    react("😮", NOW + 25)
    assert shown_reactions(wa_id) == {"customer": "😮"}


def test_a_reaction_to_our_reply_and_a_system_notice(db, django_capture_on_commit_callbacks, alice):
    wa_id = fresh_wa_id()
    customer_writes(django_capture_on_commit_callbacks, wa_id, text(wa_id, "halo"))
    with schema_context("acme"):
        conversation = Conversation.objects.get(contact__wa_id=wa_id)
        reply = actions.do_queue_outbound(
            conversation,
            type="text",
            text="siap",
            content={"body": "siap"},
            sender_kind="agent",
            sender=alice,
        )
    out = "wamid.OUT" + secrets.token_hex(8)
    with schema_context("acme"):
        actions.do_mark_sent(reply.pk, out)
    customer_writes(
        django_capture_on_commit_callbacks,
        wa_id,
        {
            "from": wa_id,
            "id": wamid(),
            "timestamp": str(NOW + 5),
            "type": "reaction",
            "reaction": {"message_id": out, "emoji": "🙏"},
        },
        {
            "from": wa_id,
            "id": wamid(),
            "timestamp": str(NOW + 6),
            "type": "system",
            "system": {"body": "User changed number", "type": "user_changed_number", "wa_id": wa_id + "9"},
        },
    )
    with schema_context("acme"):
        assert Message.objects.get(pk=reply.pk).reactions["customer"]["emoji"] == "🙏"
        notice = Message.objects.get(conversation=conversation, type="system")
        assert (notice.sender_kind, notice.text) == ("system", "User changed number")
        refreshed = Conversation.objects.get(pk=conversation.pk)
        assert (
            refreshed.unread_count == 0
        )  # the agent's reply read it; neither the reaction nor the notice count
        assert Contact.objects.get(pk=conversation.contact_id).wa_id == wa_id + "9"


# ------------------------------------------------------------------ coexistence: echoes and history


def test_an_echo_from_the_phone_app_is_our_reply_and_ends_the_wait(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    customer_writes(django_capture_on_commit_callbacks, wa_id, text(wa_id, "ada stok?", ts=NOW - 120))
    echo_id = wamid()
    with responses.RequestsMock() as graph:  # nothing may be sent: the phone already sent it
        deliver(
            django_capture_on_commit_callbacks,
            "smb_message_echoes",
            {
                "message_echoes": [
                    {
                        "from": ACME["display"],
                        "to": wa_id,
                        "id": echo_id,
                        "timestamp": str(NOW),
                        "type": "text",
                        "text": {"body": "ada kak"},
                    }
                ]
            },
        )
        assert [call.request.url for call in graph.calls] == []
    messages = thread(wa_id)
    echo = messages[-1]
    assert (echo.direction, echo.sender_kind, echo.status, echo.wamid, echo.text) == (
        "out",
        "phone_app",
        "sent",
        echo_id,
        "ada kak",
    )
    conversation = conversation_of(wa_id)
    with schema_context("acme"):
        ticket = Ticket.objects.get(pk=conversation.current_ticket_id)
        assert ticket.waiting_since is None
        assert ReportingEvent.objects.filter(ticket=ticket, name="first_response", value_seconds=120).exists()


def test_history_is_imported_once_without_tickets_unread_or_counts(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    old = NOW - 3 * 86400
    messages = [
        {
            "from": wa_id,
            "id": wamid(),
            "timestamp": str(old),
            "type": "text",
            "text": {"body": "kemarin pesan"},
            "history_context": {"status": "READ"},
        },
        {
            "from": ACME["display"],
            "id": wamid(),
            "timestamp": str(old + 60),
            "type": "text",
            "text": {"body": "siap kak"},
            "history_context": {"status": "READ"},
        },
        {
            "from": wa_id,
            "id": wamid(),
            "timestamp": str(old + 120),
            "type": "media_placeholder",
            "history_context": {"status": "DELIVERED"},
        },
    ]
    value = {
        "history": [
            {
                "metadata": {"phase": 0, "chunk_order": 1, "progress": 100},
                "threads": [{"id": wa_id, "messages": messages}],
            }
        ]
    }
    with schema_context("acme"):
        counted = sum(DailyVolume.objects.values_list("messages_in", flat=True))
    deliver(django_capture_on_commit_callbacks, "history", value)
    deliver(django_capture_on_commit_callbacks, "history", value)  # chunks may repeat

    stored = thread(wa_id)
    assert [(m.direction, m.text, m.is_history, m.status) for m in stored] == [
        ("in", "kemarin pesan", True, "received"),
        ("out", "siap kak", True, "read"),
        ("in", "", True, "received"),
    ]
    conversation = conversation_of(wa_id)
    assert (conversation.unread_count, conversation.current_ticket_id) == (0, None)
    with schema_context("acme"):
        assert sum(DailyVolume.objects.values_list("messages_in", flat=True)) == counted


# ------------------------------------------------------------------ Flows, BSUIDs, preferences


def test_a_flows_reply_reads_as_its_submitted_fields(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    flow = {
        "from": wa_id,
        "id": wamid(),
        "timestamp": str(NOW),
        "type": "interactive",
        "interactive": {
            "type": "nfm_reply",
            "nfm_reply": {
                "name": "flow",
                "body": "Sent",
                "response_json": json.dumps({"flow_token": "t-1", "city": "Bandung", "size": "L"}),
            },
        },
    }
    customer_writes(django_capture_on_commit_callbacks, wa_id, flow)
    assert thread(wa_id)[0].text == "Sent\ncity: Bandung\nsize: L"


def test_a_customer_known_only_by_bsuid_is_stored_and_replies_go_to_the_bsuid(
    db, django_capture_on_commit_callbacks, alice, settings
):
    bsuid = "ID.ENT." + secrets.token_hex(10)
    message = {
        "id": wamid(),
        "timestamp": str(NOW),
        "type": "text",
        "text": {"body": "halo dari username"},
        "from_user_id": bsuid,
    }
    deliver(
        django_capture_on_commit_callbacks,
        "messages",
        {
            "contacts": [{"profile": {"name": "Budi", "username": "budi.s"}, "user_id": bsuid}],
            "messages": [message],
        },
    )
    # also one with neither `from` nor `from_user_id`: the change's only contact is the sender
    second = {"id": wamid(), "timestamp": str(NOW + 1), "type": "text", "text": {"body": "kedua"}}
    deliver(
        django_capture_on_commit_callbacks,
        "messages",
        {"contacts": [{"profile": {"name": "Budi"}, "user_id": bsuid}], "messages": [second]},
    )
    with schema_context("acme"):
        contact = Contact.objects.get(user_id=bsuid)
        assert (contact.wa_id, contact.username) == ("", "budi.s")
        conversation = Conversation.objects.get(contact=contact)
        assert sorted(Message.objects.filter(conversation=conversation).values_list("text", flat=True)) == [
            "halo dari username",
            "kedua",
        ]

    settings.WHATSAPP_GRAPH_URL = GRAPH_URL
    with responses.RequestsMock() as graph:
        graph.post(f"{GRAPH_URL}/{ACME['pnid']}/messages", json={"messages": [{"id": wamid()}]})
        with django_capture_on_commit_callbacks(execute=True), schema_context("acme"):
            actions.check_send_text_reply(conversation, alice, "siap")
        body = json.loads(graph.calls[0].request.body)
    assert (body.get("recipient"), "to" in body) == (bsuid, False)


@pytest.mark.parametrize("known", [True, False], ids=["known-contact", "new-contact"])
def test_a_marketing_preference_is_kept_on_the_contact_with_its_time(
    db, django_capture_on_commit_callbacks, known
):
    wa_id = fresh_wa_id()
    if known:
        customer_writes(django_capture_on_commit_callbacks, wa_id, text(wa_id, "halo"))

    def preference(value: str, ts: int) -> None:
        deliver(
            django_capture_on_commit_callbacks,
            "user_preferences",
            {
                "user_preferences": [
                    {
                        "wa_id": wa_id,
                        "detail": "...",
                        "category": "marketing_messages",
                        "value": value,
                        "timestamp": ts,
                    }
                ]
            },
        )

    preference("stop", NOW)
    preference("resume", NOW - 100)  # older: arrives late, changes nothing
    with schema_context("acme"):
        contact = Contact.objects.get(wa_id=wa_id)
        assert (contact.marketing, int(contact.marketing_changed_at.timestamp())) == ("stop", NOW)
    if known:
        token = api_token("alice@acme.test")
        listed = tenant_client(ACME, token).get("/api/v1/conversations/").json()["results"]
        [mine] = [c for c in listed if c["contact"]["wa_id"] == wa_id]
        assert mine["contact"]["marketing"] == "stop"
    preference("resume", NOW + 100)
    with schema_context("acme"):
        assert Contact.objects.get(wa_id=wa_id).marketing == "resume"
