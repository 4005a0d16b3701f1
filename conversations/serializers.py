"""The API shape of conversations and messages; websocket frames carry exactly the same shape.

The fields are declared the DRF way (the OpenAPI schema and the field list come from them), but the serializers
that lists render by the page write their dicts by hand: DRF's generic field loop (a field object, attribute
lookup and time zone conversion per value) cost more than the query of the page itself. Each hand-written
`to_representation` gives exactly what DRF's loop gives for the declared fields (tests/test_api_serializers.py
compares them on every field); a field added to `Meta.fields` must be added there too.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from conversations.models import Contact, Conversation, Message, Note


def moment(value: datetime | None, zone: tzinfo) -> str | None:
    """A time as DRF's DateTimeField writes it (ISO 8601 in the current time zone, UTC as `Z`); None for none."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _text(value: Any) -> str | None:
    """A CharField or ChoiceField value as DRF writes it (a choice as its plain value)."""
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


class ContactSerializer(serializers.ModelSerializer[Contact]):
    class Meta:
        model = Contact
        fields = [
            "id",
            "wa_id",
            "user_id",
            "username",
            "name",
            "opted_in_at",
            "opted_out_at",
            "marketing",
            "marketing_changed_at",
        ]

    def to_representation(self, instance: Contact) -> dict[str, Any]:
        return contact_representation(instance, timezone.get_current_timezone())


def contact_representation(contact: Contact, zone: tzinfo) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "wa_id": _text(contact.wa_id),
        "user_id": _text(contact.user_id),
        "username": _text(contact.username),
        "name": _text(contact.name),
        "opted_in_at": moment(contact.opted_in_at, zone),
        "opted_out_at": moment(contact.opted_out_at, zone),
        "marketing": _text(contact.marketing),
        "marketing_changed_at": moment(contact.marketing_changed_at, zone),
    }


class TicketSummarySerializer(serializers.Serializer[Any]):
    """The conversation's current ticket, as the inbox list shows it."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    priority = serializers.CharField()
    assignee_id = serializers.IntegerField(allow_null=True)
    waiting_since = serializers.DateTimeField(allow_null=True)
    awaiting_first_response = serializers.BooleanField()
    reopen_count = serializers.IntegerField()
    response_due_at = serializers.DateTimeField(allow_null=True)
    resolution_due_at = serializers.DateTimeField(allow_null=True)


class ConversationSerializer(serializers.ModelSerializer[Conversation]):
    contact = ContactSerializer(read_only=True)
    number = serializers.SerializerMethodField()
    ticket = TicketSummarySerializer(source="current_ticket", read_only=True, allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "contact",
            "number",
            "status",
            "last_message_at",
            "last_message_preview",
            "last_inbound_at",
            "window_expires_at",
            "unread_count",
            "ticket",
            "created_at",
        ]
        read_only_fields = fields

    def get_number(self, conversation: Conversation) -> dict[str, Any]:
        return {"id": conversation.number_id, "display_number": conversation.number.display_number}

    def to_representation(self, instance: Conversation) -> dict[str, Any]:
        zone = timezone.get_current_timezone()
        ticket = instance.current_ticket
        return {
            "id": instance.pk,
            "contact": contact_representation(instance.contact, zone),
            "number": self.get_number(instance),
            "status": _text(instance.status),
            "last_message_at": moment(instance.last_message_at, zone),
            "last_message_preview": _text(instance.last_message_preview),
            "last_inbound_at": moment(instance.last_inbound_at, zone),
            "window_expires_at": moment(instance.window_expires_at, zone),
            "unread_count": _int(instance.unread_count),
            "ticket": None
            if ticket is None
            else {
                "id": _int(ticket.pk),
                "status": _text(ticket.status),
                "priority": _text(ticket.priority),
                "assignee_id": _int(ticket.assignee_id),
                "waiting_since": moment(ticket.waiting_since, zone),
                "awaiting_first_response": _bool(ticket.awaiting_first_response),
                "reopen_count": _int(ticket.reopen_count),
                "response_due_at": moment(ticket.response_due_at, zone),
                "resolution_due_at": moment(ticket.resolution_due_at, zone),
            },
            "created_at": moment(instance.created_at, zone),
        }


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A deleted message keeps its text in the database for the audit; agents see only that it was deleted."""

    conversation = serializers.IntegerField(source="conversation_id", read_only=True)
    deleted = serializers.SerializerMethodField()
    reactions = serializers.SerializerMethodField(help_text='Who reacted with what: {"customer": "👍"}')

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "direction",
            "type",
            "text",
            "content",
            "status",
            "wamid",
            "reply_to_wamid",
            "sender_kind",
            "sender_name",
            "created_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "error_code",
            "error_title",
            "error_details",
            "edited_at",
            "deleted",
            "deleted_at",
            "reactions",
            "is_history",
        ]
        read_only_fields = fields

    def get_deleted(self, message: Message) -> bool:
        return message.deleted_at is not None

    def get_reactions(self, message: Message) -> dict[str, str]:
        return {
            who: str(r["emoji"])
            for who, r in message.reactions.items()
            if isinstance(r, dict) and r.get("emoji")
        }

    def to_representation(self, instance: Message) -> dict[str, Any]:
        zone = timezone.get_current_timezone()
        deleted = instance.deleted_at is not None
        return {
            "id": instance.pk,
            "conversation": _int(instance.conversation_id),
            "direction": _text(instance.direction),
            "type": _text(instance.type),
            "text": "" if deleted else _text(instance.text),
            "content": {} if deleted else instance.content,
            "status": _text(instance.status),
            "wamid": _text(instance.wamid),
            "reply_to_wamid": _text(instance.reply_to_wamid),
            "sender_kind": _text(instance.sender_kind),
            "sender_name": _text(instance.sender_name),
            "created_at": moment(instance.created_at, zone),
            "sent_at": moment(instance.sent_at, zone),
            "delivered_at": moment(instance.delivered_at, zone),
            "read_at": moment(instance.read_at, zone),
            "failed_at": moment(instance.failed_at, zone),
            "error_code": _int(instance.error_code),
            "error_title": _text(instance.error_title),
            "error_details": _text(instance.error_details),
            "edited_at": moment(instance.edited_at, zone),
            "deleted": deleted,
            "deleted_at": moment(instance.deleted_at, zone),
            "reactions": self.get_reactions(instance),
            "is_history": _bool(instance.is_history),
        }


class NoteSerializer(serializers.ModelSerializer[Note]):
    conversation = serializers.IntegerField(source="conversation_id", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "conversation", "author_id", "author_name", "text", "created_at"]
        read_only_fields = ["id", "conversation", "author_id", "author_name", "created_at"]


class ReplySerializer(serializers.Serializer[dict[str, Any]]):
    text = serializers.CharField(max_length=4096, trim_whitespace=False)

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A reply needs some text.")
        return value


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    return dict(ConversationSerializer(conversation).data)


def message_data(message: Message) -> dict[str, Any]:
    return dict(MessageSerializer(message).data)


def note_data(note: Note) -> dict[str, Any]:
    return dict(NoteSerializer(note).data)
