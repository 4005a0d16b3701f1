"""@mentions in private notes: the colleagues of this tenant a note names are told live and find it in their
mentions until they read it; the author, strangers and other tenants' users are never mentioned."""

from __future__ import annotations

import time
from typing import Any

from django_tenants.utils import schema_context

from conversations import events
from conversations.models import InboxEvent, Mention
from helpdesk.tenancy.actions import do_add_member
from tests.conftest import ACME, GLOBEX, PASSWORD, fresh_wa_id, issue_token, receive_text, tenant_client


def note(user: Any, conversation_id: int, text: str) -> Any:
    response = tenant_client(ACME, issue_token(user)).post(
        f"/api/v1/conversations/{conversation_id}/notes/", {"text": text}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response


def test_a_note_mentions_colleagues_by_first_name_whole_name_or_email_and_tells_them_live(
    db, alice, sam, ada, acme_number
):
    conversation_id = receive_text(acme_number, fresh_wa_id(), "halo", int(time.time())).conversation_id
    with schema_context("acme"):
        before = events.last_event_id()

    note(
        alice,
        conversation_id,
        "@Sam tolong cek ya, cc @ada. (@alice: me; @nobody; email@sam.test is not one)",
    )

    with schema_context("acme"):
        mentioned = sorted(Mention.objects.values_list("user_id", flat=True))
        frames = [e.frame() for e in InboxEvent.objects.filter(pk__gt=before, type="mention.created")]
    assert mentioned == sorted([sam.pk, ada.pk])
    assert sorted(f["mention"]["user"] for f in frames) == sorted([sam.pk, ada.pk])
    assert frames[0]["mention"]["conversation"] == conversation_id
    assert frames[0]["mention"]["author_name"] == "Alice"


def test_mentions_are_listed_for_the_one_mentioned_until_read(db, alice, sam, acme_number):
    conversation_id = receive_text(acme_number, fresh_wa_id(), "halo", int(time.time())).conversation_id
    note(alice, conversation_id, "@sam bisa bantu?")
    note(alice, conversation_id, "@Sam sudah?")
    client = tenant_client(ACME, issue_token(sam))

    listed = client.get("/api/v1/mentions/").json()
    assert listed["unread"] == 2
    assert [m["text"] for m in listed["results"]] == ["@Sam sudah?", "@sam bisa bantu?"]
    assert tenant_client(ACME, issue_token(alice)).get("/api/v1/mentions/").json() == {
        "unread": 0,
        "results": [],
    }

    first = listed["results"][0]["id"]
    assert client.post("/api/v1/mentions/", {"ids": [first]}, content_type="application/json").json() == {
        "marked": 1
    }
    assert client.get("/api/v1/mentions/?unread=1").json()["unread"] == 1
    assert client.post("/api/v1/mentions/", {}, content_type="application/json").json() == {"marked": 1}
    assert client.get("/api/v1/mentions/").json()["unread"] == 0
    assert (
        client.post("/api/v1/mentions/", {"ids": "all"}, content_type="application/json").status_code == 400
    )


def test_only_active_members_of_this_tenant_can_be_mentioned(db, alice, sam, globex, acme_number):
    do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina")
    sam.is_active = False
    sam.save()
    conversation_id = receive_text(acme_number, fresh_wa_id(), "halo", int(time.time())).conversation_id

    note(alice, conversation_id, "@gina @bob @sam anyone?")

    with schema_context("acme"):
        assert not Mention.objects.exists()
    assert tenant_client(GLOBEX).get("/api/v1/mentions/").status_code in (401, 403)
