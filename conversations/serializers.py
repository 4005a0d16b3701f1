"""The API shape of conversations and messages; websocket frames carry exactly the same shape."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from conversations.models import Contact, Conversation, Message, Note


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
        data: dict[str, Any] = super().to_representation(instance)
        if instance.deleted_at is not None:
            data["text"] = ""
            data["content"] = {}
        return data


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
