"""Every business change to conversations and messages, one function each (`do_*` changes, `check_*`
validates then changes). The webhook processor, the API, the browser views, Celery tasks and management
commands all call these; none of them writes these models directly."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from conversations import consent
from conversations.events import record_event
from conversations.models import (
    CUSTOMER_SERVICE_WINDOW,
    MAX_ID_LENGTH,
    AccountEvent,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    MarketingPreference,
    Mention,
    Message,
    MessageStatus,
    Note,
    PendingKind,
    PendingStatus,
    SenderKind,
)
from conversations.serializers import conversation_data, message_data, note_data
from helpdesk.tenancy.access import current_schema
from helpdesk.tenancy.models import Membership, User, WhatsAppNumber
from tickets import actions as ticket_actions
from tickets.models import conversation_status_of

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


# WhatsApp's timestamps are Unix seconds; anything before WhatsApp existed or more than a day ahead of its
# receipt is not a time we can believe.
EARLIEST_TIMESTAMP = datetime(2009, 1, 1, tzinfo=UTC)
LATEST_SKEW = timedelta(days=1)


def timestamp_or_none(value: Any, received_at: datetime | None = None) -> datetime | None:
    """A WhatsApp timestamp (Unix seconds, a number or a string of digits) if it is believable, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        moment = datetime.fromtimestamp(int(float(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    latest = (received_at or timezone.now()) + LATEST_SKEW
    return moment if EARLIEST_TIMESTAMP <= moment <= latest else None


@dataclass(frozen=True)
class Receipt:
    """Where and when a webhook item arrived: the number it names and the moment we stored the webhook (the
    fallback for a missing or absurd timestamp; the raw event keeps the original)."""

    number: WhatsAppNumber | None
    received_at: datetime

    def time_of(self, item: dict[str, Any]) -> datetime:
        return timestamp_or_none(item.get("timestamp"), self.received_at) or self.received_at


def _id(value: Any) -> str:
    """A WhatsApp id (wamid, phone number, BSUID) as text; "" if it is missing or cannot be one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    return text if len(text) <= MAX_ID_LENGTH else ""


def dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class InboundContent:
    type: str
    text: str
    reply_to_wamid: str


def _flow_fields(reply: dict[str, Any]) -> str:
    """A WhatsApp Flows reply as "field: value" lines (`response_json` is a JSON string; the token is ours)."""
    try:
        answers = json.loads(reply.get("response_json") or "{}")
    except (TypeError, ValueError):
        answers = {}
    if not isinstance(answers, dict):
        answers = {}
    lines = [f"{key}: {value}" for key, value in answers.items() if key != "flow_token"]
    return (
        "\n".join([str(reply.get("body") or reply.get("name") or "Form"), *lines])
        if lines
        else str(reply.get("body") or "")
    )


def describe_inbound(message: dict[str, Any]) -> InboundContent:
    """What a message says, as text an agent can read, for every type in the reference."""
    kind = message.get("type")
    kind = kind if isinstance(kind, str) and 0 < len(kind) <= 64 else "unsupported"
    body: Any = message.get(kind) or {}
    text: Any = ""
    if kind == "text":
        text = dict_or_empty(body).get("body", "")
    elif kind in {"image", "video", "document", "audio", "sticker"}:
        text = dict_or_empty(body).get("caption") or dict_or_empty(body).get("filename") or ""
    elif kind == "location":
        body = dict_or_empty(body)
        place = ", ".join(str(part) for part in (body.get("name"), body.get("address")) if part)
        text = place or f"{body.get('latitude')}, {body.get('longitude')}"
    elif kind == "contacts" and isinstance(body, list):
        text = ", ".join(
            str(dict_or_empty(card.get("name")).get("formatted_name", ""))
            for card in body
            if isinstance(card, dict)
        )
    elif kind == "interactive":
        body = dict_or_empty(body)
        reply = dict_or_empty(body.get(str(body.get("type", ""))))
        text = _flow_fields(reply) if body.get("type") == "nfm_reply" else reply.get("title", "")
    elif kind == "button":
        text = dict_or_empty(body).get("text") or dict_or_empty(body).get("payload", "")
    elif kind == "reaction":
        text = dict_or_empty(body).get("emoji", "")
    elif kind in {"order", "system"}:
        text = dict_or_empty(body).get("text") or dict_or_empty(body).get("body", "")
    context = dict_or_empty(message.get("context"))
    return InboundContent(type=kind, text=str(text or ""), reply_to_wamid=_id(context.get("id")))


def _contact_for(number: WhatsAppNumber, wa_id: str, user_id: str, profile: dict[str, Any]) -> Contact:
    """The contact of this number with this phone number or BSUID, created or brought up to date. A concurrent
    worker creating the same contact is not an error: its row is used."""
    contact = None
    if wa_id:
        contact = Contact.objects.filter(number=number, wa_id=wa_id).first()
    if contact is None and user_id:
        contact = Contact.objects.filter(number=number, user_id=user_id).first()
    name = profile.get("name")
    name = name if isinstance(name, str) else ""
    username = profile.get("username")
    username = username if isinstance(username, str) else ""
    if contact is None:
        try:
            with transaction.atomic():
                return Contact.objects.create(
                    number=number, wa_id=wa_id, user_id=user_id, name=name, username=username
                )
        except IntegrityError:  # created meanwhile by another worker
            contact = (
                Contact.objects.filter(number=number)
                .filter(Q(wa_id=wa_id) if wa_id else Q(user_id=user_id))
                .first()
            )
            if contact is None:
                raise
    changed = {
        field: value
        for field, value in (("wa_id", wa_id), ("user_id", user_id), ("name", name), ("username", username))
        if value and getattr(contact, field) != value
    }
    if changed.get("wa_id") and Contact.objects.filter(number=number, wa_id=changed["wa_id"]).exists():
        del changed["wa_id"]  # that phone number belongs to another contact of ours: keep them apart
    if changed.get("user_id") and Contact.objects.filter(number=number, user_id=changed["user_id"]).exists():
        del changed["user_id"]
    if changed:
        Contact.objects.filter(pk=contact.pk).update(**changed)
        for field, value in changed.items():
            setattr(contact, field, value)
    return contact


def _sender_of(message: dict[str, Any], contacts: list[dict[str, Any]]) -> tuple[str, str, dict[str, Any]]:
    """The customer's phone number, BSUID and profile: from the message, else from the only contact of the
    change (a customer known only by BSUID may come with no `from`)."""
    wa_id, user_id = _id(message.get("from")), _id(message.get("from_user_id"))
    profile: dict[str, Any] = {}
    for entry in contacts:
        entry_wa_id, entry_user_id = _id(entry.get("wa_id")), _id(entry.get("user_id"))
        if (wa_id and entry_wa_id == wa_id) or (user_id and entry_user_id == user_id):
            profile = dict_or_empty(entry.get("profile"))
            wa_id, user_id = wa_id or entry_wa_id, user_id or entry_user_id
            break
    else:
        if not wa_id and not user_id and len(contacts) == 1:
            wa_id, user_id = _id(contacts[0].get("wa_id")), _id(contacts[0].get("user_id"))
            profile = dict_or_empty(contacts[0].get("profile"))
    return wa_id, user_id, profile


# ------------------------------------------------------------------ lock order
#
# Every action that touches a conversation takes its locks in this order, and only in this order:
#   0. the wamid of a message being written (`_lock_wamid`; an update for a wamid we do not have yet takes it
#      too, holding nothing else), 1. the contact row, 2. the conversation row (SELECT ... FOR UPDATE), 3. the ticket row, 4. message rows,
#   5. the reporting counters (DailyVolume, ConversationDay), 6. the inbox-event lock (events.record_event),
#   taken last, right before commit.
# An action may skip steps but never go back to an earlier one; one transaction touches at most one
# conversation. Two writers then wait for each other instead of deadlocking (tests/test_concurrency.py).


def lock_conversation(conversation_id: int) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=conversation_id)


def _locked_conversation_of(contact: Contact, number: WhatsAppNumber | None = None) -> Conversation:
    """Step 2 of the lock order: the contact's conversation (one per contact and number), created if new.
    `number`, when the caller has it, saves reading it again for the conversation's frame."""
    conversation, _ = Conversation.objects.select_for_update().get_or_create(
        contact=contact, defaults={"number_id": contact.number_id}
    )
    conversation.contact = contact
    if number is not None and conversation.number_id == number.pk:
        conversation.number = number
    return conversation


def _lock_wamid(wamid: str) -> None:
    """Step 0 of the lock order, for one wamid: the writer of a message and an update that overtook it
    (an early status, edit, deletion or reaction) meet here, so the update is never left pending forever."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{current_schema()}.wamid.{wamid}"])


def do_receive_inbound(
    number: WhatsAppNumber,
    message: dict[str, Any],
    contacts: list[dict[str, Any]],
    received_at: datetime | None = None,
) -> Message | None:
    """One item of a `messages` change: a customer message (stored once per wamid), or an edit, deletion or
    reaction of an earlier message (applied to it), or a system notice. Returns the stored new message."""
    receipt = Receipt(number, received_at or timezone.now())
    wamid = _id(message.get("id"))
    if not wamid:
        log.warning("inbound message without a usable id skipped: %.300s", message)
        return None
    kind = message.get("type")
    if kind in ("edit", "revoke"):
        inner = dict_or_empty(message.get(kind))
        original = _id(inner.get("original_message_id"))
        if not original:
            log.warning("%s %s without original_message_id skipped", kind, wamid)
            return None
        do_apply_update(PendingKind(kind), original, message, receipt.time_of(message), "customer")
        return None
    if kind == "reaction":
        original = _id(dict_or_empty(message.get("reaction")).get("message_id"))
        if not original:
            log.warning("reaction %s without message_id skipped", wamid)
            return None
        do_apply_update(PendingKind.REACTION, original, message, receipt.time_of(message), "customer")
        return None
    wa_id, user_id, profile = _sender_of(message, contacts)
    if not wa_id and not user_id:
        log.warning(
            "inbound message %s names no customer (no from, from_user_id or contact) - skipped", wamid
        )
        return None
    if Message.objects.filter(wamid=wamid).exists():
        return None
    is_notice = kind == "system"
    described = describe_inbound(message)
    # No savepoint of its own: the webhook applier already gives every item one (savepoints cost statements).
    with transaction.atomic(savepoint=False):
        from conversations import media  # media builds on these actions

        _lock_wamid(wamid)
        contact = _contact_for(number, wa_id, user_id, profile)
        if is_notice:  # the lock order: the contact before its conversation
            _follow_changed_number(contact, dict_or_empty(message.get("system")))
        conversation = _locked_conversation_of(contact, number)
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
                    sender_kind=SenderKind.SYSTEM if is_notice else SenderKind.CUSTOMER,
                    sender_name="" if is_notice else contact.name,
                    created_at=receipt.time_of(message),
                    media=media.inbound_media(message),
                )
        except IntegrityError:  # the same wamid, stored by a concurrent worker
            return None
        if stored.media:
            media.download_later([stored.pk])
        if _apply_pending(stored):  # an edit, deletion or reaction that arrived before the message
            stored.save()
        # A notice ("the customer changed number") is shown in the thread, but is not a customer's message.
        confirm = None
        if not is_notice:
            previous_window_end = apply_inbound_to_conversation(conversation, stored)
            # The ticket's change travels inside the conversation (its `ticket` summary).
            ticket_actions.on_customer_message(conversation, stored, previous_window_end)
            confirm = consent.do_apply_keyword(conversation, contact, stored)
            conversation.save()
            from conversations import broadcasts  # broadcasts build on these actions

            broadcasts.note_replies([contact.pk], stored.created_at)
        record_event(
            "message.created", message=message_data(stored), conversation=conversation_data(conversation)
        )
        if confirm is not None:
            confirm()  # after the customer's message: the bot's answer follows it in the thread
    return stored


def _follow_changed_number(contact: Contact, notice: dict[str, Any]) -> None:
    new_wa_id = _id(notice.get("wa_id") or notice.get("new_wa_id"))
    if notice.get("type") != "user_changed_number" or not new_wa_id or new_wa_id == contact.wa_id:
        return
    if Contact.objects.filter(number_id=contact.number_id, wa_id=new_wa_id).exists():
        return  # the new number already writes to us as another contact: keep both
    Contact.objects.filter(pk=contact.pk).update(wa_id=new_wa_id)
    contact.wa_id = new_wa_id


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
    if message.deleted_at is not None:
        return ""  # the text of a deleted message is kept for the audit only
    return (message.text or f"[{message.type}]")[:200]


# ------------------------------------------------------------------ updates of a message we have


def do_apply_status(status: dict[str, Any], received_at: datetime | None = None) -> Message | None:
    """Apply a delivery status webhook to our outbound message: the status only moves forward (a late
    `delivered` after `read` only fills in its time); a repeat changes nothing. A status for a wamid we do not
    know yet is kept and applied once the send's answer stores that wamid."""
    wamid = _id(status.get("id"))
    new_status = _status_name(status)
    if not wamid or new_status not in STATUS_TIME_FIELD:
        log.info("status %r for %r ignored", status.get("status"), status.get("id"))
        return None
    with transaction.atomic():
        message = _lock_message(wamid, outbound_only=True)
        if message is None:
            PendingStatus.objects.create(wamid=wamid, kind=PendingKind.STATUS, status=status)
            log.info("status %s for unknown message %s kept for later", new_status, wamid)
            return None
        shown = _apply_status_fields(message, status, received_at)
        if not (take_pricing(message, status) or shown):
            return None
        message.save()
        if shown:
            record_event("message.updated", message=message_data(message))
    return message


def _lock_message(wamid: str, outbound_only: bool = False) -> Message | None:
    """The message with this wamid, locked; if there is none yet, the wamid's lock is held on return so that
    a pending update written now is seen by the message's writer."""
    messages = Message.objects.select_for_update().filter(wamid=wamid)
    if outbound_only:
        messages = messages.filter(direction=Direction.OUT)
    message = messages.first()
    if message is None:
        _lock_wamid(wamid)
        message = messages.first()
    return message


def _status_name(status: dict[str, Any]) -> str:
    name = status.get("status")
    return MessageStatus.READ if name == "played" else str(name or "")  # a played voice message was read


def _apply_status_fields(message: Message, status: dict[str, Any], received_at: datetime | None) -> bool:
    new_status = _status_name(status)
    if new_status not in STATUS_TIME_FIELD:
        return False
    received = received_at or timezone.now()
    at = timestamp_or_none(status.get("timestamp"), received) or received
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
            errors = status.get("errors")
            error = dict_or_empty(errors[0]) if isinstance(errors, list) and errors else {}
            message.error_code = _int_or_none(error.get("code"))
            message.error_title = str(error.get("title") or error.get("message") or "")[:512]
            message.error_details = str(dict_or_empty(error.get("error_data")).get("details") or "")
    if changed and message.sender_kind == SenderKind.BROADCAST:
        from conversations import broadcasts  # broadcasts build on these actions

        broadcasts.follow_status(message)
    return changed


def take_pricing(message: Message, status: dict[str, Any]) -> bool:
    """Meta's `pricing` of the message (what it costs, for the cost report), as the latest status that carries
    one says. Not shown in the thread: a change of it alone is saved without an inbox event."""
    pricing = dict_or_empty(status.get("pricing"))
    if not pricing:
        return False
    billable = pricing.get("billable") if isinstance(pricing.get("billable"), bool) else None
    model = str(pricing.get("pricing_model") or "")[:16]
    category = str(pricing.get("category") or "").lower()[:32]
    if (message.billable, message.pricing_model, message.pricing_category) == (billable, model, category):
        return False
    message.billable, message.pricing_model, message.pricing_category = billable, model, category
    return True


def do_apply_update(
    kind: PendingKind, target_wamid: str, item: dict[str, Any], at: datetime, who: str
) -> Message | None:
    """An edit, deletion or reaction (by the `customer`, or the `business` from its phone app) of the message
    `target_wamid`. Not a new message: no unread count, no ticket, no wait. Kept for later if that message has
    not arrived yet; a redelivery changes nothing."""
    with transaction.atomic():
        conversation = None
        if kind != PendingKind.REACTION:  # an edit or deletion may change the list's preview
            conversation_id = Message.objects.filter(wamid=target_wamid).values_list(
                "conversation_id", flat=True
            )
            conversation = lock_conversation(conversation_id[0]) if conversation_id else None
        message = _lock_message(target_wamid)
        if message is None:
            PendingStatus.objects.create(wamid=target_wamid, kind=kind, status={**item, "_who": who})
            log.info("%s for unknown message %s kept for later", kind, target_wamid)
            return None
        if not _apply_update_fields(message, kind, item, at, who):
            return None
        message.save()
        frame: dict[str, Any] = {"message": message_data(message)}
        if conversation is not None and conversation.last_message_at == message.created_at:
            conversation.last_message_preview = _preview(message)
            conversation.save(update_fields=["last_message_preview"])
            frame["conversation"] = conversation_data(conversation)
        record_event("message.updated", **frame)
    return message


def _apply_update_fields(message: Message, kind: str, item: dict[str, Any], at: datetime, who: str) -> bool:
    if kind == PendingKind.REVOKE:
        if message.deleted_at is not None:
            return False
        message.deleted_at = at
        return True
    if kind == PendingKind.REACTION:
        emoji = dict_or_empty(item.get("reaction")).get("emoji")
        emoji = emoji if isinstance(emoji, str) else ""
        current = dict_or_empty(message.reactions.get(who))
        if current.get("at") and current["at"] > at.isoformat():
            return False  # an older reaction arriving late
        if (current.get("emoji") or "") == emoji:
            return False
        # An empty emoji removes the reaction; its time stays, so that an older reaction arriving late does
        # not bring it back.
        message.reactions = {**message.reactions, who: {"emoji": emoji[:32], "at": at.isoformat()}}
        return True
    edit_id = _id(item.get("id"))
    if message.deleted_at is not None or (edit_id and edit_id == message.edit_wamid):
        return False
    if message.edited_at is not None and at < message.edited_at:
        return False  # a later edit was applied already
    inner = dict_or_empty(dict_or_empty(item.get("edit")).get("message"))
    inner_kind = str(inner["type"]) if isinstance(inner.get("type"), str) else message.type
    new_part = inner.get(inner_kind)
    described = describe_inbound({**inner, "type": inner_kind})
    if message.edited_at is None:
        message.original_text = message.text
    message.text = described.text
    if isinstance(new_part, dict):
        if message.direction == Direction.IN and isinstance(message.content.get(message.type), dict):
            message.content = {**message.content, message.type: {**message.content[message.type], **new_part}}
        elif message.direction == Direction.OUT:
            message.content = {**message.content, **new_part}
    message.edited_at = at
    message.edit_wamid = edit_id
    return True


def _apply_pending(message: Message) -> bool:
    """Updates that arrived before this message (statuses, edits, deletions, reactions), applied to it in
    memory (the caller saves); their rows are dropped. Returns whether the message changed."""
    if not message.wamid:
        return False
    pending = list(PendingStatus.objects.filter(wamid=message.wamid).order_by("pk"))
    if not pending:
        return False
    changed = False
    for early in pending:
        if early.kind == PendingKind.STATUS:
            if message.direction == Direction.OUT:
                changed |= _apply_status_fields(message, early.status, early.received_at)
                changed |= take_pricing(message, early.status)
            continue
        item = dict(early.status)
        who = str(item.pop("_who", "customer"))
        at = timestamp_or_none(item.get("timestamp"), early.received_at) or early.received_at
        changed |= _apply_update_fields(message, early.kind, item, at, who)
    PendingStatus.objects.filter(pk__in=[early.pk for early in pending]).delete()
    return changed


def _moves_forward(current: str, new: str) -> bool:
    if current == MessageStatus.FAILED:
        return False
    if new == MessageStatus.FAILED:
        return current != MessageStatus.READ
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)  # type: ignore[call-overload]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


# ------------------------------------------------------------------ coexistence: the business's phone app


def mark_coexistence(number: WhatsAppNumber) -> None:
    """The number is also used in the WhatsApp Business app (echoes or history of it arrive): Meta holds its
    throughput to 20 messages per second, so broadcasts pace it so."""
    if not number.coexistence:
        WhatsAppNumber.objects.filter(pk=number.pk, coexistence=False).update(coexistence=True)
        number.coexistence = True


def do_receive_echo(receipt: Receipt, echo: dict[str, Any]) -> Message | None:
    """A message the business sent from the WhatsApp Business app on its phone (`smb_message_echoes`): an
    outbound message of the conversation with `to`, already sent. It ends the customer's wait like an agent's
    reply. Edits, deletions and reactions made in the app apply to their message."""
    number = receipt.number
    wamid = _id(echo.get("id"))
    if number is None or not wamid:
        log.warning("message echo without a number or id skipped: %.300s", echo)
        return None
    mark_coexistence(number)
    kind = echo.get("type")
    if kind in ("edit", "revoke", "reaction"):
        inner = dict_or_empty(echo.get(kind))
        original = _id(inner.get("message_id") if kind == "reaction" else inner.get("original_message_id"))
        if original:
            do_apply_update(PendingKind(kind), original, echo, receipt.time_of(echo), "business")
        return None
    wa_id, user_id = _id(echo.get("to")), _id(echo.get("to_user_id"))
    if not wa_id and not user_id:
        log.warning("message echo %s names no customer - skipped", wamid)
        return None
    if Message.objects.filter(wamid=wamid).exists():
        return None
    described = describe_inbound(echo)
    at = receipt.time_of(echo)
    with transaction.atomic():
        _lock_wamid(wamid)
        contact = _contact_for(number, wa_id, user_id, {})
        conversation = _locked_conversation_of(contact, number)
        part = echo.get(described.type)
        try:
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation,
                    direction=Direction.OUT,
                    type=described.type,
                    text=described.text,
                    content=part if isinstance(part, dict) else {},
                    status=MessageStatus.SENT,
                    wamid=wamid,
                    reply_to_wamid=described.reply_to_wamid,
                    sender_kind=SenderKind.PHONE_APP,
                    created_at=at,
                    sent_at=at,
                )
        except IntegrityError:
            return None
        if conversation.last_message_at is None or at >= conversation.last_message_at:
            conversation.last_message_at = at
            conversation.last_message_preview = _preview(message)
        conversation.unread_count = 0  # the business has read and answered on its phone
        conversation.save()
        ticket_actions.on_outbound_message(conversation, message)
        if _apply_pending(message):
            message.save()
        record_event(
            "message.created", message=message_data(message), conversation=conversation_data(conversation)
        )
    return message


HISTORY_STATUS = {
    "READ": MessageStatus.READ,
    "PLAYED": MessageStatus.READ,
    "DELIVERED": MessageStatus.DELIVERED,
    "SENT": MessageStatus.SENT,
    "ERROR": MessageStatus.FAILED,
    "FAILED": MessageStatus.FAILED,
}


def do_import_history_thread(receipt: Receipt, thread: dict[str, Any]) -> int:
    """One thread of the phone app's history (`history`, once, when a coexistence number is onboarded): its
    messages become history of the conversation: shown in order, never counted in reports, no ticket, no
    unread. Chunks come in any order and may repeat: each wamid is stored once. Returns how many were new."""
    number = receipt.number
    customer = _id(thread.get("id"))
    if number is None or not customer:
        log.warning("history thread without a number or customer id skipped")
        return 0
    mark_coexistence(number)
    items = [item for item in thread.get("messages") or [] if isinstance(item, dict) and _id(item.get("id"))]
    wamids = {_id(item.get("id")) for item in items}
    # A thread is named by the customer's phone number, or by their BSUID when they have no number for us.
    wa_id, user_id = (customer, "") if customer.isdigit() else ("", customer)
    with transaction.atomic():
        contact = _contact_for(number, wa_id, user_id, {})
        conversation = _locked_conversation_of(contact, number)
        known = set(Message.objects.filter(wamid__in=wamids).values_list("wamid", flat=True))
        rows: dict[str, Message] = {}
        for item in items:
            wamid = _id(item.get("id"))
            if wamid in known or wamid in rows:
                continue
            sender = _id(item.get("from")) or _id(item.get("from_user_id"))
            outbound = bool(sender) and sender != customer and sender not in (contact.wa_id, contact.user_id)
            described = describe_inbound(item)
            at = receipt.time_of(item)
            state = str(dict_or_empty(item.get("history_context")).get("status") or "").upper()
            status = HISTORY_STATUS.get(state, MessageStatus.SENT) if outbound else MessageStatus.RECEIVED
            part = item.get(described.type)
            rows[wamid] = Message(
                conversation=conversation,
                direction=Direction.OUT if outbound else Direction.IN,
                type=described.type,
                text=described.text,
                content=(part if isinstance(part, dict) else {}) if outbound else item,
                status=status,
                wamid=wamid,
                reply_to_wamid=described.reply_to_wamid,
                sender_kind=SenderKind.PHONE_APP if outbound else SenderKind.CUSTOMER,
                sender_name="" if outbound else contact.name,
                is_history=True,
                created_at=at,
                sent_at=at if outbound else None,
                delivered_at=at if status in (MessageStatus.DELIVERED, MessageStatus.READ) else None,
                read_at=at if status == MessageStatus.READ else None,
            )
        if not rows:
            return 0
        Message.objects.bulk_create(rows.values(), ignore_conflicts=True)
        for message in sorted(rows.values(), key=lambda m: m.created_at):
            if conversation.last_message_at is None or message.created_at >= conversation.last_message_at:
                conversation.last_message_at = message.created_at
                conversation.last_message_preview = _preview(message)
            if message.direction == Direction.IN and (
                conversation.last_inbound_at is None or message.created_at > conversation.last_inbound_at
            ):
                conversation.last_inbound_at = message.created_at
                conversation.window_expires_at = message.created_at + CUSTOMER_SERVICE_WINDOW
        conversation.save()
        record_event("conversation.updated", conversation=conversation_data(conversation))
    return len(rows)


# ------------------------------------------------------------------ contacts and the account


def do_set_marketing_preference(receipt: Receipt, preference: dict[str, Any]) -> Contact | None:
    """`user_preferences`: the customer stopped or resumed marketing messages in WhatsApp. Kept on the contact
    with its time (a contact we have not met yet is created); an older preference never overrides a newer."""
    number = receipt.number
    value = preference.get("value")
    wa_id, user_id = _id(preference.get("wa_id")), _id(preference.get("user_id"))
    if number is None or value not in MarketingPreference.values or not (wa_id or user_id):
        log.warning("user preference skipped (no number, customer or known value): %.300s", preference)
        return None
    at = receipt.time_of(preference)
    with transaction.atomic():
        contact = _contact_for(number, wa_id, user_id, {})
        updated = (
            Contact.objects.filter(pk=contact.pk)
            .filter(Q(marketing_changed_at__isnull=True) | Q(marketing_changed_at__lte=at))
            .exclude(marketing=value, marketing_changed_at=at)
            .update(marketing=value, marketing_changed_at=at)
        )
        if not updated:
            return contact
        contact.refresh_from_db()
        # Meta's own stop (or resume) button: the customer's choice, as a keyword would be.
        if value == MarketingPreference.STOP:
            consent.mark_opted_out(contact, at, "meta", "Stopped marketing messages in WhatsApp")
        else:
            consent.mark_opted_in(contact, at, "meta", "Resumed marketing messages in WhatsApp")
        conversation = (
            Conversation.objects.select_related("contact", "number", "current_ticket")
            .filter(contact=contact)
            .first()
        )
        if conversation is not None:
            record_event("conversation.updated", conversation=conversation_data(conversation))
    return contact


def do_record_account_event(
    number: WhatsAppNumber | None,
    waba_id: str,
    field_name: str,
    value: dict[str, Any],
    occurred_at: datetime,
    digest_source: Any,
) -> AccountEvent | None:
    """An account-level webhook (template, quality, account update, system errors), kept once: a redelivery of
    the same change adds no second row. Returns the new row, or None for a repeat."""
    digest = hashlib.sha256(json.dumps(digest_source, sort_keys=True, default=str).encode()).hexdigest()
    event = value.get("event") or value.get("alert_type") or ""
    try:
        with transaction.atomic():  # a savepoint: a repeat's conflict leaves the caller's transaction usable
            created = AccountEvent.objects.create(
                number=number,
                waba_id=waba_id,
                field=field_name,
                event=str(event),
                value=value,
                occurred_at=occurred_at,
                digest=digest,
            )
    except IntegrityError:
        if not AccountEvent.objects.filter(digest=digest).exists():
            raise
        return None
    log.info("account event %s %s for %s", field_name, event, waba_id)
    return created


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
    media: dict[str, Any] | None = None,
    send: bool = True,
) -> Message:
    """Store an outbound message as `queued`; after commit a Celery task sends it through the Graph API.
    `at` is the moment it was written (default now; tests of history pass it); `media` an agent's file
    (conversations/media.py); `send=False`: the caller sends it (a broadcast, paced)."""
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
            media=media,
        )
        locked.last_message_at = now
        locked.last_message_preview = _preview(message)
        if sender_kind == SenderKind.AGENT:
            locked.unread_count = 0
        locked.save()
        ticket_actions.on_outbound_message(locked, message)
        record_event("message.created", message=message_data(message), conversation=conversation_data(locked))
        if send:
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
        locked = lock_conversation(conversation.pk)  # the lock order: the conversation first
        note = Note.objects.create(
            conversation=locked, author_id=author.pk, author_name=author.display_name, text=text
        )
        record_event("note.created", note=note_data(note))
        for mention in Mention.objects.bulk_create(
            [Mention(note=note, conversation=locked, user_id=user_id) for user_id in mentioned(text, author)]
        ):
            record_event("mention.created", mention=mention_data(mention, note))
    return note


MENTION = re.compile(r"(?<![\w@])@([\w][\w.\-]*)", re.UNICODE)


def mentioned(text: str, author: User) -> list[int]:
    """The members of this tenant a note names with @: by their name's first word, their whole name without
    spaces, or their e-mail's local part (any case). Not the author."""
    handles = {match.group(1).rstrip(".").casefold() for match in MENTION.finditer(text)}
    if not handles:
        return []
    members = Membership.objects.filter(
        tenant__schema_name=_schema_name(), user__is_active=True
    ).select_related("user")
    found = []
    for membership in members:
        user = membership.user
        names = {user.email.split("@")[0].casefold()}
        if user.name.strip():
            names |= {user.name.split()[0].casefold(), "".join(user.name.split()).casefold()}
        if user.pk != author.pk and names & handles:
            found.append(int(user.pk))
    return sorted(found)


def mention_data(mention: Mention, note: Note) -> dict[str, Any]:
    return {
        "id": mention.pk,
        "user": mention.user_id,
        "conversation": mention.conversation_id,
        "note": note.pk,
        "author_name": note.author_name,
        "text": note.text[:300],
        "created_at": mention.created_at.isoformat(),
        "read_at": mention.read_at.isoformat() if mention.read_at else None,
    }


def do_mark_mentions_read(user: User, ids: list[int] | None = None) -> int:
    """The user has seen these mentions of theirs (all of them when `ids` is None)."""
    mentions = Mention.objects.filter(user_id=user.pk, read_at__isnull=True)
    if ids is not None:
        mentions = mentions.filter(pk__in=ids)
    return mentions.update(read_at=timezone.now())


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


def do_set_conversation_status(
    conversation: Conversation, status: str, actor: User | None = None
) -> Conversation:
    """Move a conversation to the Open, Pending or Resolved tab. The tabs follow the current ticket, so this
    changes the ticket (through tickets.actions, with the actor's permissions, and counted in the reports as any
    resolution); a conversation without a ticket keeps a status of its own."""
    if status not in ConversationStatus.values:
        raise ActionError(f"Unknown status {status!r}; use one of {', '.join(ConversationStatus.values)}.")
    with transaction.atomic():
        locked = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("current_ticket")
            .get(pk=conversation.pk)
        )
        ticket = locked.current_ticket
        if ticket is not None:
            if conversation_status_of(ticket.status) != status:
                try:
                    if actor is None:
                        ticket_actions.do_update_ticket(ticket, None, status=status)
                    else:
                        ticket_actions.check_update_ticket(ticket, actor, status=status)
                except ticket_actions.TicketError as error:
                    refused = ActionError(str(error))
                    refused.code, refused.http_status = error.code, error.http_status
                    raise refused from error
        elif Conversation.objects.filter(pk=locked.pk).exclude(status=status).update(status=status):
            locked.status = status
            record_event("conversation.updated", conversation=conversation_data(locked))
    return Conversation.objects.select_related("contact", "number", "current_ticket").get(pk=conversation.pk)


def do_keep_wamid(message_id: int, wamid: str) -> bool:
    """The first bookkeeping once the Graph API has accepted a message: its wamid, in one statement of its
    own. From then on nothing sends the message again (the send claim needs a message without a wamid)."""
    with transaction.atomic():
        return bool(
            Message.objects.filter(pk=message_id)
            .filter(Q(wamid__isnull=True) | Q(wamid=wamid))
            .update(wamid=wamid, send_claimed_at=None)
        )


def do_mark_sent(message_id: int, wamid: str) -> Message:
    """The Graph API accepted the message: keep its wamid and mark it sent (unless a webhook got further),
    then apply any status that overtook the send's answer. Safe to repeat."""
    with transaction.atomic():
        _lock_wamid(wamid)
        message = Message.objects.select_for_update().get(pk=message_id)
        already = message.wamid == wamid and message.status != MessageStatus.QUEUED
        message.wamid = wamid
        message.send_claimed_at = None
        if _moves_forward(message.status, MessageStatus.SENT):
            message.status = MessageStatus.SENT
            message.sent_at = timezone.now()
        if not _apply_pending(message) and already:
            return message
        message.save()
        record_event("message.updated", message=message_data(message))
    return message


def do_mark_send_failed(message_id: int, code: int | None, title: str, details: str) -> Message:
    """Sending failed for good. A message Meta accepted (it has a wamid) is never marked failed here."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.wamid or message.status != MessageStatus.QUEUED:
            return message
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
