"""The inbox REST API of one tenant: conversations (shape, pagination, filter, read, status), messages
(shape, ?after=, ?page=last), authentication, the schema and docs, and the roles that may use it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_tenants.utils import schema_context
from rest_framework.fields import DateTimeField

from conversations import actions
from conversations.models import Conversation, InboxEvent, Message
from tests.conftest import ACME, fresh_wa_id, issue_token, tenant_client
from tests.conftest import receive_text as receive

NOW = int(time.time())


def iso(value: datetime | int) -> str:
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, tz=UTC)
    return DateTimeField().to_representation(value)


def conversation(pk: int) -> Conversation:
    with schema_context("acme"):
        return Conversation.objects.select_related("contact", "current_ticket").get(pk=pk)


def event_count() -> int:
    with schema_context("acme"):
        return InboxEvent.objects.count()


@pytest.fixture
def alice_api(alice: Any) -> Any:
    return tenant_client(ACME, issue_token(alice))


# ------------------------------------------------------------------ conversations


def test_conversation_list_has_the_documented_shape(db, acme_number, alice_api):
    # given a conversation with one inbound message an hour ago
    wa_id = fresh_wa_id()
    ts = NOW - 3600
    received = receive(acme_number, wa_id, "Halo, pesanan saya?", ts)
    stored = conversation(received.conversation_id)

    # when alice lists conversations
    response = alice_api.get("/api/v1/conversations/")

    # then it is there, in this exact shape
    assert response.status_code == 200
    listed = [c for c in response.json()["results"] if c["id"] == stored.pk]
    assert listed == [
        {
            "id": stored.pk,
            "contact": {
                "id": stored.contact.pk,
                "wa_id": wa_id,
                "user_id": "",
                "username": "",
                "name": "Rina",
                "opted_in_at": None,
                "opt_in_source": "",
                "opt_in_proof": "",
                "opted_out_at": None,
                "opt_out_route": "",
                "opt_out_reason": "",
                "marketing": "",
                "marketing_changed_at": None,
                "attributes": {},
                "labels": [],
            },
            "number": {"id": acme_number.pk, "display_number": "15550783881"},
            "status": "open",
            "last_message_at": iso(ts),
            "last_message_preview": "Halo, pesanan saya?",
            "last_inbound_at": iso(ts),
            "window_expires_at": iso(datetime.fromtimestamp(ts, tz=UTC) + timedelta(hours=24)),
            "unread_count": 1,
            "labels": [],
            "ticket": {
                "id": stored.current_ticket.pk,
                "status": "open",
                "priority": "normal",
                "assignee_id": stored.current_ticket.assignee_id,
                "waiting_since": iso(ts),
                "awaiting_first_response": True,
                "reopen_count": 0,
                "response_due_at": iso(stored.current_ticket.response_due_at),
                "resolution_due_at": iso(stored.current_ticket.resolution_due_at),
                "csat_score": None,
            },
            "created_at": iso(stored.created_at),
        }
    ]


def path_of(link: str) -> str:
    return link.removeprefix("http://acme.localhost")


def every_page(api: Any, path: str) -> list[dict[str, Any]]:
    pages = [api.get(path).json()]
    while pages[-1]["next"]:
        pages.append(api.get(path_of(pages[-1]["next"])).json())
    return pages


def test_conversation_list_is_paginated_most_recent_first(db, acme_number, alice_api):
    # given 55 more conversations than there were
    with schema_context("acme"):
        before = Conversation.objects.count()
    mine = [
        receive(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i).conversation_id for i in range(55)
    ]
    total = before + 55
    assert total <= 100
    with schema_context("acme"):
        expected_order = list(
            Conversation.objects.order_by("-last_message_at", "-id").values_list("pk", flat=True)
        )

    # when alice follows `next` to the end
    first, second = every_page(alice_api, "/api/v1/conversations/")

    # then DRF's envelope holds 50 and the rest, newest first, each conversation once
    assert first["count"] == second["count"] == total
    assert first["previous"] is None
    assert second["next"] is None
    assert first["next"].startswith("http://acme.localhost/api/v1/conversations/?cursor=")
    listed = [c["id"] for c in first["results"]] + [c["id"] for c in second["results"]]
    assert len(first["results"]) == 50
    assert listed == expected_order
    assert set(mine) <= set(listed)
    # and `previous` of the second page is the first page again
    again = alice_api.get(path_of(second["previous"])).json()
    assert [c["id"] for c in again["results"]] == [c["id"] for c in first["results"]]
    assert again["previous"] is None
    assert again["next"] == first["next"]


def test_a_conversation_leaving_the_list_pushes_no_other_off_the_next_page(db, acme_number, alice_api):
    # given 55 more open conversations than there were, and the first page of the open ones read
    for i in range(55):
        receive(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)
    with schema_context("acme"):
        open_ones = set(Conversation.objects.filter(status="open").values_list("pk", flat=True))
    first = alice_api.get("/api/v1/conversations/?status=open").json()

    # when a colleague resolves one of them (it leaves the list) before the agent loads more
    with schema_context("acme"):
        actions.do_set_conversation_status(conversation(first["results"][0]["id"]), "resolved")
    second = alice_api.get(path_of(first["next"])).json()

    # then the next page still starts right after the last row shown: none is skipped
    shown = [c["id"] for c in first["results"]] + [c["id"] for c in second["results"]]
    assert sorted(shown) == sorted(open_ones)


def test_a_conversation_moving_to_the_top_repeats_none_on_the_next_page(db, acme_number, alice_api):
    # given 55 more conversations than there were, and the first page read
    for i in range(55):
        receive(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)
    first = alice_api.get("/api/v1/conversations/").json()
    second_page_before = [c["id"] for c in alice_api.get(path_of(first["next"])).json()["results"]]

    # when a conversation of the second page gets a message (it moves to the top; the client gets it live)
    moved = conversation(second_page_before[-1])
    receive(acme_number, moved.contact.wa_id, "me again", NOW)
    second = alice_api.get(path_of(first["next"])).json()

    # then the next page holds the rest, without a row of the first page again
    assert [c["id"] for c in second["results"]] == [pk for pk in second_page_before if pk != moved.pk]


def test_pages_follow_conversations_without_a_message_time(db, acme_number, alice_api):
    # given 55 more conversations, 52 of them without a last message time (sorted first, newest id first)
    ids = [
        receive(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i).conversation_id for i in range(55)
    ]
    with schema_context("acme"):
        Conversation.objects.filter(pk__in=ids[:52]).update(last_message_at=None)
        expected = list(Conversation.objects.order_by("-last_message_at", "-id").values_list("pk", flat=True))
    assert expected[:52] == sorted(ids[:52], reverse=True)

    # when alice follows `next` to the end and `previous` back
    pages = every_page(alice_api, "/api/v1/conversations/")
    back = alice_api.get(path_of(pages[1]["previous"])).json()

    # then every conversation is listed once, in order, and back again
    assert [c["id"] for page in pages for c in page["results"]] == expected
    assert [c["id"] for c in back["results"]] == expected[:50]


def test_window_ordering_pages_by_the_window_end(db, acme_number, alice_api):
    for i in range(55):
        receive(acme_number, fresh_wa_id(), f"hello {i}", NOW - 6000 + i * 60)
    with schema_context("acme"):
        expected = list(
            Conversation.objects.filter(
                window_expires_at__gt=datetime.now(UTC), current_ticket__waiting_since__isnull=False
            )
            .order_by("window_expires_at", "id")
            .values_list("pk", flat=True)
        )
    assert len(expected) >= 55

    pages = every_page(alice_api, "/api/v1/conversations/?ordering=window")

    assert len(pages) == 2
    assert [c["id"] for page in pages for c in page["results"]] == expected
    assert "ordering=window" in pages[0]["next"]


@pytest.mark.parametrize("cursor", ["nonsense", "WzEsICJub3QgYSBkYXRlIiwgN10", ""])
def test_a_bad_cursor_is_refused(db, alice_api, cursor):
    response = alice_api.get(f"/api/v1/conversations/?cursor={cursor}")
    if cursor == "":
        assert response.status_code == 200  # no cursor: the first page
    else:
        assert response.status_code == 400
        assert response.json() == {
            "detail": "cursor: Not a cursor of this list: follow `next` / `previous`.",
            "code": "invalid",
            "fields": {"cursor": ["Not a cursor of this list: follow `next` / `previous`."]},
        }


def test_conversation_list_filters_by_status(db, acme_number, alice_api):
    # given conversations in each status
    by_status = {}
    for status in ("open", "pending", "resolved"):
        pk = receive(acme_number, fresh_wa_id(), status, NOW - 60).conversation_id
        with schema_context("acme"):
            actions.do_set_conversation_status(conversation(pk), status)
        by_status[status] = pk

    for status in ("open", "pending", "resolved"):
        # when alice filters by a status
        response = alice_api.get(f"/api/v1/conversations/?status={status}")

        # then exactly the conversations in that status are listed
        assert response.status_code == 200
        with schema_context("acme"):
            expected = set(Conversation.objects.filter(status=status).values_list("pk", flat=True))
        listed = {c["id"] for c in response.json()["results"]}
        assert listed == expected
        assert by_status[status] in listed
        assert {c["status"] for c in response.json()["results"]} == {status}


def test_conversation_list_refuses_an_unknown_status(db, alice_api):
    response = alice_api.get("/api/v1/conversations/?status=archived")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "status: Use one of: open, pending, resolved.",
        "code": "invalid",
        "fields": {"status": ["Use one of: open, pending, resolved."]},
    }


def test_read_zeroes_the_unread_count(db, acme_number, alice_api):
    # given a conversation with two unread messages
    wa_id = fresh_wa_id()
    receive(acme_number, wa_id, "one", NOW - 20)
    pk = receive(acme_number, wa_id, "two", NOW - 10).conversation_id
    assert conversation(pk).unread_count == 2
    events_before = event_count()

    # when alice opens it
    response = alice_api.post(f"/api/v1/conversations/{pk}/read/")

    # then the count is zero, in the answer and the database, and one event says so
    assert response.status_code == 200
    assert response.json()["unread_count"] == 0
    assert conversation(pk).unread_count == 0
    assert event_count() == events_before + 1

    # when she opens it again, nothing more happens
    assert alice_api.post(f"/api/v1/conversations/{pk}/read/").json()["unread_count"] == 0
    assert event_count() == events_before + 1


def test_status_changes_the_conversation_status(db, acme_number, alice_api):
    pk = receive(acme_number, fresh_wa_id(), "done, thanks", NOW - 10).conversation_id
    events_before = event_count()

    response = alice_api.post(
        f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
    )

    # the status follows the current ticket: the ticket is resolved (ticket.updated + conversation.updated)
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert conversation(pk).status == "resolved"
    assert conversation(pk).current_ticket.status == "resolved"
    assert event_count() == events_before + 2


@pytest.mark.parametrize(
    "data", [{"status": "archived"}, {"status": ""}, {}], ids=["unknown", "empty", "missing"]
)
def test_status_refuses_an_unknown_status_and_changes_nothing(db, acme_number, alice_api, data):
    pk = receive(acme_number, fresh_wa_id(), "hello", NOW - 10).conversation_id
    events_before = event_count()

    response = alice_api.post(f"/api/v1/conversations/{pk}/status/", data, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"Unknown status {data.get('status', '')!r}; use one of open, pending, resolved.",
        "code": "invalid",
    }
    assert conversation(pk).status == "open"
    assert event_count() == events_before


def test_a_resolved_conversation_reopens_when_the_customer_writes(db, acme_number, alice_api):
    wa_id = fresh_wa_id()
    pk = receive(acme_number, wa_id, "thanks", NOW - 20).conversation_id
    alice_api.post(
        f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
    )

    receive(acme_number, wa_id, "one more thing", NOW - 10)

    assert conversation(pk).status == "open"


# ------------------------------------------------------------------ messages


def test_message_list_has_the_documented_shape(db, acme_number, alice_api):
    received = receive(acme_number, fresh_wa_id(), "Is the shop open?", NOW - 30, name="Budi")

    response = alice_api.get(f"/api/v1/conversations/{received.conversation_id}/messages/")

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": received.pk,
                "conversation": received.conversation_id,
                "direction": "in",
                "type": "text",
                "text": "Is the shop open?",
                "content": received.content,
                "status": "received",
                "wamid": received.wamid,
                "reply_to_wamid": "",
                "sender_kind": "customer",
                "sender_name": "Budi",
                "created_at": iso(NOW - 30),
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
        ],
    }


def test_messages_after_an_id_are_only_the_later_ones(db, acme_number, alice, alice_api):
    # given three inbound messages and a reply
    wa_id = fresh_wa_id()
    first = receive(acme_number, wa_id, "one", NOW - 30)
    second = receive(acme_number, wa_id, "two", NOW - 20)
    third = receive(acme_number, wa_id, "three", NOW - 10)
    with schema_context("acme"):
        reply = actions.check_send_text_reply(conversation(first.conversation_id), alice, "four")
    url = f"/api/v1/conversations/{first.conversation_id}/messages/"

    # when alice asks for what came after the first, and after the last
    after_first = alice_api.get(f"{url}?after={first.pk}").json()
    after_last = alice_api.get(f"{url}?after={reply.pk}").json()

    # then she gets exactly the later ones, in order
    assert [m["id"] for m in after_first["results"]] == [second.pk, third.pk, reply.pk]
    assert after_first["count"] == 3
    assert after_last == {"count": 0, "next": None, "previous": None, "results": []}


def test_messages_after_must_be_a_message_id(db, acme_number, alice_api):
    received = receive(acme_number, fresh_wa_id(), "hello", NOW - 10)

    response = alice_api.get(f"/api/v1/conversations/{received.conversation_id}/messages/?after=abc")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "after: A message id (a whole number).",
        "code": "invalid",
        "fields": {"after": ["A message id (a whole number)."]},
    }


def test_messages_page_last_is_the_most_recent_page(db, acme_number, alice_api):
    # given a conversation with 55 messages
    wa_id = fresh_wa_id()
    messages = [receive(acme_number, wa_id, f"m{i}", NOW - 1000 + i) for i in range(55)]
    pk = messages[0].conversation_id

    # when alice opens the last page
    response = alice_api.get(f"/api/v1/conversations/{pk}/messages/?page=last")

    # then it holds the five newest, oldest first
    assert response.status_code == 200
    body = response.json()
    assert [m["id"] for m in body["results"]] == [m.pk for m in messages[50:]]
    assert (body["count"], body["next"], body["previous"]) == (
        55,
        None,
        f"http://acme.localhost/api/v1/conversations/{pk}/messages/",
    )
    assert [m["text"] for m in alice_api.get(f"/api/v1/conversations/{pk}/messages/").json()["results"]] == [
        f"m{i}" for i in range(50)
    ]


def test_messages_of_an_unknown_conversation_are_404(db, alice_api):
    with schema_context("acme"):
        missing = (Conversation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000

    assert alice_api.get(f"/api/v1/conversations/{missing}/messages/").status_code == 404
    assert alice_api.get(f"/api/v1/conversations/{missing}/").status_code == 404


# ------------------------------------------------------------------ who may use it


def test_anonymous_requests_are_refused_and_change_nothing(db, acme_number):
    # given a conversation with an unread message
    received = receive(acme_number, fresh_wa_id(), "hello", NOW - 10)
    pk = received.conversation_id
    before = conversation(pk)
    events_before = event_count()
    anonymous = tenant_client(ACME)

    # when someone without credentials calls the API
    responses = [
        anonymous.get("/api/v1/conversations/"),
        anonymous.get(f"/api/v1/conversations/{pk}/"),
        anonymous.get(f"/api/v1/conversations/{pk}/messages/"),
        anonymous.post(
            f"/api/v1/conversations/{pk}/messages/", {"text": "hi"}, content_type="application/json"
        ),
        anonymous.post(f"/api/v1/conversations/{pk}/read/"),
        anonymous.post(
            f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
        ),
    ]

    # then every call is refused as unauthenticated and nothing changed
    assert [r.status_code for r in responses] == [401] * 6
    assert responses[0].json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    after = conversation(pk)
    assert (after.unread_count, after.status, after.last_message_at) == (1, "open", before.last_message_at)
    with schema_context("acme"):
        assert list(Message.objects.filter(conversation_id=pk).values_list("pk", flat=True)) == [received.pk]
    assert event_count() == events_before


def test_a_wrong_token_is_refused(db):
    response = tenant_client(ACME, "0" * 40).get("/api/v1/conversations/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_api_schema_and_docs_answer(db, alice_api, path):
    response = alice_api.get(path)

    assert response.status_code == 200


def test_api_schema_documents_the_inbox_endpoints(db, alice_api):
    response = alice_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert {
        "/api/v1/auth/token/",
        "/api/v1/conversations/",
        "/api/v1/conversations/{id}/",
        "/api/v1/conversations/{id}/read/",
        "/api/v1/conversations/{id}/status/",
        "/api/v1/conversations/{conversation_pk}/messages/",
    } <= paths


@pytest.mark.parametrize(
    "email", ["alice@acme.test", "sam@acme.test", "ada@acme.test"], ids=["agent", "supervisor", "admin"]
)
def test_every_role_may_use_the_inbox(db, acme_number, email):
    # given a member of acme in any role, and a conversation
    from helpdesk.tenancy.models import User

    user = User.objects.get(email=email)
    api = tenant_client(ACME, issue_token(user))
    pk = receive(acme_number, fresh_wa_id(), "hello", NOW - 10).conversation_id

    # when they list, read, reply and resolve
    listed = api.get("/api/v1/conversations/")
    read = api.post(f"/api/v1/conversations/{pk}/read/")
    replied = api.post(
        f"/api/v1/conversations/{pk}/messages/", {"text": "Hi!"}, content_type="application/json"
    )
    resolved = api.post(
        f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
    )

    # then all of it is allowed
    assert (listed.status_code, read.status_code, replied.status_code, resolved.status_code) == (
        200,
        200,
        201,
        200,
    )
    assert pk in [c["id"] for c in listed.json()["results"]]
    assert replied.json()["sender_name"] == user.display_name
