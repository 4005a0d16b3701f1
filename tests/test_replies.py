"""Agent replies through the REST API and the Graph API (faked at the HTTP level with `responses`): queueing,
one send per message, retries bounded for retryable errors, none for permanent ones, the 24-hour window,
validation, and the token endpoint."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import requests
import responses
from django.utils import timezone
from django_tenants.utils import schema_context
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.fields import DateTimeField

from conversations import actions, tasks
from conversations.models import Conversation, InboxEvent, Message
from tests.conftest import (
    ACME,
    GLOBEX,
    GRAPH_URL,
    PASSWORD,
    fresh_wa_id,
    issue_token,
    payload,
    post_webhook,
    retarget,
    tenant_client,
)

MESSAGES_URL = f"{GRAPH_URL}/{ACME['pnid']}/messages"


def accepted(wamid: str) -> dict[str, Any]:
    answer = payload("send_response.json")
    answer["messages"][0]["id"] = wamid
    return answer


def open_conversation(number: Any, wa_id: str | None = None, ts: int | None = None) -> Conversation:
    """A conversation in acme whose customer wrote at `ts` (now by default)."""
    value = retarget(payload("inbound_text.json"), wa_id=wa_id or fresh_wa_id(), ts=ts)["entry"][0][
        "changes"
    ][0]["value"]
    with schema_context("acme"):
        received = actions.do_receive_inbound(number, value["messages"][0], value["contacts"])
        assert received is not None
        return Conversation.objects.select_related("contact").get(pk=received.conversation_id)


@pytest.fixture
def conversation(db: None, acme_number: Any) -> Conversation:
    return open_conversation(acme_number)


@pytest.fixture
def alice_token(alice: Any) -> str:
    """Alice's API token (the token endpoint itself is tested below; password hashing is slow)."""
    return issue_token(alice)


def reply(token: str, conversation_id: int, data: dict[str, Any]) -> Any:
    return tenant_client(ACME, token).post(
        f"/api/v1/conversations/{conversation_id}/messages/", data, content_type="application/json"
    )


def queued_reply(conversation: Conversation, alice: Any, text: str = "On its way") -> Message:
    """A reply stored as queued; its send task has not run (the test runs it)."""
    with schema_context("acme"):
        return actions.check_send_text_reply(conversation, alice, text)


def message(pk: int) -> Message:
    with schema_context("acme"):
        return Message.objects.get(pk=pk)


def snapshot(conversation: Conversation) -> dict[str, Any]:
    """Everything a refused reply must leave untouched."""
    with schema_context("acme"):
        c = Conversation.objects.get(pk=conversation.pk)
        return {
            "messages": list(
                Message.objects.filter(conversation=c).order_by("pk").values_list("pk", "status")
            ),
            "conversation": (c.last_message_at, c.last_message_preview, c.unread_count, c.status),
            "events": InboxEvent.objects.count(),
        }


def sent_body(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


# ------------------------------------------------------------------ the happy path


def test_reply_is_queued_then_sent_once_through_the_graph_api(
    graph, conversation, alice_token, django_capture_on_commit_callbacks
):
    # given the Graph API accepts the message
    wamid = "wamid.OUT" + secrets.token_hex(12)
    graph.post(MESSAGES_URL, json=accepted(wamid), status=200)

    # when alice replies through the API (and the send task runs at commit)
    with django_capture_on_commit_callbacks(execute=True):
        response = reply(alice_token, conversation.pk, {"text": "Your parcel arrives tomorrow."})

    # then the answer shows the reply as queued
    assert response.status_code == 201
    body = response.json()
    stored = message(body["id"])
    assert body == {
        "id": stored.pk,
        "conversation": conversation.pk,
        "direction": "out",
        "type": "text",
        "text": "Your parcel arrives tomorrow.",
        "content": {"body": "Your parcel arrives tomorrow.", "preview_url": False},
        "status": "queued",
        "wamid": None,
        "reply_to_wamid": "",
        "sender_kind": "agent",
        "sender_name": "Alice",
        "created_at": DateTimeField().to_representation(stored.created_at),
        "sent_at": None,
        "delivered_at": None,
        "read_at": None,
        "failed_at": None,
        "error_code": None,
        "error_title": "",
        "error_details": "",
        "edited_at": None,
        "deleted": False,
        "deleted_at": None,
        "reactions": {},
        "is_history": False,
        "media": None,
    }
    # and exactly one request went to the Graph API, with the number's token and the documented body
    assert len(graph.calls) == 1
    call = graph.calls[0]
    assert (call.request.method, call.request.url) == ("POST", MESSAGES_URL)
    assert call.request.headers["Authorization"] == "Bearer ACME-ACCESS-TOKEN"
    assert sent_body(call) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+" + conversation.contact.wa_id,
        "type": "text",
        "text": {"body": "Your parcel arrives tomorrow.", "preview_url": False},
    }
    # and the message is now sent with the wamid Meta returned
    assert (stored.status, stored.wamid, stored.send_attempts, stored.error_code) == ("sent", wamid, 1, None)
    assert stored.sent_at is not None
    assert stored.send_claimed_at is None


def test_a_later_sent_status_webhook_changes_nothing(
    graph, conversation, alice_token, django_capture_on_commit_callbacks
):
    # given a reply the Graph API accepted
    wamid = "wamid.OUT" + secrets.token_hex(12)
    graph.post(MESSAGES_URL, json=accepted(wamid), status=200)
    with django_capture_on_commit_callbacks(execute=True):
        pk = reply(alice_token, conversation.pk, {"text": "Hello"}).json()["id"]
    sent = message(pk)
    events_before = snapshot(conversation)["events"]

    # when Meta's `sent` status arrives afterwards
    status = retarget(payload("status_sent.json"))
    status["entry"][0]["changes"][0]["value"]["statuses"][0].update(
        id=wamid, timestamp=str(int(time.time()) + 5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post_webhook(status).status_code == 200

    # then the message is exactly as it was, and no event was recorded
    after = message(pk)
    assert (after.status, after.sent_at, after.wamid) == ("sent", sent.sent_at, wamid)
    assert snapshot(conversation)["events"] == events_before
    assert len(graph.calls) == 1


# ------------------------------------------------------------------ retries

RETRYABLE = {
    "http-500-no-body": ({"body": "", "status": 500}, None, "HTTP 500 from the Graph API", ""),
    "timeout": (
        {"body": requests.Timeout("read timed out")},
        None,
        "The Graph API did not answer in time",
        "read timed out",
    ),
    "130429": (
        {"json": payload("error_130429.json"), "status": 400},
        130429,
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    ),
    "131056": (
        {"json": payload("error_131056.json"), "status": 400},
        131056,
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone number in a short "
        "period of time.",
    ),
}


@pytest.mark.parametrize("failure", RETRYABLE.values(), ids=RETRYABLE.keys())
def test_a_retryable_error_is_retried_and_the_message_ends_sent(
    graph, conversation, alice_token, django_capture_on_commit_callbacks, failure
):
    # given the Graph API fails once, then accepts
    failing, _code, _title, _details = failure
    wamid = "wamid.OUT" + secrets.token_hex(12)
    graph.post(MESSAGES_URL, **failing)
    graph.post(MESSAGES_URL, json=accepted(wamid), status=200)

    # when alice replies
    with django_capture_on_commit_callbacks(execute=True):
        response = reply(alice_token, conversation.pk, {"text": "Hello again"})

    # then the send was tried twice with the same body and ended sent
    assert response.status_code == 201
    assert len(graph.calls) == 2
    assert sent_body(graph.calls[0]) == sent_body(graph.calls[1])
    stored = message(response.json()["id"])
    assert (stored.status, stored.wamid, stored.send_attempts, stored.error_code, stored.error_title) == (
        "sent",
        wamid,
        2,
        None,
        "",
    )


@pytest.mark.parametrize("failure", RETRYABLE.values(), ids=RETRYABLE.keys())
def test_a_retryable_error_that_persists_ends_failed_after_a_bounded_series(
    graph, conversation, alice_token, django_capture_on_commit_callbacks, failure
):
    # given the Graph API keeps failing
    failing, code, title, details = failure
    graph.post(MESSAGES_URL, **failing)

    # when alice replies
    with django_capture_on_commit_callbacks(execute=True):
        response = reply(alice_token, conversation.pk, {"text": "Anyone there?"})

    # then the series stopped after MAX_SEND_ATTEMPTS and the message failed with the last error
    assert response.status_code == 201
    assert tasks.MAX_SEND_ATTEMPTS == 6
    assert len(graph.calls) == tasks.MAX_SEND_ATTEMPTS
    stored = message(response.json()["id"])
    assert (
        stored.status,
        stored.wamid,
        stored.send_attempts,
        stored.error_code,
        stored.error_title,
        stored.error_details,
    ) == ("failed", None, tasks.MAX_SEND_ATTEMPTS, code, title, details)
    assert stored.failed_at is not None
    assert stored.send_claimed_at is None


def test_retry_delays_start_within_ten_seconds_and_grow():
    # the jitter is random: sample each attempt's delay many times
    samples = {attempt: [tasks.retry_delay(attempt) for _ in range(200)] for attempt in range(1, 6)}

    assert min(samples[1]) > 0
    assert max(samples[1]) <= 10
    for attempt in range(1, 5):
        assert max(samples[attempt]) < min(samples[attempt + 1]), attempt
    # and the whole bounded series waits less than ten minutes
    assert sum(max(samples[a]) for a in samples) < 600


# ------------------------------------------------------------------ permanent errors

ERROR_131026 = {
    "error": {
        "message": "(#131026) Message Undeliverable",
        "type": "OAuthException",
        "code": 131026,
        "error_data": {"messaging_product": "whatsapp", "details": "Unable to deliver message."},
        "fbtrace_id": "AbC131026xyz",
    }
}
PERMANENT = {
    "131047": (
        payload("error_131047.json"),
        400,
        131047,
        "(#131047) Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
    ),
    "131026": (ERROR_131026, 400, 131026, "(#131026) Message Undeliverable", "Unable to deliver message."),
    "100": (
        payload("error_100_invalid_parameter.json"),
        400,
        100,
        "(#100) Invalid parameter",
        "The request included one or more unsupported or misspelled parameters.",
    ),
    "190": (
        payload("error_190_token_expired.json"),
        401,
        190,
        "Error validating access token: Session has expired.",
        "",
    ),
}


@pytest.mark.parametrize("error", PERMANENT.values(), ids=PERMANENT.keys())
def test_a_permanent_error_is_not_retried_and_the_message_fails_with_its_code(
    graph, conversation, alice_token, django_capture_on_commit_callbacks, error
):
    # given the Graph API refuses the message for good
    body, http_status, code, title, details = error
    graph.post(MESSAGES_URL, json=body, status=http_status)

    # when alice replies
    with django_capture_on_commit_callbacks(execute=True):
        response = reply(alice_token, conversation.pk, {"text": "Hello"})

    # then there was exactly one attempt and the message failed with the error
    assert response.status_code == 201
    assert len(graph.calls) == 1
    stored = message(response.json()["id"])
    assert (
        stored.status,
        stored.wamid,
        stored.send_attempts,
        stored.error_code,
        stored.error_title,
        stored.error_details,
    ) == ("failed", None, 1, code, title, details)
    assert stored.failed_at is not None


# ------------------------------------------------------------------ one send per message


def test_running_the_send_task_twice_sends_once(graph, conversation, alice, db):
    # given a queued reply and a Graph API that accepts it
    wamid = "wamid.OUT" + secrets.token_hex(12)
    graph.post(MESSAGES_URL, json=accepted(wamid), status=200)
    queued = queued_reply(conversation, alice)

    # when the task is delivered twice
    first = tasks.send_message("acme", queued.pk)
    second = tasks.send_message("acme", queued.pk)

    # then only the first sent it
    assert (first, second) == ("sent", "skipped")
    assert len(graph.calls) == 1
    stored = message(queued.pk)
    assert (stored.status, stored.wamid, stored.send_attempts) == ("sent", wamid, 1)


def test_a_duplicate_task_running_while_the_first_holds_the_claim_sends_nothing(
    graph, conversation, alice, db
):
    # given a queued reply, and a duplicate of its task that runs while the first is talking to the Graph API
    wamid = "wamid.OUT" + secrets.token_hex(12)
    queued = queued_reply(conversation, alice)
    duplicate_results: list[str] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        duplicate_results.append(tasks.send_message("acme", queued.pk))
        return 200, {}, json.dumps(accepted(wamid))

    graph.add_callback(responses.POST, MESSAGES_URL, callback=answer, content_type="application/json")

    # when the first task runs
    result = tasks.send_message("acme", queued.pk)

    # then the duplicate backed off and the message went out once
    assert (result, duplicate_results) == ("sent", ["skipped"])
    assert len(graph.calls) == 1
    stored = message(queued.pk)
    assert (stored.status, stored.wamid, stored.send_attempts) == ("sent", wamid, 1)


def test_a_failed_message_is_not_sent_again_by_a_late_task(graph, conversation, alice, db):
    # given a reply that failed for good
    graph.post(MESSAGES_URL, json=payload("error_131047.json"), status=400)
    queued = queued_reply(conversation, alice)
    assert tasks.send_message("acme", queued.pk) == "failed"

    # when a late copy of its task runs
    result = tasks.send_message("acme", queued.pk)

    # then nothing is sent again
    assert result == "skipped"
    assert len(graph.calls) == 1
    assert message(queued.pk).status == "failed"


# ------------------------------------------------------------------ refused replies


def test_free_text_outside_the_window_is_refused_with_409_and_nothing_is_created(
    graph, db, acme_number, alice_token, django_capture_on_commit_callbacks
):
    # given a customer who last wrote 25 hours ago
    conversation = open_conversation(acme_number, ts=int(time.time()) - 25 * 3600)
    before = snapshot(conversation)

    # when alice tries a free-text reply
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = reply(alice_token, conversation.pk, {"text": "Sorry for the wait"})

    # then it is refused, pointing at templates, and nothing was stored or sent
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The 24-hour customer service window is closed: WhatsApp only accepts an approved template "
        "message until the customer writes again.",
        "code": "window_closed",
    }
    assert "template" in response.json()["detail"]
    assert snapshot(conversation) == before
    assert callbacks == []
    assert len(graph.calls) == 0


def test_a_reply_just_inside_the_window_is_accepted(graph, db, acme_number, alice_token):
    conversation = open_conversation(acme_number, ts=int(time.time()) - 23 * 3600)

    response = reply(alice_token, conversation.pk, {"text": "Still within the day"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"text": ""}, {"text": ["This field may not be blank."]}),
        ({"text": "   \n "}, {"text": ["A reply needs some text."]}),
        ({"text": "x" * 4097}, {"text": ["Ensure this field has no more than 4096 characters."]}),
        ({}, {"text": ["A reply needs some text (or a `template`)."]}),
    ],
    ids=["empty", "blank", "4097-chars", "missing"],
)
def test_an_empty_or_too_long_reply_is_refused_with_400_and_nothing_is_created(
    graph, conversation, alice_token, django_capture_on_commit_callbacks, data, errors
):
    before = snapshot(conversation)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = reply(alice_token, conversation.pk, data)

    assert response.status_code == 400
    assert response.json() == {"detail": f"text: {errors['text'][0]}", "code": "invalid", "fields": errors}
    assert snapshot(conversation) == before
    assert callbacks == []
    assert len(graph.calls) == 0


def test_a_reply_of_exactly_4096_characters_is_accepted(graph, conversation, alice_token):
    response = reply(alice_token, conversation.pk, {"text": "x" * 4096})

    assert response.status_code == 201
    assert message(response.json()["id"]).text == "x" * 4096


def test_a_reply_to_an_unknown_conversation_is_404_and_nothing_is_created(graph, conversation, alice_token):
    before = snapshot(conversation)
    with schema_context("acme"):
        missing = (Conversation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000

    response = reply(alice_token, missing, {"text": "Hello"})

    assert response.status_code == 404
    assert snapshot(conversation) == before


# ------------------------------------------------------------------ the token endpoint


def test_token_endpoint_gives_a_member_their_token(db, alice):
    AuthToken.objects.filter(user=alice).delete()

    response = tenant_client(ACME).post(
        "/api/v1/auth/token/",
        {"email": "alice@acme.test", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200
    token = response.json()["token"]
    stored = AuthToken.objects.get(user=alice)
    assert response.json() == {"token": token, "expiry": DateTimeField().to_representation(stored.expiry)}
    assert tenant_client(ACME, token).get("/api/v1/conversations/").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("alice@acme.test", "not-the-password"),
        ("bob@globex.test", PASSWORD),
        ("nobody@acme.test", PASSWORD),
    ],
    ids=["wrong-password", "other-tenants-user", "unknown-user"],
)
def test_token_endpoint_refuses_wrong_credentials_and_non_members(db, email, password):
    # given no user has a token yet
    AuthToken.objects.all().delete()

    # when someone asks for one on acme's domain
    response = tenant_client(ACME).post(
        "/api/v1/auth/token/", {"email": email, "password": password}, content_type="application/json"
    )

    # then it is refused and no token exists
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Wrong email or password for this helpdesk.",
        "code": "invalid_credentials",
    }
    assert AuthToken.objects.count() == 0


def test_token_endpoint_gives_bob_his_token_on_his_own_domain(db, bob):
    AuthToken.objects.filter(user=bob).delete()

    response = tenant_client(GLOBEX).post(
        "/api/v1/auth/token/",
        {"email": "bob@globex.test", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert AuthToken.objects.get(user=bob).digest == hash_token(response.json()["token"])


def test_the_claim_is_released_after_a_retryable_error(graph, conversation, alice, db):
    # given a Graph API that fails retryably every time (the eager retry chain runs to its end)
    graph.post(MESSAGES_URL, json=payload("error_130429.json"), status=400)
    queued = queued_reply(conversation, alice)
    started = timezone.now()

    # when the task runs
    result = tasks.send_message("acme", queued.pk)

    # then the first attempt scheduled a retry, and the series ended failed with no claim left behind
    assert result == "retrying"
    stored = message(queued.pk)
    assert (stored.status, stored.send_claimed_at, stored.send_attempts) == (
        "failed",
        None,
        tasks.MAX_SEND_ATTEMPTS,
    )
    assert stored.send_retry_at is not None
    assert stored.send_retry_at > started
