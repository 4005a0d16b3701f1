"""The serializers write their dicts by hand (conversations/serializers.py): for every field, exactly what DRF's own
field loop writes for the declared fields, on conversations, contacts, tickets and messages in every state the
inbox shows (no ticket, assigned, opted out, marketing preference, deleted, edited, failed, reacted, history)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework import serializers

from conversations import actions
from conversations.models import Contact, Conversation, Message
from conversations.serializers import ContactSerializer, ConversationSerializer, MessageSerializer
from tests.conftest import fresh_wa_id, receive_text
from tickets.models import Ticket

NOW = int(time.time())


def drf_fields(serializer: serializers.Serializer[Any], instance: Any) -> dict[str, Any]:
    """What DRF's Serializer.to_representation writes for `instance`: each readable field's value, None as None,
    nested serializers the same way."""
    out: dict[str, Any] = {}
    for field in serializer._readable_fields:
        attribute = field.get_attribute(instance)
        if attribute is None:
            out[field.field_name] = None
        elif isinstance(field, serializers.Serializer):
            out[field.field_name] = drf_fields(field, attribute)
        else:
            out[field.field_name] = field.to_representation(attribute)
    return out


def drf_message(message: Message) -> dict[str, Any]:
    data = drf_fields(MessageSerializer(), message)
    if message.deleted_at is not None:  # agents see only that it was deleted
        data["text"], data["content"] = "", {}
    return data


@pytest.fixture
def varied(db: None, acme_number: Any, alice: Any) -> dict[str, list[int]]:
    """Conversations and messages in the states the inbox shows."""
    received = [receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i) for i in range(4)]
    conversations = [m.conversation_id for m in received]
    at = datetime(2026, 3, 29, 0, 30, 15, 123456, tzinfo=UTC)
    with schema_context("acme"):
        Ticket.objects.filter(conversation_id=conversations[0]).update(
            assignee=alice, awaiting_first_response=False
        )
        Conversation.objects.filter(pk=conversations[1]).update(current_ticket=None, last_message_at=None)
        Contact.objects.filter(conversation__pk=conversations[2]).update(
            opted_in_at=at, opted_out_at=at + timedelta(days=1), marketing="stop", marketing_changed_at=at
        )
        actions.do_set_conversation_status(Conversation.objects.get(pk=conversations[3]), "resolved")
        reply = actions.check_send_text_reply(Conversation.objects.get(pk=conversations[0]), alice, "Halo!")
        Message.objects.filter(pk=received[0].pk).update(
            reactions={"customer": {"emoji": "👍"}, "business": {"emoji": ""}, "odd": "x"}, edited_at=at
        )
        Message.objects.filter(pk=received[1].pk).update(deleted_at=at, content={"body": "secret"})
        Message.objects.filter(pk=reply.pk).update(
            status="failed", failed_at=at, error_code=131047, error_title="Re-engagement", error_details="24h"
        )
        Message.objects.filter(pk=received[2].pk).update(is_history=True, wamid=None)
    return {"conversations": conversations, "messages": [*(m.pk for m in received), reply.pk]}


def test_conversations_are_written_as_drf_writes_them(varied):
    with schema_context("acme"):
        conversations = list(
            Conversation.objects.select_related("contact", "number", "current_ticket").filter(
                pk__in=varied["conversations"]
            )
        )

    assert len(conversations) == 4
    for conversation in conversations:
        assert ConversationSerializer(conversation).data == drf_fields(ConversationSerializer(), conversation)
        assert ContactSerializer(conversation.contact).data == drf_fields(
            ContactSerializer(), conversation.contact
        )


def test_messages_are_written_as_drf_writes_them(varied):
    with schema_context("acme"):
        messages = list(Message.objects.filter(pk__in=varied["messages"]))

    assert len(messages) == 5
    for message in messages:
        assert MessageSerializer(message).data == drf_message(message)
    deleted = next(m for m in messages if m.deleted_at is not None)
    assert (MessageSerializer(deleted).data["text"], MessageSerializer(deleted).data["content"]) == ("", {})


def test_times_follow_the_current_time_zone_as_in_drf(varied):
    with schema_context("acme"), timezone.override(ZoneInfo("Asia/Jakarta")):
        conversation = Conversation.objects.select_related("contact", "number", "current_ticket").get(
            pk=varied["conversations"][2]
        )
        written = ConversationSerializer(conversation).data

        assert written == drf_fields(ConversationSerializer(), conversation)
        assert written["contact"]["opted_in_at"] == "2026-03-29T07:30:15.123456+07:00"


def test_the_api_lists_write_what_the_serializers_write(varied, alice):
    from tests.conftest import ACME, issue_token, tenant_client

    api = tenant_client(ACME, issue_token(alice))
    with schema_context("acme"):
        conversations = {
            c.pk: drf_fields(ConversationSerializer(), c)
            for c in Conversation.objects.select_related("contact", "number", "current_ticket")
        }
        conversation_id = varied["conversations"][0]
        messages = [
            drf_message(m) for m in Message.objects.filter(conversation_id=conversation_id).order_by("pk")
        ]

    listed = api.get("/api/v1/conversations/?page_size=100").json()["results"]
    thread = api.get(f"/api/v1/conversations/{conversation_id}/messages/").json()["results"]

    assert [conversations[c["id"]] for c in listed] == listed
    assert {c["id"] for c in listed} >= set(varied["conversations"])
    assert thread == messages
