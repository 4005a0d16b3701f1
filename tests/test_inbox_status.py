"""The inbox tabs (and `?status=`) follow the conversation's current ticket: open -> Open, pending -> Pending,
resolved and closed -> Resolved; a conversation without a ticket keeps a status of its own. Every ticket change
keeps `Conversation.status` in step in the same transaction, the API's filter, the `status` field and the
live frames agree, and POST /conversations/{id}/status/ goes through the ticket."""

from __future__ import annotations

import importlib
import secrets
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from conversations import actions as conversation_actions
from conversations.models import Contact, Conversation, InboxEvent, Message
from tests.conftest import ACME, fresh_wa_id, issue_token, tenant_client
from tickets import actions as ticket_actions
from tickets.models import ReportingEvent, Ticket

NOW = int(time.time())


def receive(number: Any, wa_id: str, ts: int = NOW - 60, text: str = "hello") -> Message:
    message = {
        "from": wa_id,
        "id": f"wamid.ST{secrets.token_hex(10)}",
        "timestamp": str(ts),
        "type": "text",
        "text": {"body": text},
    }
    with schema_context("acme"):
        stored = conversation_actions.do_receive_inbound(
            number, message, [{"profile": {"name": "Rina"}, "wa_id": wa_id}]
        )
    assert stored is not None
    return stored


def api(user: Any) -> Any:
    return tenant_client(ACME, issue_token(user))


def state(conversation_id: int) -> tuple[str, str | None]:
    """(conversation status, current ticket status)."""
    with schema_context("acme"):
        conversation = Conversation.objects.select_related("current_ticket").get(pk=conversation_id)
        ticket = conversation.current_ticket
        return conversation.status, ticket.status if ticket else None


def ticket_id(conversation_id: int) -> int:
    with schema_context("acme"):
        pk = Conversation.objects.get(pk=conversation_id).current_ticket_id
    assert pk is not None
    return pk


def listed(client: Any, status: str) -> set[int]:
    """Every conversation id `?status=` lists (all pages), checking each row's `status` field on the way."""
    ids: set[int] = set()
    url: str | None = f"/api/v1/conversations/?status={status}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        assert {row["status"] for row in page["results"]} <= {status}
        ids |= {row["id"] for row in page["results"]}
        url = page["next"].split("testserver", 1)[-1] if page["next"] else None
    return ids


def tabs(client: Any, *conversation_ids: int) -> dict[int, list[str]]:
    """In which tabs each conversation is listed."""
    found: dict[int, list[str]] = {pk: [] for pk in conversation_ids}
    for status in ("open", "pending", "resolved"):
        ids = listed(client, status)
        for pk in conversation_ids:
            if pk in ids:
                found[pk].append(status)
    return found


def last_event_id() -> int:
    with schema_context("acme"):
        return InboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def frames_after(event_id: int) -> list[dict[str, Any]]:
    with schema_context("acme"):
        return [e.frame() for e in InboxEvent.objects.filter(pk__gt=event_id).order_by("pk")]


# ------------------------------------------------------------------ the tabs follow the ticket


def test_ticket_changes_move_the_conversation_between_the_tabs(db, acme_number, alice):
    # given three customers who wrote (three open tickets)
    client = api(alice)
    a, b, c = (receive(acme_number, fresh_wa_id()).conversation_id for _ in range(3))
    assert tabs(client, a, b, c) == {a: ["open"], b: ["open"], c: ["open"]}

    # when alice resolves a's ticket, sets b's pending and closes c's (the ticket API, as the inbox does)
    for pk, status in ((a, "resolved"), (b, "pending"), (c, "closed")):
        response = client.patch(
            f"/api/v1/tickets/{ticket_id(pk)}/", {"status": status}, content_type="application/json"
        )
        assert response.status_code == 200, response.content

    # then each is listed in exactly the tab of its ticket (closed counts as resolved), with that status
    assert tabs(client, a, b, c) == {a: ["resolved"], b: ["pending"], c: ["resolved"]}
    assert [state(pk) for pk in (a, b, c)] == [
        ("resolved", "resolved"),
        ("pending", "pending"),
        ("resolved", "closed"),
    ]
    assert client.get(f"/api/v1/conversations/{b}/").json()["status"] == "pending"

    # when she reopens a
    client.patch(f"/api/v1/tickets/{ticket_id(a)}/", {"status": "open"}, content_type="application/json")

    # then it is back in Open
    assert tabs(client, a)[a] == ["open"]


def test_the_conversation_frame_of_a_ticket_change_carries_the_new_status(db, acme_number, alice):
    pk = receive(acme_number, fresh_wa_id()).conversation_id
    before = last_event_id()

    api(alice).patch(
        f"/api/v1/tickets/{ticket_id(pk)}/", {"status": "pending"}, content_type="application/json"
    )

    frames = frames_after(before)
    assert [f["type"] for f in frames] == ["ticket.updated", "conversation.updated"]
    assert frames[1]["conversation"]["status"] == "pending"
    assert frames[1]["conversation"]["ticket"]["status"] == "pending"


def test_a_customer_writing_to_a_pending_ticket_moves_the_conversation_back_to_open(db, acme_number, alice):
    wa_id = fresh_wa_id()
    pk = receive(acme_number, wa_id, NOW - 120).conversation_id
    api(alice).patch(
        f"/api/v1/tickets/{ticket_id(pk)}/", {"status": "pending"}, content_type="application/json"
    )
    assert state(pk) == ("pending", "pending")

    receive(acme_number, wa_id, NOW - 60, "any news?")

    assert state(pk) == ("open", "open")
    assert tabs(api(alice), pk)[pk] == ["open"]


def test_a_customer_writing_after_a_closed_ticket_opens_a_new_one_in_the_open_tab(db, acme_number, alice):
    wa_id = fresh_wa_id()
    pk = receive(acme_number, wa_id, NOW - 120).conversation_id
    first = ticket_id(pk)
    api(alice).patch(f"/api/v1/tickets/{first}/", {"status": "closed"}, content_type="application/json")

    receive(acme_number, wa_id, NOW - 60, "hello again")

    assert ticket_id(pk) != first
    assert state(pk) == ("open", "open")


def test_a_change_to_an_older_ticket_leaves_the_conversation_alone(db, acme_number, alice):
    # given a conversation whose first ticket was closed and whose customer opened a new one
    wa_id = fresh_wa_id()
    pk = receive(acme_number, wa_id, NOW - 120).conversation_id
    first = ticket_id(pk)
    api(alice).patch(f"/api/v1/tickets/{first}/", {"status": "closed"}, content_type="application/json")
    receive(acme_number, wa_id, NOW - 60, "hello again")

    # when someone reopens the old ticket... and resolves it
    client = api(alice)
    client.patch(f"/api/v1/tickets/{first}/", {"status": "resolved"}, content_type="application/json")

    # then the conversation follows its current (new, open) ticket only
    assert state(pk) == ("open", "open")


# ------------------------------------------------------------------ POST /conversations/{id}/status/


def test_the_status_endpoint_resolves_the_ticket_and_the_reports_count_it(db, acme_number, alice):
    pk = receive(acme_number, fresh_wa_id()).conversation_id
    ticket = ticket_id(pk)
    before = last_event_id()

    response = api(alice).post(
        f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert response.json()["ticket"]["status"] == "resolved"
    assert state(pk) == ("resolved", "resolved")
    with schema_context("acme"):
        resolved = Ticket.objects.get(pk=ticket)
        assert resolved.resolved_by_id == alice.pk
        assert list(
            ReportingEvent.objects.filter(ticket_id=ticket, name="resolution").values_list(
                "agent_id", flat=True
            )
        ) == [alice.pk]
    assert [f["type"] for f in frames_after(before)] == ["ticket.updated", "conversation.updated"]


@pytest.mark.parametrize(("wanted", "ticket_status"), [("pending", "pending"), ("open", "open")])
def test_the_status_endpoint_sets_the_ticket_pending_or_reopens_it(
    db, acme_number, alice, wanted, ticket_status
):
    pk = receive(acme_number, fresh_wa_id()).conversation_id
    client = api(alice)
    client.patch(f"/api/v1/tickets/{ticket_id(pk)}/", {"status": "closed"}, content_type="application/json")

    response = client.post(
        f"/api/v1/conversations/{pk}/status/", {"status": wanted}, content_type="application/json"
    )

    assert response.status_code == 200
    assert state(pk) == (wanted, ticket_status)


def test_resolving_a_conversation_whose_ticket_is_closed_changes_nothing(db, acme_number, alice):
    pk = receive(acme_number, fresh_wa_id()).conversation_id
    client = api(alice)
    client.patch(f"/api/v1/tickets/{ticket_id(pk)}/", {"status": "closed"}, content_type="application/json")
    before = last_event_id()

    response = client.post(
        f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
    )

    assert response.status_code == 200
    assert state(pk) == ("resolved", "closed")
    assert last_event_id() == before


def test_a_conversation_without_a_ticket_keeps_a_status_of_its_own(db, acme_number, alice):
    # given a conversation no customer message opened a ticket for (e.g. one we started)
    with schema_context("acme"):
        contact = Contact.objects.create(number=acme_number, wa_id=fresh_wa_id())
        pk = Conversation.objects.create(number=acme_number, contact=contact).pk
    client = api(alice)
    assert tabs(client, pk)[pk] == ["open"]
    before = last_event_id()

    # when alice marks it resolved
    response = client.post(
        f"/api/v1/conversations/{pk}/status/", {"status": "resolved"}, content_type="application/json"
    )

    # then it moves to Resolved, with one frame and still no ticket
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert state(pk) == ("resolved", None)
    assert tabs(client, pk)[pk] == ["resolved"]
    assert [f["type"] for f in frames_after(before)] == ["conversation.updated"]


# ------------------------------------------------------------------ existing rows


def test_the_migration_makes_existing_conversations_follow_their_tickets(db, acme_number, alice):
    # given rows written before the tabs followed the tickets: statuses that never changed with the ticket
    client = api(alice)
    a, b, c, d = (receive(acme_number, fresh_wa_id()).conversation_id for _ in range(4))
    for pk, status in ((a, "resolved"), (b, "pending"), (c, "closed")):
        client.patch(f"/api/v1/tickets/{ticket_id(pk)}/", {"status": status}, content_type="application/json")
    with schema_context("acme"):
        Conversation.objects.filter(pk__in=[a, b, c]).update(status="open")
        contact = Contact.objects.create(number=acme_number, wa_id=fresh_wa_id())
        no_ticket = Conversation.objects.create(number=acme_number, contact=contact, status="pending").pk
    assert [state(pk)[0] for pk in (a, b, c, d, no_ticket)] == ["open"] * 4 + ["pending"]

    # when the data migration runs in acme's schema
    migration = importlib.import_module("conversations.migrations.0006_conversation_status_follows_ticket")
    from django.apps import apps

    with schema_context("acme"), connection.schema_editor() as editor:
        migration.follow_current_tickets(apps, editor)

    # then every conversation with a ticket is in its ticket's tab; one without keeps its own status
    assert [state(pk)[0] for pk in (a, b, c, d, no_ticket)] == [
        "resolved",
        "pending",
        "resolved",
        "open",
        "pending",
    ]


# ------------------------------------------------------------------ lock order


def test_ticket_changes_and_customer_messages_at_once_neither_deadlock_nor_drift(committed_db):
    from helpdesk.tenancy.models import User, WhatsAppNumber

    acme_number = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    sam = User.objects.get(email="sam@acme.test")
    # given customers with open tickets
    wa_ids = [fresh_wa_id() for _ in range(6)]
    conversations = [receive(acme_number, wa_id, NOW - 600).conversation_id for wa_id in wa_ids]
    tickets = [ticket_id(pk) for pk in conversations]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def customer(wa_id: str) -> None:
        try:
            start.wait()
            for i in range(8):
                receive(acme_number, wa_id, NOW - 500 + i, f"still there? {i}")
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    def agent(pk: int) -> None:
        try:
            start.wait()
            for i in range(8):
                with schema_context("acme"):
                    ticket = Ticket.objects.get(pk=pk)
                    ticket_actions.do_update_ticket(ticket, sam, status=("pending", "resolved")[i % 2])
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    # when, for each of them, the customer keeps writing while an agent keeps changing the ticket
    for wa_id, pk in zip(wa_ids, tickets, strict=True):
        threads = [
            threading.Thread(target=customer, args=(wa_id,)),
            threading.Thread(target=agent, args=(pk,)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    # then nothing deadlocked and every conversation is in its current ticket's tab
    assert errors == []
    from tickets.models import conversation_status_of

    for pk in conversations:
        conversation_status, ticket_status = state(pk)
        assert ticket_status is not None
        assert conversation_status == conversation_status_of(ticket_status)
