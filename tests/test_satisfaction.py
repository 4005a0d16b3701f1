"""The satisfaction question (tickets/satisfaction.py): asked once when a person resolves an answered ticket
inside the 24-hour window, in the tenant's customer language, sent through the (faked) Graph API as a bot
message that never counts as a reply; the customer's tap is kept on the ticket, never reopens it, and the
reports show it per agent and period."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations.models import Conversation, Message, SenderKind
from tests.conftest import (
    ACME,
    GRAPH_URL,
    deliver_webhook,
    fresh_wa_id,
    issue_token,
    payload,
    retarget,
    tenant_client,
)
from tickets import actions
from tickets.models import ReportingEvent, Ticket

MESSAGES_URL = f"{GRAPH_URL}/{ACME['pnid']}/messages"


@pytest.fixture(autouse=True)
def fresh_support_rules() -> Iterator[None]:
    actions._rules_cache.clear()
    yield
    actions._rules_cache.clear()


def customer_writes(
    capture: Any, wa_id: str, message: dict[str, Any] | None = None, ts: int | None = None
) -> None:
    """A customer message through the signed webhook (a text, or the given message object)."""
    p = retarget(payload("inbound_text.json"), wa_id=wa_id, text="tolong bantu", ts=ts)
    if message is not None:
        value = p["entry"][0]["changes"][0]["value"]
        value["messages"] = [
            {
                **message,
                "from": wa_id,
                "id": "wamid.TEST" + secrets.token_hex(10),
                "timestamp": str(ts or int(time.time())),
            }
        ]
    deliver_webhook(capture, p)


def rating(ticket_id: int, score: int, kind: str = "list_reply") -> dict[str, Any]:
    """The customer's tap on a row of the question (or a button with the same id)."""
    return {
        "type": "interactive",
        "interactive": {"type": kind, kind: {"id": f"csat:{ticket_id}:{score}", "title": f"{score}"}},
    }


def conversation_of(wa_id: str) -> Conversation:
    with schema_context("acme"):
        return Conversation.objects.select_related("current_ticket").get(contact__wa_id=wa_id)


def ticket_of(wa_id: str) -> Ticket:
    with schema_context("acme"):
        return Ticket.objects.get(pk=conversation_of(wa_id).current_ticket_id)


def api(user: Any) -> Any:
    return tenant_client(ACME, issue_token(user))


def answered_ticket(capture: Any, alice: Any, wa_id: str) -> Ticket:
    """A customer wrote and alice answered (both through the API and the webhook)."""
    customer_writes(capture, wa_id)
    with capture(execute=True):
        answer = api(alice).post(
            f"/api/v1/conversations/{conversation_of(wa_id).pk}/messages/",
            {"text": "Baik, kami cek"},
            content_type="application/json",
        )
    assert answer.status_code == 201, answer.content
    return ticket_of(wa_id)


def resolve(capture: Any, user: Any, ticket: Ticket) -> Any:
    with capture(execute=True):
        response = api(user).patch(
            f"/api/v1/tickets/{ticket.pk}/", {"status": "resolved"}, content_type="application/json"
        )
    assert response.status_code == 200, response.content
    return response.json()


def questions(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [body for body in sent if body.get("type") == "interactive"]


def test_resolving_an_answered_ticket_asks_once_in_indonesian_as_a_bot(
    db, sent, alice, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    wa_id = fresh_wa_id()
    ticket = answered_ticket(capture, alice, wa_id)
    with schema_context("acme"):
        responses_before = ReportingEvent.objects.filter(ticket=ticket, name="response").count()

    body = resolve(capture, alice, ticket)

    # one interactive list went to the customer: five rows naming this ticket, in Indonesian (the default)
    [question] = questions(sent)
    assert question["to"] == "+" + wa_id
    rows = question["interactive"]["action"]["sections"][0]["rows"]
    assert [row["id"] for row in rows] == [f"csat:{ticket.pk}:{score}" for score in (5, 4, 3, 2, 1)]
    assert rows[0]["title"] == "5 - Sangat puas"
    assert all(len(row["title"]) <= 24 for row in rows)
    assert question["interactive"]["type"] == "list"
    assert "puas" in question["interactive"]["body"]["text"]
    assert (body["csat_asked_at"] is not None, body["csat_score"]) == (True, None)
    with schema_context("acme"):
        stored = Message.objects.get(conversation__contact__wa_id=wa_id, type="interactive")
        assert (stored.sender_kind, stored.status) == (SenderKind.BOT, "sent")
        # a bot message: no response measured, and the ticket stays resolved
        assert ReportingEvent.objects.filter(ticket=ticket, name="response").count() == responses_before
        assert Ticket.objects.get(pk=ticket.pk).status == "resolved"

    # reopened by a person and resolved again: not asked a second time
    with django_capture_on_commit_callbacks(execute=True):
        api(alice).patch(f"/api/v1/tickets/{ticket.pk}/", {"status": "open"}, content_type="application/json")
    resolve(capture, alice, ticket)
    assert len(questions(sent)) == 1


def test_the_answer_is_kept_never_reopens_and_shows_in_the_reports(
    db, sent, alice, sam, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    wa_id = fresh_wa_id()
    ticket = answered_ticket(capture, alice, wa_id)
    resolve(capture, alice, ticket)
    today = timezone.localdate().isoformat()
    reports = api(sam)
    before = reports.get(f"/api/v1/reports/summary/?from={today}&to={today}").json()["csat"]

    customer_writes(capture, wa_id, rating(ticket.pk, 4))

    kept = ticket_of(wa_id)
    assert (kept.pk, kept.status, kept.reopen_count, kept.csat_score) == (ticket.pk, "resolved", 0, 4)
    assert kept.waiting_since is None
    assert conversation_of(wa_id).status == "resolved"
    summary = reports.get(f"/api/v1/reports/summary/?from={today}&to={today}").json()["csat"]
    assert summary["responses"] == before["responses"] + 1
    assert summary["satisfied"] == before["satisfied"] + 1
    mine = reports.get(f"/api/v1/reports/agents/?from={today}&to={today}&agent={alice.pk}").json()["results"]
    assert mine[0]["csat"]["responses"] >= 1
    with schema_context("acme"):
        [row] = ReportingEvent.objects.filter(ticket=ticket, name="csat")
        assert (row.score, row.agent_id) == (4, alice.pk)

    # a second tap changes nothing: the first rating is the one counted
    customer_writes(capture, wa_id, rating(ticket.pk, 1, kind="button_reply"))
    assert ticket_of(wa_id).csat_score == 4
    with schema_context("acme"):
        assert ReportingEvent.objects.filter(ticket=ticket, name="csat").count() == 1
    assert reports.get(f"/api/v1/reports/summary/?from={today}&to={today}").json()["csat"] == summary


def test_an_answer_naming_another_ticket_is_an_ordinary_message(
    db, sent, alice, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    wa_id = fresh_wa_id()
    ticket = answered_ticket(capture, alice, wa_id)
    resolve(capture, alice, ticket)

    customer_writes(capture, wa_id, rating(ticket.pk + 100000, 5))

    reopened = ticket_of(wa_id)
    assert (reopened.pk, reopened.status, reopened.reopen_count) == (ticket.pk, "open", 1)
    assert reopened.csat_score is None


@pytest.mark.parametrize("case", ["disabled", "unanswered", "window_closed", "english"])
def test_when_the_question_is_asked_and_in_which_language(
    case, db, sent, alice, ada, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    wa_id = fresh_wa_id()
    admin = api(ada)
    if case in ("disabled", "english"):
        changes = {"csat_enabled": False} if case == "disabled" else {"customer_language": "en"}
        answer = admin.patch("/api/v1/settings/support/", changes, content_type="application/json")
        assert answer.status_code == 200, answer.content
        assert all(answer.json()[key] == value for key, value in changes.items())
    if case == "unanswered":
        customer_writes(capture, wa_id)
        ticket = ticket_of(wa_id)
    else:
        ticket = answered_ticket(capture, alice, wa_id)
    if case == "window_closed":
        with schema_context("acme"):
            Conversation.objects.filter(contact__wa_id=wa_id).update(
                window_expires_at=timezone.now() - timedelta(minutes=1)
            )

    resolve(capture, alice, ticket)

    asked = questions(sent)
    if case == "english":
        [question] = asked
        assert question["interactive"]["action"]["sections"][0]["rows"][0]["title"] == "5 - Very satisfied"
    else:
        assert asked == []
        assert ticket_of(wa_id).csat_asked_at is None


def test_support_settings_refuse_a_bad_language_or_flag(db, ada):
    admin = api(ada)
    for changes in ({"customer_language": "fr"}, {"csat_enabled": "yes"}, {"customer_language": ["id"]}):
        answer = admin.patch("/api/v1/settings/support/", changes, content_type="application/json")
        assert answer.status_code == 400, (changes, answer.content)
    current = admin.get("/api/v1/settings/support/").json()
    assert (current["customer_language"], current["csat_enabled"]) == ("id", True)
