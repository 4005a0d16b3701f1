"""Concurrency: writers of every kind on one conversation at once never deadlock and every write is kept; once
the Graph API has accepted a message it is never sent again, whatever fails in our bookkeeping."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.db import connections
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations import actions, tasks
from conversations.models import Conversation, Message, Note
from tests.conftest import ACME, GRAPH_URL, fresh_wa_id, payload, retarget
from tests.faults import refused_writes
from tickets import actions as ticket_actions
from tickets.models import Ticket

MESSAGES_URL = f"{GRAPH_URL}/{ACME['pnid']}/messages"


@pytest.fixture
def graph(settings: Any) -> Iterator[responses.RequestsMock]:
    """The Graph API, faked at the HTTP level: every send is accepted with a new wamid."""
    settings.WHATSAPP_GRAPH_URL = GRAPH_URL
    counter = itertools.count()

    def accept(request: Any) -> tuple[int, dict[str, str], str]:
        wamid = f"wamid.C{next(counter)}{secrets.token_hex(6)}"
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": wamid}]})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, MESSAGES_URL, callback=accept, content_type="application/json")
        yield mock


def inbound(wa_id: str, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    value = retarget(payload("inbound_text.json"), wa_id=wa_id, text=text)["entry"][0]["changes"][0]["value"]
    return value["messages"][0], value["contacts"]


def run_together(jobs: list[Callable[[], Any]]) -> list[str]:
    """Run the jobs in threads at once (each with its own database connection); the errors they raised."""
    errors: list[str] = []
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], Any]) -> None:
        try:
            start.wait()
            with schema_context("acme"):
                job()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_writers_of_every_kind_on_one_conversation_never_deadlock_and_every_write_is_kept(
    committed_db, graph
):
    from helpdesk.tenancy.models import User, WhatsAppNumber

    acme_number = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    alice, sam = User.objects.get(email="alice@acme.test"), User.objects.get(email="sam@acme.test")
    # given a conversation with a waiting customer and four replies already sent
    wa_id = fresh_wa_id()
    with schema_context("acme"):
        first = actions.do_receive_inbound(acme_number, *inbound(wa_id, "halo"))
        assert first is not None
        conversation = Conversation.objects.get(pk=first.conversation_id)
        sent = []
        for _ in range(4):  # each is sent at its commit (the Celery task runs eagerly in these tests)
            reply = actions.do_queue_outbound(
                conversation, type="text", text="r", content={"body": "r"}, sender_kind="agent", sender=alice
            )
            sent.append(Message.objects.get(pk=reply.pk, status="sent"))
        ticket = Ticket.objects.get(pk=Conversation.objects.get(pk=conversation.pk).current_ticket_id)
    rounds = 6

    def note(i: int) -> Callable[[], Any]:
        return lambda: actions.check_add_note(conversation, sam, f"note {i}")

    def answer(i: int) -> Callable[[], Any]:
        return lambda: actions.check_send_text_reply(conversation, alice, f"reply {i}")

    def customer(i: int) -> Callable[[], Any]:
        return lambda: actions.do_receive_inbound(acme_number, *inbound(wa_id, f"customer {i}"))

    def status(i: int) -> Callable[[], Any]:
        state = ("delivered", "read")[i % 2]
        target = sent[i % len(sent)].wamid
        return lambda: actions.do_apply_status(
            {"id": target, "status": state, "timestamp": str(int(time.time()))}
        )

    def priority(i: int) -> Callable[[], Any]:
        return lambda: ticket_actions.check_update_ticket(
            Ticket.objects.get(pk=ticket.pk), sam, priority=("high", "urgent", "low")[i % 3]
        )

    jobs = [make(i) for i in range(rounds) for make in (note, answer, customer, status, priority)]

    # when they all write at once
    errors = run_together(jobs)

    # then nobody failed, and every write is there
    assert errors == []
    with schema_context("acme"):
        texts = set(Message.objects.filter(conversation=conversation).values_list("text", flat=True))
        assert {f"reply {i}" for i in range(rounds)} <= texts
        assert {f"customer {i}" for i in range(rounds)} <= texts
        assert set(Note.objects.filter(conversation=conversation).values_list("text", flat=True)) == {
            f"note {i}" for i in range(rounds)
        }
        replies = Message.objects.filter(conversation=conversation, text__startswith="reply ")
        assert set(replies.values_list("status", flat=True)) == {"sent"}  # each sent once, and recorded
        for index, message in enumerate(sent):
            message.refresh_from_db()
            assert message.status == ("delivered", "read")[index % 2]
    assert len(graph.calls) == len(sent) + rounds


def test_a_failure_after_meta_accepted_is_retried_as_bookkeeping_and_never_sent_again(
    db, graph, acme_number, alice, django_capture_on_commit_callbacks
):
    # given the database refuses to mark messages sent, twice (a deadlock victim, a lost connection, ...)
    with schema_context("acme"):
        first = actions.do_receive_inbound(acme_number, *inbound(fresh_wa_id(), "halo"))
        assert first is not None
        conversation = Conversation.objects.get(pk=first.conversation_id)
    # when an agent replies (the send task runs at commit)
    with (
        refused_writes("acme", "conversations_message", "NEW.status = 'sent'", times=2),
        django_capture_on_commit_callbacks(execute=True),
        schema_context("acme"),
    ):
        reply = actions.check_send_text_reply(conversation, alice, "On its way")

    # then Meta was called once, and the message is sent with the wamid it returned
    assert len(graph.calls) == 1
    with schema_context("acme"):
        reply.refresh_from_db()
        assert (reply.status, reply.wamid is not None, reply.send_attempts) == ("sent", True, 1)
        # and the sweeper finds nothing to send
        Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    tasks.sweep_outbound_messages()
    assert len(graph.calls) == 1


def test_bookkeeping_that_keeps_failing_is_finished_by_the_sweeper_without_a_second_send(
    db, graph, acme_number, alice, django_capture_on_commit_callbacks
):
    with schema_context("acme"):
        first = actions.do_receive_inbound(acme_number, *inbound(fresh_wa_id(), "halo"))
        assert first is not None
        conversation = Conversation.objects.get(pk=first.conversation_id)
    # given marking the message sent fails for as long as the fault lasts
    with refused_writes("acme", "conversations_message", "NEW.status = 'sent'"):
        with django_capture_on_commit_callbacks(execute=True), schema_context("acme"):
            reply = actions.check_send_text_reply(conversation, alice, "On its way")
        with schema_context("acme"):
            reply.refresh_from_db()
            # then the wamid is kept (nothing can claim it for a send again), the message still queued
            assert (reply.status, reply.wamid is not None) == ("queued", True)
            Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=5))
        tasks.sweep_outbound_messages()  # still failing: still not sent again
        assert len(graph.calls) == 1

    # when the fault is over, the sweeper finishes the bookkeeping
    tasks.sweep_outbound_messages()
    with schema_context("acme"):
        reply.refresh_from_db()
        assert reply.status == "sent"
    assert len(graph.calls) == 1


def test_the_sweeper_honours_the_attempt_limit(db, graph, acme_number, alice):
    with schema_context("acme"):
        first = actions.do_receive_inbound(acme_number, *inbound(fresh_wa_id(), "halo"))
        assert first is not None
        conversation = Conversation.objects.get(pk=first.conversation_id)
        reply = actions.do_queue_outbound(
            conversation,
            type="text",
            text="late",
            content={"body": "late"},
            sender_kind="agent",
            sender=alice,
        )
        # given a queued message that used up its attempts (its last task was lost)
        Message.objects.filter(pk=reply.pk).update(
            send_attempts=tasks.MAX_SEND_ATTEMPTS, created_at=timezone.now() - timedelta(minutes=5)
        )
    # when the sweeper runs, again and again
    for _ in range(3):
        tasks.sweep_outbound_messages()
        with schema_context("acme"):
            tasks.send_message("acme", reply.pk)  # a late duplicate of the task is refused by the claim too
    # then it is failed with a reason, and never sent
    assert len(graph.calls) == 0
    with schema_context("acme"):
        reply.refresh_from_db()
        assert (reply.status, reply.error_title) == ("failed", "Not sent: every attempt was used up")
