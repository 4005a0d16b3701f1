"""Many customer messages and delivery statuses of one tenant at once: the webhook applier's fast path.

Each message ends exactly as `actions.do_receive_inbound` would leave it (stored once per wamid, contact and
conversation created or brought up to date, window, preview, unread count, ticket, counters, an inbox event),
but a batch costs a handful of statements in all plus about one per message (its ticket), instead of twenty
per message. Only plain customer messages come here (text, media, location, contacts, interactive and button
replies, orders, ...) from customers with a phone number: edits, deletions, reactions, system notices and
customers known only by BSUID (or whose BSUID is news to us) go through `do_receive_inbound`, one by one.

It runs inside the webhook applier's transaction, under its per-tenant lock, with the ticket store batching
counters (`tickets.store.BatchStore`) and inbox events buffered (`events.buffered`). Locks, in the order of
conversations/actions.py: (0) every wamid, (2) the conversations, by id, (3) their tickets, by id; counters
and the inbox-event lock come at the batch's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from conversations import actions, broadcasts, consent, media
from conversations.events import record_event
from conversations.models import (
    Contact,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    PendingKind,
    PendingStatus,
    SenderKind,
)
from conversations.serializers import conversation_data, message_data
from helpdesk.db.rows import update_rows
from helpdesk.tenancy.access import current_schema
from helpdesk.tenancy.models import WhatsAppNumber
from tickets import actions as ticket_actions
from tickets import store as ticket_store
from tickets.models import Ticket

# Handled one by one (do_receive_inbound): they change another message, or a contact's identity.
NOT_PLAIN = frozenset({"edit", "revoke", "reaction", "system"})


@dataclass
class Inbound:
    """One customer message of a webhook, with where it came from."""

    number: WhatsAppNumber
    message: dict[str, Any]
    contacts: list[dict[str, Any]]
    received_at: datetime


@dataclass
class _Row:
    item: Inbound
    wamid: str
    wa_id: str
    user_id: str
    name: str
    username: str
    at: datetime


def is_plain(message: dict[str, Any], contacts: list[dict[str, Any]]) -> bool:
    """Whether a message can take the fast path (the rest is for do_receive_inbound)."""
    wamid = actions._id(message.get("id"))
    if message.get("type") in NOT_PLAIN or not _lockable(wamid):
        return False
    wa_id, _, _ = actions._sender_of(message, contacts)
    return bool(wa_id)


def _text(profile: dict[str, Any], key: str) -> str:
    value = profile.get(key)
    return value if isinstance(value, str) else ""


def do_receive_inbound_batch(items: list[Inbound]) -> list[Inbound]:
    """Store plain customer messages (`is_plain`), in order. Returns those that must go through
    do_receive_inbound after all (a BSUID we have not seen with that phone number): the caller applies them one
    by one. Runs inside the caller's transaction; on any error nothing of the batch remains (the caller's
    savepoint) and the caller applies every item one by one."""
    store = ticket_store.current()
    if not isinstance(store, ticket_store.BatchStore):
        raise RuntimeError("messages are stored in bulk inside a batch (tickets.store.using(BatchStore()))")
    rows: list[_Row] = []
    seen: set[str] = set()
    for item in items:
        wamid = actions._id(item.message.get("id"))
        if wamid in seen:
            continue  # a redelivery inside the batch
        seen.add(wamid)
        wa_id, user_id, profile = actions._sender_of(item.message, item.contacts)
        receipt = actions.Receipt(item.number, item.received_at)
        name, username = _text(profile, "name"), _text(profile, "username")
        rows.append(_Row(item, wamid, wa_id, user_id, name, username, receipt.time_of(item.message)))
    if not rows:
        return []
    _lock_wamids(sorted(seen))
    known = set(Message.objects.filter(wamid__in=seen).values_list("wamid", flat=True))
    rows = [row for row in rows if row.wamid not in known]
    contacts = _contacts_of(rows)
    # A BSUID that is news for this customer: do_receive_inbound decides whose it is.
    later = [row for row in rows if row.user_id and contacts[_key(row)].user_id != row.user_id]
    rows = [row for row in rows if not (row.user_id and contacts[_key(row)].user_id != row.user_id)]
    if not rows:
        return [row.item for row in later]
    conversations = _locked_conversations_of(rows, contacts)
    tickets = Ticket.objects.select_for_update().filter(
        pk__in=[c.current_ticket_id for c in conversations.values() if c.current_ticket_id]
    )
    store.preload_tickets(list(tickets.order_by("pk")))
    pending = set(
        PendingStatus.objects.filter(wamid__in=[row.wamid for row in rows]).values_list("wamid", flat=True)
    )
    messages = Message.objects.bulk_create(
        [_message(row, conversations[contacts[_key(row)].pk], contacts[_key(row)]) for row in rows]
    )
    media.download_later([message.pk for message in messages if message.media])
    confirmations = []
    with store.deferred_tickets():
        for row, stored in zip(rows, messages, strict=True):
            contact = contacts[_key(row)]
            conversation = conversations[contact.pk]
            if stored.wamid in pending and actions._apply_pending(stored):
                stored.save()
            previous_window_end = actions.apply_inbound_to_conversation(conversation, stored)
            ticket_actions.on_customer_message(conversation, stored, previous_window_end)
            confirm = consent.do_apply_keyword(conversation, contact, stored)
            if confirm is not None:
                confirmations.append(confirm)
            record_event(
                "message.created", message=message_data(stored), conversation=conversation_data(conversation)
            )
    update_rows(
        Conversation, sorted(conversations.values(), key=lambda conversation: conversation.pk), _CHANGED
    )
    # After the conversations are written: each bot answer moves its own conversation forward.
    for confirm in confirmations:
        confirm()
    broadcasts.note_replies({contacts[_key(row)].pk for row in rows}, max(row.at for row in rows))
    return [row.item for row in later]


# What a customer message changes on its conversation (apply_inbound_to_conversation, on_customer_message).
_CHANGED = (
    "status",
    "last_message_at",
    "last_message_preview",
    "last_inbound_at",
    "window_expires_at",
    "unread_count",
    "current_ticket",
)


def _key(row: _Row) -> tuple[int, str]:
    return (row.item.number.pk, row.wa_id)


_SEPARATOR = "\x1f"  # the ASCII unit separator: never in a wamid we keep (actions._id)


def _lockable(wamid: str) -> bool:
    return bool(wamid) and _SEPARATOR not in wamid


def _lock_wamids(wamids: list[str]) -> None:
    """Step 0 of the lock order for every message of the batch, in one statement (sorted: no deadlock between
    two writers of overlapping wamids)."""
    schema = current_schema()
    with connection.cursor() as cursor:
        # One text, split by the server: binding a list of thousands of strings costs more than the locks.
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtext(%s || key))) FROM unnest(string_to_array(%s, %s)) AS key",
            [f"{schema}.wamid.", _SEPARATOR.join(wamids), _SEPARATOR],
        )


def _contacts_of(rows: list[_Row]) -> dict[tuple[int, str], Contact]:
    """The customers of the rows by (number, phone number): created if new, name and username brought up to
    date (the newest message's profile wins, as one by one)."""
    wanted: dict[tuple[int, str], _Row] = {}
    for row in rows:
        wanted[_key(row)] = row  # the last row of a customer carries the newest profile
    numbers = {number_id for number_id, _ in wanted}
    found = _find_contacts(numbers, {wa_id for _, wa_id in wanted})
    new = [
        Contact(number_id=key[0], wa_id=key[1], user_id=row.user_id, name=row.name, username=row.username)
        for key, row in wanted.items()
        if key not in found
    ]
    if new:
        Contact.objects.bulk_create(new, ignore_conflicts=True)  # a customer created meanwhile is kept
        found = _find_contacts(numbers, {wa_id for _, wa_id in wanted})
    for key, row in wanted.items():
        contact = found[key]
        changed = {
            field: value
            for field, value in (("name", row.name), ("username", row.username))
            if value and getattr(contact, field) != value
        }
        if changed:
            Contact.objects.filter(pk=contact.pk).update(**changed)
            for field, value in changed.items():
                setattr(contact, field, value)
    return found


def _find_contacts(numbers: set[int], wa_ids: set[str]) -> dict[tuple[int, str], Contact]:
    return {
        (contact.number_id, contact.wa_id): contact
        for contact in Contact.objects.filter(number_id__in=numbers, wa_id__in=wa_ids)
    }


def _locked_conversations_of(
    rows: list[_Row], contacts: dict[tuple[int, str], Contact]
) -> dict[int, Conversation]:
    """Step 2: the conversation of every customer, locked in id order (created if new). Keyed by contact id."""
    by_contact = {contacts[_key(row)].pk: contacts[_key(row)] for row in rows}
    numbers = {row.item.number.pk: row.item.number for row in rows}
    locked = {
        conversation.contact_id: conversation
        for conversation in Conversation.objects.select_for_update()
        .filter(contact_id__in=by_contact)
        .order_by("pk")
    }
    missing = [
        Conversation(contact=contact, number_id=contact.number_id)
        for contact_id, contact in by_contact.items()
        if contact_id not in locked
    ]
    for conversation in Conversation.objects.bulk_create(
        missing
    ):  # a conflict fails the batch: one by one then
        locked[conversation.contact_id] = conversation
    for contact_id, conversation in locked.items():
        conversation.contact = by_contact[contact_id]
        conversation.number = numbers[conversation.number_id]
    return locked


def _message(row: _Row, conversation: Conversation, contact: Contact) -> Message:
    described = actions.describe_inbound(row.item.message)
    return Message(
        conversation=conversation,
        direction=Direction.IN,
        type=described.type,
        text=described.text,
        content=row.item.message,
        status=MessageStatus.RECEIVED,
        wamid=row.wamid,
        reply_to_wamid=described.reply_to_wamid,
        sender_kind=SenderKind.CUSTOMER,
        sender_name=contact.name,
        created_at=row.at,
        media=media.inbound_media(row.item.message),
    )


# ------------------------------------------------------------------ delivery statuses

# What a status changes on its message (actions._apply_status_fields).
_STATUS_CHANGED = (
    "status",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "error_code",
    "error_title",
    "error_details",
    "billable",
    "pricing_model",
    "pricing_category",
)


def do_apply_statuses(
    statuses: list[tuple[dict[str, Any], datetime]],
) -> list[tuple[dict[str, Any], datetime]]:
    """Delivery statuses of our outbound messages, in order, as `actions.do_apply_status` applies each (only
    forward; `failed` terminal; a status for a wamid we do not know yet kept for later), with a handful of
    statements for all. Returns the statuses it leaves to the caller (an unknown status name: ignored one by
    one). Like `actions._lock_message`: the messages are locked (step 4 of the lock order) in id order; the
    wamids not found are then locked (step 0, holding no message of theirs) and looked up once more, so an
    update is never left pending beside a message that was stored meanwhile."""
    wamids = {wamid for status, _ in statuses if _lockable(wamid := actions._id(status.get("id")))}
    messages = _locked_outbound(wamids)
    missing = sorted(wamids - messages.keys())
    if missing:
        _lock_wamids(missing)
        messages |= _locked_outbound(set(missing))
    later: list[tuple[dict[str, Any], datetime]] = []
    changed: dict[int, Message] = {}
    pending: list[PendingStatus] = []
    for status, received_at in statuses:
        wamid = actions._id(status.get("id"))
        message = messages.get(wamid)
        if wamid not in wamids or actions._status_name(status) not in actions.STATUS_TIME_FIELD:
            later.append((status, received_at))
        elif message is None:
            pending.append(PendingStatus(wamid=wamid, kind=PendingKind.STATUS, status=status))
        else:
            if actions._apply_status_fields(message, status, received_at):
                changed[message.pk] = message
                record_event("message.updated", message=message_data(message))
            if actions.take_pricing(message, status):
                changed[message.pk] = message
    if changed:
        update_rows(Message, sorted(changed.values(), key=lambda message: message.pk), _STATUS_CHANGED)
    if pending:
        PendingStatus.objects.bulk_create(pending)
    return later


def _locked_outbound(wamids: set[str]) -> dict[str, Message]:
    return {
        str(message.wamid): message
        for message in Message.objects.select_for_update()
        .filter(wamid__in=wamids, direction=Direction.OUT)
        .order_by("pk")
    }
