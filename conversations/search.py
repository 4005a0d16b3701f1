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


def _conversations(filters: Filters) -> QuerySet[Conversation] | None:
    """The conversations the filters allow, or None when they allow all (no join needed)."""
    if not (filters.status or filters.label is not None or filters.assignee is not None):
        return None
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


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _named(query: str) -> QuerySet[Contact]:
    """Contacts whose name or username holds the query, or whose number holds its digits: ILIKE / LIKE on the
    columns themselves, as the trigram indexes are built (Django's icontains would compare UPPER(...), which
    those indexes cannot serve, and scan every contact)."""
    conditions, params = ["name ILIKE %s", "username ILIKE %s"], [_like(query), _like(query)]
    digits = "".join(ch for ch in query if ch.isdigit())
    if len(digits) >= 3:
        conditions.append("wa_id LIKE %s")
        params.append(_like(digits))
    return Contact.objects.extra(where=[" OR ".join(conditions)], params=params)  # noqa: S610 (parameters)


def queries(query: str, filters: Filters) -> tuple[QuerySet[Message], QuerySet[Conversation]]:
    """The matching messages and the conversations whose contact matches (tests EXPLAIN these)."""
    conversations = _conversations(filters)
    messages = Message.objects.filter(deleted_at__isnull=True)
    if conversations is not None:
        messages = messages.filter(conversation__in=conversations)
    messages = messages.filter(_within(filters, "created_at")).extra(  # noqa: S610 (parameters, not text, go in)
        where=[FULL_TEXT], params=[query, query]
    )
    contacts = (Conversation.objects.all() if conversations is None else conversations).filter(
        contact__in=_named(query)
    )
    contacts = contacts.filter(_within(filters, "last_message_at"))
    return messages, contacts


def search(query: str, filters: Filters, limit: int) -> tuple[list[Hit], int, bool]:
    """The first `limit` hits, newest first, how many there are in all (counted up to COUNT_LIMIT), and
    whether there are more than that."""
    query = " ".join(query.split())[:MAX_QUERY]
    if not query:
        return [], 0, False
    messages, contacts = queries(query, filters)
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
    # Counting every match of a common word reads all of them: count up to a bound (nobody pages that far).
    total = _count_up_to(messages, message_rows, limit) + _count_up_to(contacts, contact_rows, limit)
    return hits[:limit], min(total, COUNT_LIMIT), total > COUNT_LIMIT


COUNT_LIMIT = 1000


def _count_up_to(queryset: QuerySet[Any], first_rows: list[Any], limit: int) -> int:
    if len(first_rows) < limit:
        return len(first_rows)
    return queryset.order_by()[: COUNT_LIMIT + 1].count()


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
