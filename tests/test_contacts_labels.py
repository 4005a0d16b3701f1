"""Contacts, labels and canned responses through the REST API: what agents keep about a customer (name,
attributes, labels), the tenant's labels on conversations (and the list filtered by them), and the team's and
each agent's canned responses with their placeholders filled in."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django_tenants.utils import schema_context

from conversations import events
from conversations.models import CannedResponse, Contact, Conversation, InboxEvent, Label
from helpdesk.tenancy.actions import do_add_member
from tests.conftest import ACME, GLOBEX, PASSWORD, fresh_wa_id, issue_token, receive_text, tenant_client


def client_of(user: Any, spec: dict[str, str] = ACME) -> Any:
    return tenant_client(spec, issue_token(user))


def send(client: Any, method: str, path: str, body: Any = None) -> Any:
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


def customer(acme_number: Any, name: str = "Rina", text: str = "halo") -> Conversation:
    message = receive_text(acme_number, fresh_wa_id(), text, int(time.time()), name=name)
    with schema_context("acme"):
        return Conversation.objects.select_related("contact").get(pk=message.conversation_id)


def label(name: str = "VIP", color: str = "#d97706") -> Label:
    with schema_context("acme"):
        return Label.objects.create(name=name, color=color)


# ------------------------------------------------------------------ contacts


def test_contacts_are_found_by_part_of_a_name_or_number_and_by_label(db, alice, acme_number):
    rina = customer(acme_number, "Rina Kusuma").contact
    budi = customer(acme_number, "Budi").contact
    vip = label()
    with schema_context("acme"):
        Contact.objects.filter(pk=budi.pk).update(labels=[vip.pk])
    client = client_of(alice)

    def found(query: str) -> list[int]:
        return [item["id"] for item in client.get(f"/api/v1/contacts/{query}").json()["results"]]

    assert found("?search=kusuma") == [rina.pk]
    assert found(f"?search={rina.wa_id[-6:]}") == [rina.pk]
    assert found(f"?search=%2B{budi.wa_id}") == [budi.pk]  # "+62..." as typed
    assert found(f"?label={vip.pk}") == [budi.pk]
    item = client.get(f"/api/v1/contacts/{rina.pk}/").json()
    assert {
        "id",
        "wa_id",
        "user_id",
        "name",
        "username",
        "labels",
        "attributes",
        "opted_in_at",
        "opted_out_at",
        "marketing",
    } <= set(item)
    assert (item["labels"], item["attributes"]) == ([], {})


def test_an_agent_edits_a_contacts_name_attributes_and_labels_and_the_inbox_hears_it(db, alice, acme_number):
    conversation = customer(acme_number)
    vip = label()
    client = client_of(alice)
    with schema_context("acme"):
        events_before = events.last_event_id()

    response = send(
        client,
        "patch",
        f"/api/v1/contacts/{conversation.contact.pk}/",
        {
            "name": "  Rina   (Surabaya) ",
            "attributes": {"city": "Surabaya", "customer_id": "C-1042"},
            "labels": [vip.pk, vip.pk],
        },
    )

    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["attributes"], response.json()["labels"]) == (
        "Rina (Surabaya)",
        {"city": "Surabaya", "customer_id": "C-1042"},
        [vip.pk],
    )
    again = send(
        client,
        "patch",
        f"/api/v1/contacts/{conversation.contact.pk}/",
        {"attributes": {"city": None, "tier": 2}},
    )
    assert again.json()["attributes"] == {"customer_id": "C-1042", "tier": "2"}
    with schema_context("acme"):
        frames = [e.frame() for e in InboxEvent.objects.filter(pk__gt=events_before).order_by("pk")]
    assert [f["type"] for f in frames] == ["conversation.updated", "conversation.updated"]
    assert frames[-1]["conversation"]["contact"]["attributes"] == {"customer_id": "C-1042", "tier": "2"}


@pytest.mark.parametrize(
    "changes",
    [
        {"wa_id": "123"},
        {"name": 5},
        {"name": "x" * 257},
        {"attributes": ["city"]},
        {"attributes": {"": "x"}},
        {"attributes": {"city": {"nested": 1}}},
        {"attributes": {"city": "x" * 501}},
        {"attributes": {f"k{i}": "v" for i in range(51)}},
        {"labels": [999999]},
        {"labels": ["1"]},
        {"name": "Fine", "labels": "vip"},
    ],
    ids=[
        "read-only-field",
        "name-not-text",
        "name-too-long",
        "attributes-list",
        "empty-key",
        "nested-value",
        "value-too-long",
        "too-many",
        "unknown-label",
        "label-not-an-id",
        "one-bad-field",
    ],
)
def test_a_bad_contact_edit_is_refused_and_changes_nothing(db, alice, acme_number, changes):
    contact = customer(acme_number, "Rina").contact
    client = client_of(alice)
    before = client.get(f"/api/v1/contacts/{contact.pk}/").json()

    response = send(client, "patch", f"/api/v1/contacts/{contact.pk}/", changes)

    assert response.status_code == 400, response.content
    assert set(response.json()) >= {"detail", "code"}
    assert client.get(f"/api/v1/contacts/{contact.pk}/").json() == before


def test_contacts_are_the_tenants_own(db, alice, bob, acme_number):
    contact = customer(acme_number, "Rina").contact
    bob_client = client_of(bob, GLOBEX)

    assert bob_client.get(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert send(bob_client, "patch", f"/api/v1/contacts/{contact.pk}/", {"name": "x"}).status_code == 404
    assert contact.wa_id not in bob_client.get(f"/api/v1/contacts/?search={contact.wa_id}").content.decode()
    assert tenant_client(ACME).get("/api/v1/contacts/").status_code in (401, 403)


# ------------------------------------------------------------------ labels


def test_supervisors_manage_labels_and_agents_apply_them(db, alice, sam, acme_number):
    created = send(client_of(sam), "post", "/api/v1/labels/", {"name": "VIP", "color": "#D97706"})
    assert created.status_code == 201, created.content
    vip = created.json()
    assert vip == {"id": vip["id"], "name": "VIP", "color": "#d97706"}
    assert (
        send(client_of(alice), "post", "/api/v1/labels/", {"name": "Mine", "color": "#000000"}).status_code
        == 403
    )
    assert (
        send(client_of(sam), "post", "/api/v1/labels/", {"name": "vip", "color": "#000000"}).status_code
        == 409
    )
    assert client_of(alice).get("/api/v1/labels/").json() == [vip]

    labelled, other = customer(acme_number), customer(acme_number)
    response = send(
        client_of(alice), "patch", f"/api/v1/conversations/{labelled.pk}/", {"labels": [vip["id"]]}
    )

    assert response.status_code == 200, response.content
    assert response.json()["labels"] == [vip["id"]]
    listed = [
        c["id"] for c in client_of(alice).get(f"/api/v1/conversations/?label={vip['id']}").json()["results"]
    ]
    assert listed == [labelled.pk]
    assert other.pk not in listed


def test_deleting_a_label_takes_it_off_every_conversation_and_contact(db, sam, acme_number):
    vip, keep = label("VIP"), label("Keep", "#000000")
    conversation = customer(acme_number)
    with schema_context("acme"):
        Conversation.objects.filter(pk=conversation.pk).update(labels=[vip.pk, keep.pk])
        Contact.objects.filter(pk=conversation.contact_id).update(labels=[keep.pk, vip.pk])

    assert client_of(sam).delete(f"/api/v1/labels/{vip.pk}/").status_code == 204

    with schema_context("acme"):
        assert Conversation.objects.get(pk=conversation.pk).labels == [keep.pk]
        assert Contact.objects.get(pk=conversation.contact_id).labels == [keep.pk]
        assert not Label.objects.filter(pk=vip.pk).exists()


@pytest.mark.parametrize(
    "body",
    [{"labels": "VIP"}, {"labels": [1.5]}, {"labels": [True]}, {"status": "open"}, {}, [1]],
    ids=["not-a-list", "not-ints", "a-boolean", "another-field", "empty", "not-an-object"],
)
def test_a_bad_conversation_patch_is_refused(db, alice, acme_number, body):
    conversation = customer(acme_number)

    response = send(client_of(alice), "patch", f"/api/v1/conversations/{conversation.pk}/", body)

    assert response.status_code == 400
    with schema_context("acme"):
        assert Conversation.objects.get(pk=conversation.pk).labels == []


@pytest.mark.parametrize(
    "body",
    [{"name": "", "color": "#000000"}, {"name": "x" * 51, "color": "#000000"}, {"name": "A", "color": "red"}],
)
def test_a_bad_label_is_refused(db, sam, body):
    response = send(client_of(sam), "post", "/api/v1/labels/", body)

    assert response.status_code == 400
    with schema_context("acme"):
        assert not Label.objects.exists()


def test_labels_are_the_tenants_own(db, sam, bob, globex):
    vip = label()
    gina = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user

    assert client_of(bob, GLOBEX).get("/api/v1/labels/").json() == []
    assert client_of(gina, GLOBEX).delete(f"/api/v1/labels/{vip.pk}/").status_code == 404
    assert (
        send(client_of(gina), "post", "/api/v1/labels/", {"name": "X", "color": "#000000"}).status_code == 403
    )
    with schema_context("acme"):
        assert Label.objects.filter(pk=vip.pk).exists()


# ------------------------------------------------------------------ canned responses


def test_the_team_shares_canned_responses_and_each_agent_keeps_their_own(
    db, alice, sam, ada, bob, acme_number
):
    shared = send(
        client_of(sam),
        "post",
        "/api/v1/canned-responses/",
        {"name": "terima-kasih", "text": "Terima kasih {{contact.name}}, kami cek dulu ya.", "shared": True},
    )
    assert shared.status_code == 201, shared.content
    mine = send(
        client_of(alice),
        "post",
        "/api/v1/canned-responses/",
        {"name": "salam", "text": "Salam dari {{agent.name}} (tiket {{ticket.id}})", "shared": False},
    )
    assert mine.status_code == 201

    assert [r["name"] for r in client_of(alice).get("/api/v1/canned-responses/").json()["results"]] == [
        "salam",
        "terima-kasih",
    ]
    assert [r["name"] for r in client_of(ada).get("/api/v1/canned-responses/").json()["results"]] == [
        "terima-kasih"
    ]
    assert client_of(bob, GLOBEX).get("/api/v1/canned-responses/").json()["results"] == []
    assert [
        r["name"] for r in client_of(alice).get("/api/v1/canned-responses/?search=cek").json()["results"]
    ] == ["terima-kasih"]

    # an agent may not share, nor change the team's
    refused = send(
        client_of(alice), "post", "/api/v1/canned-responses/", {"name": "x", "text": "y", "shared": True}
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert (
        send(
            client_of(alice), "patch", f"/api/v1/canned-responses/{shared.json()['id']}/", {"text": "changed"}
        ).status_code
        == 403
    )
    assert client_of(alice).delete(f"/api/v1/canned-responses/{shared.json()['id']}/").status_code == 403
    # nor see or change another agent's personal one
    assert client_of(sam).delete(f"/api/v1/canned-responses/{mine.json()['id']}/").status_code == 404
    with schema_context("acme"):
        assert CannedResponse.objects.count() == 2


def test_placeholders_are_filled_for_the_conversation_and_agent(db, alice, acme_number):
    conversation = customer(acme_number, "Rina Kusuma")
    response = send(
        client_of(alice),
        "post",
        "/api/v1/canned-responses/",
        {"name": "salam", "text": "Halo {{contact.name}}, saya {{ agent.name }}. Tiket #{{ticket.id}}."},
    )

    filled = send(
        client_of(alice),
        "post",
        f"/api/v1/canned-responses/{response.json()['id']}/fill/",
        {"conversation": conversation.pk},
    )

    assert filled.status_code == 200
    assert filled.json() == {
        "text": f"Halo Rina Kusuma, saya Alice. Tiket #{conversation.current_ticket_id}."
    }


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "text": "x"},
        {"name": "x", "text": ""},
        {"name": "x", "text": "y" * 4097},
        {"name": "x", "text": "y", "shared": "yes"},
        ["x"],
    ],
)
def test_a_bad_canned_response_is_refused(db, sam, body):
    response = send(client_of(sam), "post", "/api/v1/canned-responses/", body)

    assert response.status_code == 400
    with schema_context("acme"):
        assert not CannedResponse.objects.exists()
