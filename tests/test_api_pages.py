"""`?page_size=` on every paged list of the API: 50 unless given, at most 100 (a larger value gives 100), a 400 in
the error shape for anything but a whole number of at least 1; `next` / `previous` keep it (keyset pages of the
conversation list and numbered pages of messages, notes and tickets alike)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import Conversation, Message
from tests.conftest import ACME, fresh_wa_id, issue_token, receive_text, tenant_client

NOW = int(time.time())
PAGE_SIZE_ERROR = "A whole number from 1 to 100 (larger ones give 100)."


def thread(number: Any, messages: int) -> tuple[int, list[int]]:
    """A new conversation with `messages` inbound messages, one second apart: its id and the messages' ids."""
    wa_id = fresh_wa_id()
    ids = [receive_text(number, wa_id, f"m{i}", NOW - 1000 + i).pk for i in range(messages)]
    with schema_context("acme"):
        conversation_id = Message.objects.get(pk=ids[0]).conversation_id
    return conversation_id, ids


def path_of(link: str) -> str:
    return link.removeprefix("http://acme.localhost")


@pytest.fixture
def alice_api(alice: Any) -> Any:
    return tenant_client(ACME, issue_token(alice))


def test_page_size_sets_the_conversation_pages_and_next_and_previous_keep_it(db, acme_number, alice_api):
    # given 7 more conversations than there were
    for i in range(7):
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)
    with schema_context("acme"):
        expected = list(Conversation.objects.order_by("-last_message_at", "-id").values_list("pk", flat=True))

    # when alice reads pages of 3, following `next`, and goes back one page with `previous`
    first = alice_api.get("/api/v1/conversations/?page_size=3").json()
    second = alice_api.get(path_of(first["next"])).json()
    back = alice_api.get(path_of(second["previous"])).json()

    # then every page holds 3, in order, and the links carry the page size with the cursor
    assert [c["id"] for c in first["results"]] == expected[:3]
    assert [c["id"] for c in second["results"]] == expected[3:6]
    assert [c["id"] for c in back["results"]] == expected[:3]
    assert first["count"] == second["count"] == len(expected)
    assert "page_size=3" in first["next"]
    assert "cursor=" in first["next"]
    assert "page_size=3" in second["previous"]
    assert "page_size=3" in second["next"]


def test_conversations_default_to_pages_of_50_and_an_empty_page_size_is_the_default(
    db, acme_number, alice_api
):
    for i in range(51):
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)

    assert len(alice_api.get("/api/v1/conversations/").json()["results"]) == 50
    assert len(alice_api.get("/api/v1/conversations/?page_size=").json()["results"]) == 50


def test_a_page_size_above_100_gives_100(db, acme_number, alice_api):
    # given a conversation with 105 messages
    conversation_id, ids = thread(acme_number, 105)
    url = f"/api/v1/conversations/{conversation_id}/messages/"

    # when alice asks for pages of 101 and of a number beyond any integer type
    pages = [alice_api.get(f"{url}?page_size={size}").json() for size in ("101", "9" * 40, "0100")]

    # then she gets pages of 100 (and of 100 written with a leading zero), and the rest on the next page
    for page in pages:
        assert [m["id"] for m in page["results"]] == ids[:100]
        assert page["count"] == 105
    rest = alice_api.get(path_of(pages[0]["next"])).json()
    assert [m["id"] for m in rest["results"]] == ids[100:]


def test_page_size_sets_the_message_pages_and_the_last_page(db, acme_number, alice_api):
    # given a conversation with 25 messages
    conversation_id, ids = thread(acme_number, 25)
    url = f"/api/v1/conversations/{conversation_id}/messages/"

    # when alice reads the last page and the first page of 10
    last = alice_api.get(f"{url}?page=last&page_size=10").json()
    first = alice_api.get(f"{url}?page_size=10").json()

    # then the pages hold 10 (the last one the 5 newest), and the links keep the page size
    assert [m["id"] for m in last["results"]] == ids[20:]
    assert [m["id"] for m in first["results"]] == ids[:10]
    assert (last["count"], last["next"]) == (25, None)
    assert last["previous"] == f"http://acme.localhost{url}?page=2&page_size=10"
    assert first["next"] == f"http://acme.localhost{url}?page=2&page_size=10"


def test_page_size_with_after_pages_the_later_messages(db, acme_number, alice_api):
    conversation_id, ids = thread(acme_number, 6)
    url = f"/api/v1/conversations/{conversation_id}/messages/?after={ids[0]}&page_size=2"

    first = alice_api.get(url).json()
    second = alice_api.get(path_of(first["next"])).json()

    assert [m["id"] for m in first["results"]] == ids[1:3]
    assert [m["id"] for m in second["results"]] == ids[3:5]
    assert first["count"] == 5
    assert f"after={ids[0]}" in first["next"]
    assert "page_size=2" in first["next"]


def test_page_size_sets_the_note_pages(db, acme_number, alice, alice_api):
    conversation_id, _ = thread(acme_number, 1)
    with schema_context("acme"):
        conversation = Conversation.objects.get(pk=conversation_id)
        notes = [actions.check_add_note(conversation, alice, f"note {i}").pk for i in range(3)]

    page = alice_api.get(f"/api/v1/conversations/{conversation_id}/notes/?page_size=2").json()

    assert [n["id"] for n in page["results"]] == notes[:2]
    assert page["count"] == 3
    assert (
        page["next"]
        == f"http://acme.localhost/api/v1/conversations/{conversation_id}/notes/?page=2&page_size=2"
    )


def test_page_size_sets_the_ticket_pages(db, acme_number, alice_api):
    for i in range(3):
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)

    page = alice_api.get("/api/v1/tickets/?page_size=2").json()

    assert len(page["results"]) == 2
    assert page["next"] == "http://acme.localhost/api/v1/tickets/?page=2&page_size=2"


LISTS = ["conversations", "messages", "notes", "tickets"]


def list_url(kind: str, conversation_id: int) -> str:
    if kind in ("messages", "notes"):
        return f"/api/v1/conversations/{conversation_id}/{kind}/"
    return f"/api/v1/{kind}/"


@pytest.mark.parametrize("kind", LISTS)
@pytest.mark.parametrize("size", ["0", "000", "-1", "abc", "1.5", "1e2", " 5", "5 ", "+5", "²", "٣"])
def test_a_page_size_that_is_not_a_whole_number_of_at_least_1_is_refused(
    db, acme_number, alice_api, kind, size
):
    conversation_id, _ = thread(acme_number, 1)

    response = alice_api.get(list_url(kind, conversation_id), {"page_size": size})

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"page_size: {PAGE_SIZE_ERROR}",
        "code": "invalid",
        "fields": {"page_size": [PAGE_SIZE_ERROR]},
    }


@pytest.mark.parametrize("kind", ["messages", "notes"])
def test_a_list_of_an_unknown_conversation_is_a_404_whatever_the_page_size(db, alice_api, kind):
    with schema_context("acme"):
        missing = (Conversation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000

    responses = [alice_api.get(list_url(kind, missing), {"page_size": size}) for size in ("0", "10", "")]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert responses[0].json() == {"detail": "No Conversation matches the given query.", "code": "not_found"}


def test_an_empty_list_of_a_conversation_is_an_empty_page(db, acme_number, alice_api):
    conversation_id, ids = thread(acme_number, 1)

    notes = alice_api.get(f"/api/v1/conversations/{conversation_id}/notes/")
    later = alice_api.get(f"/api/v1/conversations/{conversation_id}/messages/?after={ids[-1]}")

    assert notes.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert later.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_the_schema_documents_page_size_on_every_list(db, alice_api):
    schema = alice_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    lists = [
        "/api/v1/conversations/",
        "/api/v1/conversations/{conversation_pk}/messages/",
        "/api/v1/conversations/{conversation_pk}/notes/",
        "/api/v1/tickets/",
    ]
    for path in lists:
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert parameters["page_size"]["in"] == "query"
        assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "default": 50}
        assert "400" in schema["paths"][path]["get"]["responses"]


# ------------------------------------------------------------------ page numbers, as DRF numbers them


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "4", "99999999999999999999999", "9" * 5000])
def test_a_page_that_is_not_there_is_drfs_404(db, acme_number, alice_api, page):
    # given a conversation with 5 messages: three pages of 2
    conversation_id, _ = thread(acme_number, 5)

    response = alice_api.get(
        f"/api/v1/conversations/{conversation_id}/messages/", {"page": page, "page_size": "2"}
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page.", "code": "not_found"}


def test_every_page_by_number_and_the_last_one(db, acme_number, alice_api):
    # given a conversation with 5 messages
    conversation_id, ids = thread(acme_number, 5)
    url = f"/api/v1/conversations/{conversation_id}/messages/"

    # when alice reads pages 1 to 3 of 2, page " 2" (Django reads it as 2) and the last page
    pages = [
        alice_api.get(url, {"page": page, "page_size": "2"}).json() for page in ("1", "2", "3", " 2", "last")
    ]

    # then they are DRF's pages
    assert [[m["id"] for m in page["results"]] for page in pages] == [
        ids[0:2],
        ids[2:4],
        ids[4:],
        ids[2:4],
        ids[4:],
    ]
    assert [page["count"] for page in pages] == [5] * 5
    assert [(page["previous"], page["next"]) for page in pages[:3]] == [
        (None, f"http://acme.localhost{url}?page=2&page_size=2"),
        (f"http://acme.localhost{url}?page_size=2", f"http://acme.localhost{url}?page=3&page_size=2"),
        (f"http://acme.localhost{url}?page=2&page_size=2", None),
    ]
    assert pages[4]["previous"] == f"http://acme.localhost{url}?page=2&page_size=2"


def test_the_last_page_of_a_full_last_page_and_of_an_empty_list(db, acme_number, alice_api):
    conversation_id, ids = thread(acme_number, 4)
    url = f"/api/v1/conversations/{conversation_id}/"

    full = alice_api.get(f"{url}messages/?page=last&page_size=2").json()
    empty = alice_api.get(f"{url}notes/?page=last").json()

    assert [m["id"] for m in full["results"]] == ids[2:]
    assert (full["count"], full["next"]) == (4, None)
    assert empty == {"count": 0, "next": None, "previous": None, "results": []}


def test_an_empty_page_past_a_cursor_still_counts_the_list(db, acme_number, alice_api):
    # given the first page of 2 of the conversations, and every conversation after it resolved meanwhile
    for i in range(3):
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)
    first = alice_api.get("/api/v1/conversations/?status=open&page_size=2").json()
    shown = {c["id"] for c in first["results"]}
    with schema_context("acme"):
        for conversation in Conversation.objects.filter(status="open").exclude(pk__in=shown):
            actions.do_set_conversation_status(conversation, "resolved")

    # when alice follows `next`
    second = alice_api.get(path_of(first["next"])).json()

    # then the page is empty and the count is the open conversations' (the two shown)
    assert second == {"count": 2, "next": None, "previous": None, "results": []}
