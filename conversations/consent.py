"""Opt-out and opt-in by the customer's own words: a message that is exactly one of the tenant's keywords
(`STOP`, `BERHENTI`, `UNSUBSCRIBE` / `START`, `MULAI` by default; trimmed, any case) changes the contact's
consent, and a confirmation goes back in the tenant's customer language while the 24-hour window is open.

The keyword message is stored and shown like any other, but it is handled here, not by a person: it neither
opens nor reopens a ticket, nor starts a wait (tickets.actions.on_customer_message asks `keyword_of`). The
confirmation is a bot message (never an agent reply). Meta redelivering the message changes nothing: a message is
stored, and so handled, once per wamid.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import translation
from django.utils.translation import gettext

from conversations.models import Contact, Conversation, Guardrails, Message, SenderKind
from helpdesk.tenancy.access import current_schema

OUT, IN = "out", "in"
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Keywords:
    opt_out: frozenset[str]  # casefolded, for matching
    opt_in: frozenset[str]
    stop_word: str  # the first of each list, as the admin wrote it: what a confirmation tells the customer
    start_word: str


_cache: dict[str, tuple[float, Keywords]] = {}


def keywords() -> Keywords:
    """The current tenant's keywords, casefolded (cached briefly per process, like the support rules)."""
    schema = current_schema()
    cached = _cache.get(schema)
    if cached and clock.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    rules = Guardrails.current()
    found = Keywords(
        frozenset(" ".join(word.split()).casefold() for word in rules.opt_out_keywords),
        frozenset(" ".join(word.split()).casefold() for word in rules.opt_in_keywords),
        (rules.opt_out_keywords or ["STOP"])[0],
        (rules.opt_in_keywords or ["START"])[0],
    )
    _cache[schema] = (clock.monotonic(), found)
    return found


def forget_keywords() -> None:
    _cache.pop(current_schema(), None)


def keyword_of(message: Message) -> str | None:
    """OUT or IN when a customer's message is exactly a keyword (a typed text, or a button's text), else None."""
    if message.direction != "in" or message.type not in ("text", "button"):
        return None
    said = " ".join(message.text.split()).casefold()
    if not said or len(said) > 40:
        return None
    found = keywords()
    if said in found.opt_out:
        return OUT
    if said in found.opt_in:
        return IN
    return None


def do_apply_keyword(
    conversation: Conversation, contact: Contact, message: Message
) -> Callable[[], Message | None] | None:
    """Change the contact's consent for a keyword message (inside the caller's transaction). Returns what sends
    the confirmation (a bot message, queued only while the window is open), for the caller to run once it has
    written the conversation, or None when the message is no keyword."""
    kind = keyword_of(message)
    if kind is None:
        return None
    at = message.created_at
    if kind == OUT:
        mark_opted_out(contact, at, "keyword", message.text.strip())
    else:
        mark_opted_in(contact, at, "keyword", message.text.strip())

    def confirm() -> Message | None:
        from conversations.actions import do_queue_outbound  # actions builds on this module
        from tickets.actions import support_rules

        if not conversation.window_is_open():
            return None
        text = confirmation(kind, support_rules().settings.customer_language)
        return do_queue_outbound(
            conversation,
            type="text",
            text=text,
            content={"body": text, "preview_url": False},
            sender_kind=SenderKind.BOT,
        )

    return confirm


def confirmation(kind: str, language: str) -> str:
    """The confirmation, naming the keyword that undoes it."""
    words = keywords()
    with translation.override(language):
        if kind == OUT:
            return gettext(
                "You will no longer receive promotions and broadcasts from us. To receive them again, reply "
                "%(keyword)s."
            ) % {"keyword": words.start_word}
        return gettext(
            "Welcome back: you will receive our updates again. To stop them, reply %(keyword)s."
        ) % {"keyword": words.stop_word}


def mark_opted_out(contact: Contact, at: datetime, route: str, reason: str) -> bool:
    """Record an opt-out (the first one stands: a later STOP keeps its time). True when it changed."""
    if contact.opted_out_at is not None:
        return False
    contact.opted_out_at, contact.opt_out_route, contact.opt_out_reason = at, route, reason[:500]
    contact.save(update_fields=["opted_out_at", "opt_out_route", "opt_out_reason"])
    return True


def mark_opted_in(contact: Contact, at: datetime, source: str, proof: str) -> bool:
    """The customer asked to hear from us (again): the opt-out is lifted and the opt-in recorded."""
    contact.opted_out_at, contact.opt_out_route, contact.opt_out_reason = None, "", ""
    contact.opted_in_at, contact.opt_in_source, contact.opt_in_proof = at, source, proof[:500]
    contact.save(
        update_fields=[
            "opted_out_at",
            "opt_out_route",
            "opt_out_reason",
            "opted_in_at",
            "opt_in_source",
            "opt_in_proof",
        ]
    )
    return True
