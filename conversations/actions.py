"""Every business change to conversations and messages, one function each (`do_*` changes, `check_*`
validates then changes). The webhook processor, the API, the browser views, Celery tasks and management
commands all call these; none of them writes these models directly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.events import record_event
from conversations.models import (
    CUSTOMER_SERVICE_WINDOW,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
    Note,
    PendingStatus,
    SenderKind,
)
from conversations.serializers import conversation_data, message_data, note_data
from helpdesk.tenancy.access import current_schema
from helpdesk.tenancy.models import User, WhatsAppNumber
from tickets import actions as ticket_actions

log = logging.getLogger(__name__)

# Delivery progress only moves forward; `failed` is terminal and is accepted until the message was read.
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}
STATUS_TIME_FIELD: dict[str, str] = {
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.FAILED: "failed_at",
}
MAX_TEXT_LENGTH = 4096


class ActionError(Exception):
    """A refused change; `code` names the reason for API clients."""

    code = "invalid"
    http_status = 400


class WindowClosed(ActionError):
    code = "window_closed"
    http_status = 409


def from_unix(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


@dataclass(frozen=True)
class InboundContent:
    type: str
    text: str
    reply_to_wamid: str


def describe_inbound(message: dict[str, Any]) -> InboundContent:
    """What an inbound message says, as text an agent can read, for every type in the reference."""
    kind = str(message.get("type") or "unsupported")
    body: Any = message.get(kind) or {}
    text = ""
    if kind == "text":
        text = body.get("body", "")
    elif kind in {"image", "video", "document", "audio", "sticker"}:
        text = body.get("caption") or body.get("filename") or ""
    elif kind == "location":
        place = ", ".join(part for part in (body.get("name"), body.get("address")) if part)
        text = place or f"{body.get('latitude')}, {body.get('longitude')}"
    elif kind == "contacts" and isinstance(body, list):
        text = ", ".join(
            (card.get("name") or {}).get("formatted_name", "") for card in body if isinstance(card, dict)
        )
    elif kind == "interactive":
        reply = body.get(body.get("type", "")) or {}
        text = reply.get("title", "")
    elif kind == "button":
        text = body.get("text") or body.get("payload", "")
    elif kind == "reaction":
        text = body.get("emoji", "")
    elif kind in {"order", "system"}:
        text = body.get("text") or body.get("body", "")
    context = message.get("context") or {}
    return InboundContent(type=kind, text=str(text), reply_to_wamid=str(context.get("id", "")))


def _contact_for(number: WhatsAppNumber, wa_id: str, user_id: str, profile: dict[str, Any]) -> Contact:
    contact = None
    if wa_id:
        contact = Contact.objects.filter(number=number, wa_id=wa_id).first()
    if contact is None and user_id:
        contact = Contact.objects.filter(number=number, user_id=user_id).first()
    name = str(profile.get("name") or "")
    username = str(profile.get("username") or "")
    if contact is None:
        return Contact.objects.create(
            number=number, wa_id=wa_id, user_id=user_id, name=name, username=username
        )
    changed = {
        field: value
        for field, value in (("wa_id", wa_id), ("user_id", user_id), ("name", name), ("username", username))
        if value and getattr(contact, field) != value
    }
    if changed:
        Contact.objects.filter(pk=contact.pk).update(**changed)
        for field, value in changed.items():
            setattr(contact, field, value)
    return contact


def do_receive_inbound(
    number: WhatsAppNumber, message: dict[str, Any], contacts: list[dict[str, Any]]
) -> Message | None:
    """Store one inbound message (idempotent on its wamid) and open or extend its conversation's window."""
    wamid = str(message.get("id") or "")
    if not wamid:
        log.warning("inbound message without id ignored: %s", message)
        return None
    if Message.objects.filter(wamid=wamid).exists():
        return None
    wa_id = str(message.get("from") or "")
    user_id = str(message.get("from_user_id") or "")
    profile: dict[str, Any] = {}
    for entry in contacts:
        if (wa_id and entry.get("wa_id") == wa_id) or (user_id and entry.get("user_id") == user_id):
            profile = dict(entry.get("profile") or {})
            break
    sent_at = from_unix(message.get("timestamp") or timezone.now().timestamp())
    described = describe_inbound(message)
    with transaction.atomic():
        contact = _contact_for(number, wa_id, user_id, profile)
        conversation, _ = Conversation.objects.select_for_update().get_or_create(
            contact=contact, defaults={"number": number}
        )
        try:
            with transaction.atomic():
                stored = Message.objects.create(
                    conversation=conversation,
                    direction=Direction.IN,
                    type=described.type,
                    text=described.text,
                    content=message,
                    status=MessageStatus.RECEIVED,
                    wamid=wamid,
                    reply_to_wamid=described.reply_to_wamid,
                    sender_kind=SenderKind.CUSTOMER,
                    sender_name=contact.name,
                    created_at=sent_at,
                )
        except IntegrityError:  # the same wamid, stored by a concurrent worker
            return None
        previous_window_end = apply_inbound_to_conversation(conversation, stored)
        # The ticket's change travels inside the conversation (its `ticket` summary).
        ticket_actions.on_customer_message(conversation, stored, previous_window_end)
        conversation.save()
        record_event(
            "message.created", message=message_data(stored), conversation=conversation_data(conversation)
        )
    return stored


def apply_inbound_to_conversation(conversation: Conversation, message: Message) -> datetime | None:
    """A customer message opens or extends the 24-hour window, moves the preview, counts as unread and reopens
    a resolved conversation (in memory: the caller saves). Returns the window end it had before."""
    at = message.created_at
    previous_window_end = conversation.window_expires_at
    if conversation.last_inbound_at is None or at > conversation.last_inbound_at:
        conversation.last_inbound_at = at
        conversation.window_expires_at = at + CUSTOMER_SERVICE_WINDOW
    if conversation.last_message_at is None or at >= conversation.last_message_at:
        conversation.last_message_at = at
        conversation.last_message_preview = _preview(message)
    conversation.unread_count += 1
    if conversation.status == ConversationStatus.RESOLVED:
        conversation.status = ConversationStatus.OPEN
    return previous_window_end


def _preview(message: Message) -> str:
    return (message.text or f"[{message.type}]")[:200]


def do_apply_status(status: dict[str, Any]) -> Message | None:
    """Apply a delivery status webhook to our outbound message: the status only moves forward (a late
    `delivered` after `read` only fills in its time); a repeat changes nothing. A status for a wamid we do not
    know yet is kept and applied once the send's answer stores that wamid."""
    wamid = str(status.get("id") or "")
    new_status = str(status.get("status") or "")
    if new_status == "played":  # a voice message was played: it was read
        new_status = MessageStatus.READ
    if new_status not in STATUS_TIME_FIELD:
        log.info("status %r for %s ignored", new_status, wamid)
        return None
    at = from_unix(status.get("timestamp") or timezone.now().timestamp())
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(wamid=wamid, direction=Direction.OUT).first()
        if message is None:
            PendingStatus.objects.create(wamid=wamid, status=status)
            log.info("status %s for unknown message %s kept for later", new_status, wamid)
            return None
        changed = False
        time_field = STATUS_TIME_FIELD[new_status]
        if (
            new_status != MessageStatus.FAILED
            and getattr(message, time_field) is None
            and message.status != MessageStatus.FAILED
        ):
            setattr(message, time_field, at)
            changed = True
        if _moves_forward(message.status, new_status):
            message.status = new_status
            setattr(message, time_field, at)
            changed = True
            if new_status == MessageStatus.FAILED:
                error = (status.get("errors") or [{}])[0]
                message.error_code = _int_or_none(error.get("code"))
                message.error_title = str(error.get("title") or error.get("message") or "")[:512]
                message.error_details = str((error.get("error_data") or {}).get("details") or "")
        if not changed:
            return None
        message.save()
        record_event("message.updated", message=message_data(message))
    return message


def _moves_forward(current: str, new: str) -> bool:
    if current == MessageStatus.FAILED:
        return False
    if new == MessageStatus.FAILED:
        return current != MessageStatus.READ
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)  # type: ignore[call-overload]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_send_text_reply(conversation: Conversation, user: User, text: str) -> Message:
    """Queue an agent's free-text reply; refused outside the customer-service window (a template is needed)."""
    if not text.strip():
        raise ActionError("A reply needs some text.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ActionError(f"A WhatsApp text message holds at most {MAX_TEXT_LENGTH} characters.")
    if not conversation.window_is_open():
        raise WindowClosed(
            "The 24-hour customer service window is closed: WhatsApp only accepts an approved template "
            "message until the customer writes again."
        )
    return do_queue_outbound(
        conversation,
        type="text",
        text=text,
        content={"body": text, "preview_url": False},
        sender_kind=SenderKind.AGENT,
        sender=user,
    )


def do_queue_outbound(
    conversation: Conversation,
    *,
    type: str,
    text: str,
    content: dict[str, Any],
    sender_kind: str,
    sender: User | None = None,
    at: datetime | None = None,
) -> Message:
    """Store an outbound message as `queued`; after commit a Celery task sends it through the Graph API.
    `at` is the moment it was written (default now; tests of history pass it)."""
    from conversations.tasks import send_message

    now = at or timezone.now()
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        message = Message.objects.create(
            conversation=locked,
            direction=Direction.OUT,
            type=type,
            text=text,
            content=content,
            status=MessageStatus.QUEUED,
            sender_kind=sender_kind,
            sender_user_id=sender.pk if sender else None,
            sender_name=sender.display_name if sender else "",
            created_at=now,
        )
        locked.last_message_at = now
        locked.last_message_preview = _preview(message)
        if sender_kind == SenderKind.AGENT:
            locked.unread_count = 0
        locked.save()
        ticket_actions.on_outbound_message(locked, message)
        record_event("message.created", message=message_data(message), conversation=conversation_data(locked))
        schema_name = _schema_name()
        transaction.on_commit(lambda: send_message.delay(schema_name, message.pk))
    conversation.refresh_from_db()
    return message


MAX_NOTE_LENGTH = 10_000  # a generous reply's worth: a note is for colleagues, not a place to store documents


class NoteTooLong(ActionError):
    code = "too_long"


def check_add_note(conversation: Conversation, author: User, text: str) -> Note:
    """A private note for colleagues: stored and pushed, never sent, never ends the customer's wait."""
    if not text.strip():
        raise ActionError("A note needs some text.")
    if len(text) > MAX_NOTE_LENGTH:
        raise NoteTooLong(f"A note holds at most {MAX_NOTE_LENGTH} characters; this one has {len(text)}.")
    with transaction.atomic():
        note = Note.objects.create(
            conversation=conversation, author_id=author.pk, author_name=author.display_name, text=text
        )
        record_event("note.created", note=note_data(note))
    return note


def do_mark_conversation_read(conversation: Conversation) -> Conversation:
    """An agent has seen the conversation: unread goes to zero and the customer sees blue ticks."""
    from conversations.tasks import send_read_receipt

    with transaction.atomic():
        updated = Conversation.objects.filter(pk=conversation.pk, unread_count__gt=0).update(unread_count=0)
        conversation.refresh_from_db()
        if updated:
            record_event("conversation.updated", conversation=conversation_data(conversation))
            latest = (
                Message.objects.filter(conversation=conversation, direction=Direction.IN)
                .order_by("-created_at", "-pk")
                .values_list("pk", flat=True)
                .first()
            )
            if latest:
                schema_name = _schema_name()
                transaction.on_commit(lambda: send_read_receipt.delay(schema_name, latest))
    return conversation


def do_set_conversation_status(conversation: Conversation, status: str) -> Conversation:
    if status not in ConversationStatus.values:
        raise ActionError(f"Unknown status {status!r}; use one of {', '.join(ConversationStatus.values)}.")
    with transaction.atomic():
        changed = Conversation.objects.filter(pk=conversation.pk).exclude(status=status).update(status=status)
        conversation.refresh_from_db()
        if changed:
            record_event("conversation.updated", conversation=conversation_data(conversation))
    return conversation


def do_mark_sent(message_id: int, wamid: str) -> Message:
    """The Graph API accepted the message: keep its wamid and mark it sent (unless a webhook got further)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.wamid = wamid
        message.send_claimed_at = None
        if _moves_forward(message.status, MessageStatus.SENT):
            message.status = MessageStatus.SENT
            message.sent_at = timezone.now()
        message.save()
        record_event("message.updated", message=message_data(message))
        pending = list(PendingStatus.objects.filter(wamid=wamid).order_by("pk"))
        if pending:
            PendingStatus.objects.filter(pk__in=[p.pk for p in pending]).delete()
            for early in pending:
                do_apply_status(early.status)
            message.refresh_from_db()
    return message


def do_mark_send_failed(message_id: int, code: int | None, title: str, details: str) -> Message:
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.status = MessageStatus.FAILED
        message.failed_at = timezone.now()
        message.send_claimed_at = None
        message.error_code = code
        message.error_title = title[:512]
        message.error_details = details
        message.save()
        record_event("message.updated", message=message_data(message))
    return message


def _schema_name() -> str:
    return current_schema()
