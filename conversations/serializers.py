"""The API shape of conversations and messages; websocket frames carry exactly the same shape.

The fields are declared the DRF way (the OpenAPI schema and the field list come from them), but the serializers
that lists render by the page write their dicts by hand, from a flat row of values: DRF's generic field loop (a
field object, attribute lookup and time zone conversion per value) and the model instances of a page (four per
conversation) cost more than the query of the page itself. The lists read `values(*CONVERSATION_VALUES)` /
`values(*MESSAGE_VALUES)`; a single object (a detail, a websocket frame) is turned into the same row
(`values_of`). Each hand-written `to_representation` gives exactly what DRF's loop gives for the declared fields
(tests/test_api_serializers.py compares them on every field); a field added to `Meta.fields` must be added there
too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from django.db.models import Model
from django.db.models.manager import BaseManager
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


def values_of(instance: Model, paths: Sequence[str]) -> dict[str, Any]:
    """What `QuerySet.values(*paths)` gives for this row, read from the instance (`contact__name` is
    `instance.contact.name`; None when a relation on the way is None)."""
    row: dict[str, Any] = {}
    for path in paths:
        value: Any = instance
        for part in path.split("__"):
            value = None if value is None else getattr(value, part)
        row[path] = value
    return row


class _Rows(serializers.ListSerializer[Any]):
    """A list of the child's representations, the current time zone looked up once for the list (DRF looks it
    up for every time of every row)."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        zone = timezone.get_current_timezone()
        rows = data.all() if isinstance(data, BaseManager) else data
        return [self.child.represent(row, zone) for row in rows]  # type: ignore[union-attr]


# ------------------------------------------------------------------ conversations

# What a conversation's representation reads, as `values()` paths: the list reads only these, without model
# instances (tests/test_api_serializers.py checks the result against DRF's field loop).
CONTACT_FIELDS = [
    "id",
    "wa_id",
    "user_id",
    "username",
    "name",
    "opted_in_at",
    "opt_in_source",
    "opt_in_proof",
    "opted_out_at",
    "opt_out_route",
    "opt_out_reason",
    "marketing",
    "marketing_changed_at",
    "attributes",
    "labels",
]
TICKET_SUMMARY_FIELDS = [
    "id",
    "status",
    "priority",
    "assignee_id",
    "waiting_since",
    "awaiting_first_response",
    "reopen_count",
    "response_due_at",
    "resolution_due_at",
    "csat_score",
]
CONVERSATION_VALUES = [
    "id",
    "status",
    "last_message_at",
    "last_message_preview",
    "last_inbound_at",
    "window_expires_at",
    "unread_count",
    "labels",
    "created_at",
    "number_id",
    "number__display_number",
    *(f"contact__{name}" for name in CONTACT_FIELDS),
    *(f"current_ticket__{name}" for name in TICKET_SUMMARY_FIELDS),
]


class ContactSerializer(serializers.ModelSerializer[Contact]):
    class Meta:
        model = Contact
        fields = CONTACT_FIELDS

    def to_representation(self, instance: Contact) -> dict[str, Any]:
        row = {f"contact__{name}": value for name, value in values_of(instance, CONTACT_FIELDS).items()}
        return _contact(row, timezone.get_current_timezone())


def _contact(row: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    return {
        "id": _int(row["contact__id"]),
        "wa_id": _text(row["contact__wa_id"]),
        "user_id": _text(row["contact__user_id"]),
        "username": _text(row["contact__username"]),
        "name": _text(row["contact__name"]),
        "opted_in_at": moment(row["contact__opted_in_at"], zone),
        "opt_in_source": _text(row["contact__opt_in_source"]),
        "opt_in_proof": _text(row["contact__opt_in_proof"]),
        "opted_out_at": moment(row["contact__opted_out_at"], zone),
        "opt_out_route": _text(row["contact__opt_out_route"]),
        "opt_out_reason": _text(row["contact__opt_out_reason"]),
        "marketing": _text(row["contact__marketing"]),
        "marketing_changed_at": moment(row["contact__marketing_changed_at"], zone),
        "attributes": row["contact__attributes"],
        "labels": list(row["contact__labels"]),
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
    csat_score = serializers.IntegerField(allow_null=True, help_text="The customer's rating, 1 to 5, or null")


def _ticket_summary(row: Mapping[str, Any], zone: tzinfo) -> dict[str, Any] | None:
    if row["current_ticket__id"] is None:
        return None
    return {
        "id": _int(row["current_ticket__id"]),
        "status": _text(row["current_ticket__status"]),
        "priority": _text(row["current_ticket__priority"]),
        "assignee_id": _int(row["current_ticket__assignee_id"]),
        "waiting_since": moment(row["current_ticket__waiting_since"], zone),
        "awaiting_first_response": _bool(row["current_ticket__awaiting_first_response"]),
        "reopen_count": _int(row["current_ticket__reopen_count"]),
        "response_due_at": moment(row["current_ticket__response_due_at"], zone),
        "resolution_due_at": moment(row["current_ticket__resolution_due_at"], zone),
        "csat_score": _int(row["current_ticket__csat_score"]),
    }


class ConversationSerializer(serializers.ModelSerializer[Conversation]):
    """Takes a Conversation (with contact, number and current ticket) or a row of `values(*CONVERSATION_VALUES)`."""

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
            "labels",
            "ticket",
            "created_at",
        ]
        read_only_fields = fields
        list_serializer_class = _Rows

    def get_number(self, conversation: Conversation) -> dict[str, Any]:
        return {"id": conversation.number_id, "display_number": conversation.number.display_number}

    def to_representation(self, instance: Conversation | Mapping[str, Any]) -> dict[str, Any]:
        return self.represent(instance, timezone.get_current_timezone())

    def represent(self, instance: Conversation | Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
        row = instance if isinstance(instance, Mapping) else values_of(instance, CONVERSATION_VALUES)
        return {
            "id": _int(row["id"]),
            "contact": _contact(row, zone),
            "number": {"id": row["number_id"], "display_number": row["number__display_number"]},
            "status": _text(row["status"]),
            "last_message_at": moment(row["last_message_at"], zone),
            "last_message_preview": _text(row["last_message_preview"]),
            "last_inbound_at": moment(row["last_inbound_at"], zone),
            "window_expires_at": moment(row["window_expires_at"], zone),
            "unread_count": _int(row["unread_count"]),
            "labels": list(row["labels"]),
            "ticket": _ticket_summary(row, zone),
            "created_at": moment(row["created_at"], zone),
        }


# ------------------------------------------------------------------ messages


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A deleted message keeps its text in the database for the audit; agents see only that it was deleted.

    Takes a Message or a row of `values(*MESSAGE_VALUES)`."""

    conversation = serializers.IntegerField(source="conversation_id", read_only=True)
    deleted = serializers.SerializerMethodField()
    reactions = serializers.SerializerMethodField(help_text='Who reacted with what: {"customer": "👍"}')
    media = serializers.SerializerMethodField(
        help_text='null, or {"status": "pending"|"ready"|"failed", "url" (ours: members only), "mime_type", '
        '"filename", "size", "caption", "error"}'
    )

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
            "media",
        ]
        read_only_fields = fields
        list_serializer_class = _Rows

    def get_deleted(self, message: Message) -> bool:
        return message.deleted_at is not None

    def get_media(self, message: Message) -> dict[str, Any] | None:
        return None if message.deleted_at is not None else media_item(message.pk, message.media)

    def get_reactions(self, message: Message) -> dict[str, str]:
        return _reactions(message.reactions)

    def to_representation(self, instance: Message | Mapping[str, Any]) -> dict[str, Any]:
        return self.represent(instance, timezone.get_current_timezone())

    def represent(self, instance: Message | Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
        row = instance if isinstance(instance, Mapping) else values_of(instance, MESSAGE_VALUES)
        deleted = row["deleted_at"] is not None
        return {
            "id": _int(row["id"]),
            "conversation": _int(row["conversation_id"]),
            "direction": _text(row["direction"]),
            "type": _text(row["type"]),
            "text": "" if deleted else _text(row["text"]),
            "content": {} if deleted else row["content"],
            "status": _text(row["status"]),
            "wamid": _text(row["wamid"]),
            "reply_to_wamid": _text(row["reply_to_wamid"]),
            "sender_kind": _text(row["sender_kind"]),
            "sender_name": _text(row["sender_name"]),
            "created_at": moment(row["created_at"], zone),
            "sent_at": moment(row["sent_at"], zone),
            "delivered_at": moment(row["delivered_at"], zone),
            "read_at": moment(row["read_at"], zone),
            "failed_at": moment(row["failed_at"], zone),
            "error_code": _int(row["error_code"]),
            "error_title": _text(row["error_title"]),
            "error_details": _text(row["error_details"]),
            "edited_at": moment(row["edited_at"], zone),
            "deleted": deleted,
            "deleted_at": moment(row["deleted_at"], zone),
            "reactions": None if row["reactions"] is None else _reactions(row["reactions"]),
            "is_history": _bool(row["is_history"]),
            "media": None if deleted else media_item(row["id"], row["media"]),
        }


# What a message's representation reads, as `values()` paths.
MESSAGE_VALUES = [
    "conversation_id" if name == "conversation" else name
    for name in MessageSerializer.Meta.fields
    if name != "deleted"
]


def media_item(message_id: int, media: dict[str, Any] | None) -> dict[str, Any] | None:
    """A message's file as the API shows it: its state and, once downloaded, our URL for its bytes."""
    if not media:
        return None
    ready = media.get("status") == "ready" and bool(media.get("path"))
    return {
        "status": media.get("status"),
        "url": f"/api/v1/messages/{message_id}/media/" if ready else None,
        "mime_type": media.get("mime_type") or None,
        "filename": media.get("filename") or None,
        "size": media.get("size"),
        "caption": media.get("caption") or "",
        "error": media.get("error") or None,
    }


def _reactions(reactions: dict[str, Any]) -> dict[str, str]:
    return {who: str(r["emoji"]) for who, r in reactions.items() if isinstance(r, dict) and r.get("emoji")}


# ------------------------------------------------------------------ notes and replies


class NoteSerializer(serializers.ModelSerializer[Note]):
    conversation = serializers.IntegerField(source="conversation_id", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "conversation", "author_id", "author_name", "text", "created_at"]
        read_only_fields = ["id", "conversation", "author_id", "author_name", "created_at"]


class ReplySerializer(serializers.Serializer[dict[str, Any]]):
    text = serializers.CharField(max_length=4096, trim_whitespace=False, required=False)
    template = serializers.DictField(
        required=False,
        help_text='Instead of `text`: an approved template, {"name", "language", "components"} (Meta\'s format)',
    )

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A reply needs some text.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "text" not in attrs and "template" not in attrs:
            raise serializers.ValidationError({"text": "A reply needs some text (or a `template`)."})
        return attrs


# One instance each for the frames the actions build: a serializer builds its fields anew per instance, which
# cost more than the representation itself on the webhook path. (Representing is read-only, so sharing is safe.)
_CONVERSATION = ConversationSerializer()
_MESSAGE = MessageSerializer()


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    return dict(_CONVERSATION.to_representation(conversation))


def message_data(message: Message) -> dict[str, Any]:
    return dict(_MESSAGE.to_representation(message))


def note_data(note: Note) -> dict[str, Any]:
    return dict(NoteSerializer(note).data)
