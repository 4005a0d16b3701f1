"""The satisfaction question (CSAT): asked once per ticket when a person resolves it while the customer's
24-hour window is open, answered with one tap (1 to 5) and kept on the ticket and in the reporting store.

The question is an interactive list (WhatsApp allows at most three reply buttons; a list holds five rows) in the
tenant's customer language; its rows carry `csat:<ticket id>:<score>`, so the answer names its ticket. The
question is a bot message and the answer is not a request for help: neither one starts, ends or measures a
customer's wait, and the answer never reopens the ticket (tickets.actions.on_customer_message).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import translation
from django.utils.translation import gettext

from conversations.models import Conversation, Message, SenderKind
from tickets import store
from tickets.models import ReportingEvent, Ticket

if TYPE_CHECKING:
    from tickets.actions import SupportRules

ANSWER_ID = re.compile(r"csat:([0-9]{1,18}):([1-5])", re.ASCII)
SCORES = (5, 4, 3, 2, 1)  # the best first: the list opens on it


def _score_titles() -> dict[int, str]:
    """Row titles (WhatsApp allows 24 characters), in the active language."""
    return {
        5: gettext("5 - Very satisfied"),
        4: gettext("4 - Satisfied"),
        3: gettext("3 - Neutral"),
        2: gettext("2 - Dissatisfied"),
        1: gettext("1 - Very dissatisfied"),
    }


def question(ticket_id: int, language: str) -> tuple[str, dict[str, Any]]:
    """(the text shown in the thread, the `interactive` object sent to WhatsApp)."""
    with translation.override(language):
        body = gettext("How satisfied are you with the help you received? Tap below to rate it from 1 to 5.")
        titles = _score_titles()
        content = {
            "type": "list",
            "body": {"text": body},
            "action": {
                "button": gettext("Rate our help"),
                "sections": [
                    {
                        "title": gettext("Your rating"),
                        "rows": [
                            {"id": f"csat:{ticket_id}:{score}", "title": titles[score]} for score in SCORES
                        ],
                    }
                ],
            },
        }
    return body, content


def do_offer(rules: SupportRules, ticket: Ticket, now: datetime) -> Message | None:
    """Queue the question for a ticket a person has just resolved (inside the caller's transaction), when the
    tenant asks, the ticket was answered and not asked before, the window is open and the customer has not
    opted out. Returns the queued message, or None when it is not asked."""
    from conversations.actions import do_queue_outbound  # conversations.actions builds on tickets.actions

    if not rules.settings.csat_enabled or ticket.csat_asked_at is not None or ticket.awaiting_first_response:
        return None
    conversation = Conversation.objects.select_related("contact").get(pk=ticket.conversation_id)
    if not conversation.window_is_open(now) or conversation.contact.opted_out_at is not None:
        return None
    text, content = question(ticket.pk, rules.settings.customer_language)
    ticket.csat_asked_at = now
    store.current().save_ticket(ticket, ["csat_asked_at"])
    return do_queue_outbound(
        conversation, type="interactive", text=text, content=content, sender_kind=SenderKind.BOT, at=now
    )


def answer_of(message: Message) -> tuple[int, int] | None:
    """(ticket id, score) when a customer message is a tap on the question's list (or a button of the same
    id), else None."""
    if message.type != "interactive" or not isinstance(message.content, dict):
        return None
    interactive = message.content.get("interactive")
    if not isinstance(interactive, dict):
        return None
    reply = interactive.get(str(interactive.get("type")))
    if interactive.get("type") not in ("list_reply", "button_reply") or not isinstance(reply, dict):
        return None
    found = ANSWER_ID.fullmatch(str(reply.get("id") or ""))
    return (int(found.group(1)), int(found.group(2))) if found else None


def record_answer(rules: SupportRules, ticket: Ticket, score: int, at: datetime) -> bool:
    """Keep the customer's first answer to this ticket's question, measured for the agent who resolved it (else
    its assignee). A second tap changes nothing: the rating given is the rating counted. True when kept."""
    if ticket.csat_asked_at is None or ticket.csat_score is not None:
        return False
    ticket.csat_score, ticket.csat_answered_at = score, at
    agent_id = ticket.resolved_by_id or ticket.assignee_id
    store.current().add_event(
        ReportingEvent(
            name="csat",
            day=rules.calendar.local_date(at),
            event_start=ticket.csat_asked_at,
            event_end=at,
            ticket=ticket,
            conversation_id=ticket.conversation_id,
            number_id=ticket.number_id,
            agent_id=agent_id,
            score=score,
        )
    )
    return True
