"""Two tenants, one server: a member of globex never reaches acme's data, over the API or in the browser."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import Conversation, InboxEvent, Message
from helpdesk.tenancy.models import WhatsAppNumber
from tests.conftest import ACME, GLOBEX, PASSWORD, fresh_wa_id, issue_token, tenant_client

NOW = int(time.time())


def receive(schema: str, wa_id: str, text: str) -> Conversation:
    spec = ACME if schema == "acme" else GLOBEX
    number = WhatsAppNumber.objects.get(phone_number_id=spec["pnid"])
    message = {
        "from": wa_id,
        "id": f"wamid.ISO{wa_id}",
        "timestamp": str(NOW - 60),
        "type": "text",
        "text": {"body": text},
    }
    with schema_context(schema):
        stored = actions.do_receive_inbound(number, message, [{"profile": {"name": text}, "wa_id": wa_id}])
        assert stored is not None
        return Conversation.objects.select_related("contact").get(pk=stored.conversation_id)


def align_conversation_ids() -> None:
    """Make the next conversation id the same in acme and globex (ids are per schema: they can coincide)."""
    target = 0
    for schema in ("acme", "globex"):
        with schema_context(schema), connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM " + _sequence())
            target = max(target, cursor.fetchone()[0])
    for schema in ("acme", "globex"):
        with schema_context(schema), connection.cursor() as cursor:
            cursor.execute("SELECT setval(%s, %s)", [_sequence(), target + 100])


def _sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('conversations_conversation', 'id')")
        return str(cursor.fetchone()[0])


def state(schema: str) -> dict[str, Any]:
    """Everything of a tenant's inbox a refused request must leave as it was."""
    with schema_context(schema):
        return {
            "conversations": sorted(
                Conversation.objects.values_list("pk", "status", "unread_count", "last_message_at")
            ),
            "messages": sorted(Message.objects.values_list("pk", "status")),
            "events": InboxEvent.objects.count(),
        }


@pytest.fixture
def bob_token(bob: Any) -> str:
    return issue_token(bob)


@pytest.fixture
def twins(db: None) -> dict[str, Conversation]:
    """A conversation in each tenant with the same id, and one more in acme whose id globex does not have."""
    align_conversation_ids()
    twins = {
        "acme": receive("acme", fresh_wa_id(), "Acme customer"),
        "globex": receive("globex", fresh_wa_id(), "Globex customer"),
    }
    twins["acme_only"] = receive("acme", fresh_wa_id(), "Acme second customer")
    assert twins["acme"].pk == twins["globex"].pk
    with schema_context("globex"):
        assert not Conversation.objects.filter(pk=twins["acme_only"].pk).exists()
    return twins


# ------------------------------------------------------------------ API


def test_bobs_token_on_acmes_domain_is_refused_and_changes_nothing(db, twins, bob_token):
    # given acme's inbox as it is
    pk = twins["acme"].pk
    before = state("acme")
    bob_on_acme = tenant_client(ACME, bob_token)

    # when bob uses his valid globex token on acme's domain
    responses = [
        bob_on_acme.get("/api/v1/conversations/"),
        bob_on_acme.get(f"/api/v1/conversations/{pk}/"),
        bob_on_acme.get(f"/api/v1/conversations/{pk}/messages/"),
        bob_on_acme.post(
            f"/api/v1/conversations/{pk}/messages/", {"text": "hi"}, content_type="application/json"
        ),
        bob_on_acme.post(f"/api/v1/conversations/{pk}/read/"),
        bob_on_acme.post(
            f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
        ),
    ]

    # then every call is forbidden, none shows acme's data, and acme's inbox is unchanged
    assert [r.status_code for r in responses] == [403] * 6
    assert {r.content for r in responses} == {
        b'{"detail":"You are not a member of this helpdesk.","code":"permission_denied"}'
    }
    assert state("acme") == before


def test_acme_conversation_ids_are_not_found_on_globex(db, twins, bob_token):
    # given a conversation id that only acme has
    acme_only = twins["acme_only"].pk
    before = {"acme": state("acme"), "globex": state("globex")}
    bob = tenant_client(GLOBEX, bob_token)

    # when bob asks globex's API for it, or writes to it
    responses = [
        bob.get(f"/api/v1/conversations/{acme_only}/"),
        bob.get(f"/api/v1/conversations/{acme_only}/messages/"),
        bob.post(
            f"/api/v1/conversations/{acme_only}/messages/", {"text": "hi"}, content_type="application/json"
        ),
        bob.post(f"/api/v1/conversations/{acme_only}/read/"),
        bob.post(
            f"/api/v1/conversations/{acme_only}/status/",
            {"status": "resolved"},
            content_type="application/json",
        ),
    ]

    # then it does not exist for him, and neither tenant changed
    assert [r.status_code for r in responses] == [404] * 5
    assert {"acme": state("acme"), "globex": state("globex")} == before


def test_when_ids_coincide_each_domain_shows_its_own_tenants_data(db, twins, bob_token, alice):
    pk = twins["acme"].pk
    bob = tenant_client(GLOBEX, bob_token)
    alice_api = tenant_client(ACME, issue_token(alice))

    # when both ask for the same conversation id, each on their own domain
    on_globex = bob.get(f"/api/v1/conversations/{pk}/").json()
    on_acme = alice_api.get(f"/api/v1/conversations/{pk}/").json()
    globex_messages = bob.get(f"/api/v1/conversations/{pk}/messages/").json()["results"]

    # then each sees their own tenant's conversation and messages
    assert (on_globex["id"], on_globex["contact"]["wa_id"], on_globex["contact"]["name"]) == (
        pk,
        twins["globex"].contact.wa_id,
        "Globex customer",
    )
    assert (on_acme["id"], on_acme["contact"]["wa_id"], on_acme["contact"]["name"]) == (
        pk,
        twins["acme"].contact.wa_id,
        "Acme customer",
    )
    assert [m["text"] for m in globex_messages] == ["Globex customer"]


def test_acme_data_never_appears_in_globex_lists(db, twins, bob_token):
    # when bob lists globex's conversations
    listed = tenant_client(GLOBEX, bob_token).get("/api/v1/conversations/").json()

    # then exactly globex's conversations are there, and none of acme's contacts
    with schema_context("globex"):
        globex_ids = set(Conversation.objects.values_list("pk", flat=True))
    with schema_context("acme"):
        acme_wa_ids = set(Conversation.objects.values_list("contact__wa_id", flat=True))
    assert {c["id"] for c in listed["results"]} == globex_ids
    assert listed["count"] == len(globex_ids)
    assert not {c["contact"]["wa_id"] for c in listed["results"]} & acme_wa_ids
    assert twins["globex"].contact.wa_id in {c["contact"]["wa_id"] for c in listed["results"]}


def test_alices_token_on_globexs_domain_is_refused(db, twins, alice):
    before = state("globex")
    alice_on_globex = tenant_client(GLOBEX, issue_token(alice))

    responses = [
        alice_on_globex.get("/api/v1/conversations/"),
        alice_on_globex.post(f"/api/v1/conversations/{twins['globex'].pk}/read/"),
    ]

    assert [r.status_code for r in responses] == [403, 403]
    assert state("globex") == before


# ------------------------------------------------------------------ the browser inbox


def test_inbox_page_sends_anonymous_visitors_to_the_login_page(db):
    response = tenant_client(ACME).get("/inbox/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/inbox/"


def test_inbox_page_is_forbidden_to_a_signed_in_user_of_another_tenant(db, bob):
    # given bob has a session (forced, as if he had signed in somewhere)
    client = tenant_client(ACME)
    client.force_login(bob)

    # when he opens acme's inbox
    response = client.get("/inbox/")

    # then the membership check refuses him, on the styled 403 page
    assert response.status_code == 403
    assert "You are not a member of this helpdesk." in response.content.decode()
    assert 'data-testid="error-page"' in response.content.decode()


def test_inbox_page_opens_for_a_member(db, alice):
    client = tenant_client(ACME)
    client.force_login(alice)

    response = client.get("/inbox/")

    assert response.status_code == 200
    assert response.templates[0].name == "inbox.html"


def test_login_page_refuses_a_user_of_another_tenant(db):
    # given bob's correct globex credentials
    client = tenant_client(ACME)

    # when he signs in on acme's login page
    response = client.post("/login/", {"username": "bob@globex.test", "password": PASSWORD})

    # then the form is shown again with an error and he is not signed in
    assert response.status_code == 200
    assert list(response.context["form"].non_field_errors()) == [
        "Please enter a correct email and password. Note that both fields may be case-sensitive."
    ]
    assert "_auth_user_id" not in client.session
    assert client.get("/inbox/")["Location"] == "/login/?next=/inbox/"


def test_login_page_signs_in_a_member(db, alice):
    client = tenant_client(ACME)

    response = client.post("/login/", {"username": "alice@acme.test", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/inbox/"
    assert client.session["_auth_user_id"] == str(alice.pk)
    assert client.get("/inbox/").status_code == 200
