"""The inbox search: conversations by the contact's name, number or username (trigram indexes: any part of
them) and by the words of their messages (full-text search in Indonesian and in English: a word finds its
other forms), newest first, with the matching text's places for highlighting. Filters combine with it: status,
label, assignee, dates.

The conditions below are written with exactly the expressions of the indexes in
migrations/0011_search_indexes.py, so that PostgreSQL uses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from conversations.models import Contact, Conversation, Message

MAX_QUERY = 200
WORDS = re.compile(r"\w+", re.UNICODE)
FULL_TEXT = (
    "(to_tsvector('indonesian'::regconfig, text) @@ websearch_to_tsquery('indonesian'::regconfig, %s)"
    " OR to_tsvector('english'::regconfig, text) @@ websearch_to_tsquery('english'::regconfig, %s))"
)


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    label: int | None = None
    assignee: int | None = None
    since: date | None = None
    until: date | None = None
    zone: str = "UTC"


@dataclass(frozen=True)
class Hit:
    conversation_id: int
    message_id: int | None  # None: the contact matched
    at: datetime
    highlights: list[tuple[int, int]]  # [start, end) in the message's text or the contact's name


def _conversations(filters: Filters) -> QuerySet[Conversation]:
    conversations = Conversation.objects.all()
    if filters.status:
        conversations = conversations.filter(status=filters.status)
    if filters.label is not None:
        conversations = conversations.filter(labels__contains=[filters.label])
    if filters.assignee is not None:
        conversations = conversations.filter(current_ticket__assignee_id=filters.assignee)
    return conversations


def _within(filters: Filters, field: str) -> Q:
    zone = ZoneInfo(filters.zone)
    condition = Q()
    if filters.since:
        condition &= Q(**{f"{field}__gte": datetime.combine(filters.since, time.min, zone)})
    if filters.until:
        condition &= Q(**{f"{field}__lt": datetime.combine(filters.until, time.max, zone)})
    return condition


def highlights(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's words (or their beginnings: "pesan" in "pesanan") stand in `text`."""
    words = {word.casefold() for word in WORDS.findall(query) if len(word) > 1}
    found = []
    for match in WORDS.finditer(text):
        token = match.group().casefold()
        if any(token.startswith(word) or (len(token) > 2 and word.startswith(token)) for word in words):
            found.append((match.start(), match.end()))
    if not found and query.strip():  # a part of a number or name: the substring itself
        start = text.casefold().find(query.strip().casefold())
        if start >= 0:
            found.append((start, start + len(query.strip())))
    return found


def search(query: str, filters: Filters, limit: int) -> tuple[list[Hit], int]:
    """The first `limit` hits, newest first, and how many there are in all."""
    query = " ".join(query.split())[:MAX_QUERY]
    if not query:
        return [], 0
    conversations = _conversations(filters)
    messages = (
        Message.objects.filter(conversation__in=conversations, deleted_at__isnull=True)
        .filter(_within(filters, "created_at"))
        .extra(where=[FULL_TEXT], params=[query, query])  # noqa: S610  (parameters, not text, go in)
    )
    digits = "".join(ch for ch in query if ch.isdigit())
    named = Q(name__icontains=query) | Q(username__icontains=query)
    if len(digits) >= 3:
        named |= Q(wa_id__contains=digits)
    contacts = conversations.filter(contact__in=Contact.objects.filter(named)).filter(
        _within(filters, "last_message_at")
    )
    message_rows = list(
        messages.order_by("-created_at", "-pk").values("pk", "conversation_id", "created_at", "text")[:limit]
    )
    contact_rows = list(
        contacts.order_by("-last_message_at", "-pk").values("pk", "last_message_at", "contact__name")[:limit]
    )
    hits = [
        Hit(row["conversation_id"], row["pk"], row["created_at"], highlights(row["text"], query))
        for row in message_rows
    ] + [
        Hit(row["pk"], None, row["last_message_at"], highlights(row["contact__name"] or "", query))
        for row in contact_rows
        if row["last_message_at"] is not None
    ]
    hits.sort(key=lambda hit: (hit.at, hit.message_id or 0), reverse=True)
    total = (len(message_rows) if len(message_rows) < limit else messages.count()) + (
        len(contact_rows) if len(contact_rows) < limit else contacts.count()
    )
    return hits[:limit], total


def as_items(hits: list[Hit], conversation_item: Any, message_item: Any) -> list[dict[str, Any]]:
    """The API's items: each hit's conversation and message (or None), in two statements for the page."""
    conversations = {
        c.pk: c
        for c in Conversation.objects.select_related("contact", "number", "current_ticket").filter(
            pk__in={hit.conversation_id for hit in hits}
        )
    }
    messages = {
        m.pk: m for m in Message.objects.filter(pk__in={hit.message_id for hit in hits if hit.message_id})
    }
    return [
        {
            "conversation": conversation_item(conversations[hit.conversation_id]),
            "message": message_item(messages[hit.message_id]) if hit.message_id else None,
            "match": "message" if hit.message_id else "contact",
            "highlights": [list(span) for span in hit.highlights],
        }
        for hit in hits
        if hit.conversation_id in conversations
    ]
