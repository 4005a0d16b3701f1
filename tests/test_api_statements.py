"""What a request to the inbox API costs the database: the same statements for a page of 3 as for a page of 50
(no query per row), `SET search_path` exactly once per request (also on a connection fresh from the pool), and
token authentication reading only the token it was given, with its user and membership, in one statement.

A request to a list runs, in order: the tenant of the Host (one statement naming its schema), the tenant's search
path, the token with its user and membership, and the page with the list's count."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context
from knox.models import AuthToken

from conversations import actions
from conversations.models import Conversation
from helpdesk.tenancy.actions import do_issue_api_token
from tests.conftest import ACME, fresh_wa_id, issue_token, receive_text, tenant_client
from tickets.models import Ticket

NOW = int(time.time())
LIST_STATEMENTS = 4  # tenant, SET search_path, token (user, membership), page (count)


def statements(api: Any, url: str) -> tuple[list[str], Any]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries], response


def search_path_sets(sql: list[str]) -> int:
    return sum(1 for statement in sql if statement.startswith("SET search_path"))


@pytest.fixture
def alice_api(alice: Any) -> Any:
    return tenant_client(ACME, issue_token(alice))


def test_the_conversation_list_runs_the_same_statements_for_3_conversations_as_for_50(
    db, acme_number, alice, alice_api
):
    # given 50 conversations: some assigned, some resolved, one without a ticket
    ids = [
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i).conversation_id
        for i in range(50)
    ]
    with schema_context("acme"):
        Ticket.objects.filter(conversation_id__in=ids[:10]).update(assignee=alice)
        for pk in ids[10:13]:
            actions.do_set_conversation_status(Conversation.objects.get(pk=pk), "resolved")
        Conversation.objects.filter(pk=ids[20]).update(current_ticket=None)

    # when alice lists a page of 3 and a page of 50
    small, small_response = statements(alice_api, "/api/v1/conversations/?page_size=3")
    large, large_response = statements(alice_api, "/api/v1/conversations/?page_size=50")

    # then both pages take the same statements, the search path set once
    assert len(small_response.json()["results"]) == 3
    assert len(large_response.json()["results"]) == 50
    assert len(small) == len(large) == LIST_STATEMENTS
    assert search_path_sets(small) == search_path_sets(large) == 1


def test_the_browser_inbox_signed_in_with_a_session_runs_as_many_statements_for_3_as_for_50(
    db, acme_number, alice
):
    # given 50 conversations and alice signed in in a browser (the inbox calls the API with its session)
    for i in range(50):
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)
    browser = tenant_client(ACME)
    browser.force_login(alice)

    small, _ = statements(browser, "/api/v1/conversations/?page_size=3")
    large, _ = statements(browser, "/api/v1/conversations/?page_size=50")

    # then: tenant, search path, session, user, membership, page (with the count), for both
    assert len(small) == len(large) == LIST_STATEMENTS + 2
    assert search_path_sets(small) == search_path_sets(large) == 1


@pytest.mark.parametrize("ordering", ["?status=open", "?ordering=window"])
def test_the_filtered_conversation_lists_run_the_same_statements(db, acme_number, alice_api, ordering):
    for i in range(5):
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i)

    sql, response = statements(alice_api, f"/api/v1/conversations/{ordering}&page_size=3")

    assert len(response.json()["results"]) == 3
    assert len(sql) == LIST_STATEMENTS
    assert search_path_sets(sql) == 1


def test_the_message_list_runs_the_same_statements_for_3_messages_as_for_50(
    db, acme_number, alice, alice_api
):
    # given a conversation of 50 messages, replies among them
    wa_id = fresh_wa_id()
    first = receive_text(acme_number, wa_id, "m0", NOW - 1000)
    for i in range(1, 45):
        receive_text(acme_number, wa_id, f"m{i}", NOW - 1000 + i)
    with schema_context("acme"):
        conversation = Conversation.objects.get(pk=first.conversation_id)
        for i in range(5):
            actions.check_send_text_reply(conversation, alice, f"reply {i}")
    url = f"/api/v1/conversations/{first.conversation_id}/messages/"

    # when alice reads a page of 3, a page of 50, the last page and the messages after the first
    small, small_response = statements(alice_api, f"{url}?page_size=3")
    large, large_response = statements(alice_api, f"{url}?page_size=50")
    last, _ = statements(alice_api, f"{url}?page=last")
    after, after_response = statements(alice_api, f"{url}?after={first.pk}")

    # then every one of them takes the same statements, the search path set once
    assert len(small_response.json()["results"]) == 3
    assert len(large_response.json()["results"]) == 50
    assert len(after_response.json()["results"]) == 49
    assert len(small) == len(large) == len(last) == len(after) == LIST_STATEMENTS
    assert [search_path_sets(sql) for sql in (small, large, last, after)] == [1, 1, 1, 1]


def test_the_note_and_ticket_lists_run_the_same_statements_for_any_page(db, acme_number, alice, alice_api):
    ids = [
        receive_text(acme_number, fresh_wa_id(), f"hello {i}", NOW - 600 + i).conversation_id
        for i in range(5)
    ]
    with schema_context("acme"):
        conversation = Conversation.objects.get(pk=ids[0])
        for i in range(5):
            actions.check_add_note(conversation, alice, f"note {i}")
    notes = f"/api/v1/conversations/{ids[0]}/notes/"

    counts = [len(statements(alice_api, url)[0]) for url in (f"{notes}?page_size=2", notes)]
    counts += [
        len(statements(alice_api, url)[0]) for url in ("/api/v1/tickets/?page_size=2", "/api/v1/tickets/")
    ]

    assert counts == [LIST_STATEMENTS] * 4


def test_the_search_path_is_set_once_per_request_whatever_came_before(db, acme_number, alice, bob):
    # given requests to both tenants, one after the other, on one connection
    conversation_id = receive_text(acme_number, fresh_wa_id(), "hello", NOW - 10).conversation_id
    acme_api = tenant_client(ACME, issue_token(alice))
    globex_api = tenant_client({"domain": "globex.localhost"}, issue_token(bob))
    urls = [
        (acme_api, "/api/v1/conversations/"),
        (acme_api, "/api/v1/conversations/"),
        (globex_api, "/api/v1/conversations/"),
        (acme_api, f"/api/v1/conversations/{conversation_id}/messages/"),
        (acme_api, f"/api/v1/conversations/{conversation_id}/"),
        (globex_api, "/api/v1/me/"),
    ]

    # when each is made
    sets = [search_path_sets(statements(api, url)[0]) for api, url in urls]

    # then each sets the search path exactly once
    assert sets == [1] * len(urls)


def test_the_search_path_is_set_once_on_a_connection_back_from_the_pool(committed_db):
    # given alice's token, and the connection returned to the pool after each request (as a server does)
    from helpdesk.tenancy.models import User

    token, _ = do_issue_api_token(User.objects.get(email="alice@acme.test"))
    api = tenant_client(ACME, token)
    sets = []
    for _ in range(3):
        close_old_connections()  # what Django does when a request ends: the pooled connection goes back

        # when alice lists conversations
        sql, _ = statements(api, "/api/v1/conversations/")
        sets.append(search_path_sets(sql))

    # then each request sets the search path once
    assert sets == [1, 1, 1]


def test_a_request_reads_its_own_token_user_and_membership_in_one_statement(db, alice, alice_api):
    # given alice has four more tokens
    for _ in range(4):
        issue_token(alice)

    # when she calls the API
    sql, response = statements(alice_api, "/api/v1/me/")

    # then one statement reads her token with her user and membership; none reads her other tokens
    assert response.json() == {
        "id": alice.pk,
        "email": "alice@acme.test",
        "name": "Alice",
        "role": "agent",
        "available": True,
    }
    assert len([s for s in sql if "knox_authtoken" in s]) == 1
    assert [s for s in sql if "tenancy_membership" in s] == [s for s in sql if "knox_authtoken" in s]
    assert len(sql) == 3  # tenant, SET search_path, token (user, membership)


def test_a_token_of_a_member_of_another_tenant_is_refused(db, bob):
    # given bob's token (globex)
    api = tenant_client(ACME, issue_token(bob))

    # when he calls acme's API, then he is refused as no member
    response = api.get("/api/v1/conversations/")

    assert response.status_code == 403
    assert response.json() == {
        "detail": "You are not a member of this helpdesk.",
        "code": "permission_denied",
    }


def test_issuing_a_token_deletes_the_users_expired_tokens(db, alice, sam):
    # given alice has an expired and a valid token, and sam an expired one
    expired, valid, sams = issue_token(alice), issue_token(alice), issue_token(sam)
    AuthToken.objects.filter(token_key__in=[expired[:15], sams[:15]]).update(
        expiry=timezone.now() - timedelta(seconds=1)
    )

    # when alice gets a new token
    new = issue_token(alice)

    # then her expired token is gone; her valid one, her new one and sam's stay
    assert set(AuthToken.objects.filter(user=alice).values_list("token_key", flat=True)) == {
        valid[:15],
        new[:15],
    }
    assert AuthToken.objects.filter(user=sam).count() == 1
