"""Delivery status webhooks: progress only moves forward, repeats change nothing, `failed` is terminal."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import InboxEvent, Message
from conversations.serializers import message_data
from tests.conftest import deliver_webhook, fresh_wa_id, payload, retarget

NOW = int(time.time())


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


@pytest.fixture
def sent_message(db: None, acme_number: Any, alice: Any) -> Message:
    """An agent reply in acme that the Graph API accepted (status `sent`, with its wamid)."""
    wa_id = fresh_wa_id()
    inbound = retarget(payload("inbound_text.json"), wa_id=wa_id)["entry"][0]["changes"][0]["value"]
    with schema_context("acme"):
        received = actions.do_receive_inbound(acme_number, inbound["messages"][0], inbound["contacts"])
        assert received is not None
        reply = actions.check_send_text_reply(received.conversation, alice, "Your parcel left the warehouse")
        return actions.do_mark_sent(reply.pk, "wamid.OUT" + secrets.token_hex(12))


def status_webhook(name: str, wamid: str, ts: int, status: str | None = None) -> dict[str, Any]:
    p = retarget(payload(name))
    entry = p["entry"][0]["changes"][0]["value"]["statuses"][0]
    entry.update(id=wamid, timestamp=str(ts))
    if status is not None:
        entry["status"] = status
    return p


def state(message: Message) -> dict[str, Any]:
    with schema_context("acme"):
        message = Message.objects.get(pk=message.pk)
    return {
        "status": message.status,
        "sent_at": message.sent_at,
        "delivered_at": message.delivered_at,
        "read_at": message.read_at,
        "failed_at": message.failed_at,
        "error_code": message.error_code,
        "error_title": message.error_title,
        "error_details": message.error_details,
    }


def event_count() -> int:
    with schema_context("acme"):
        return InboxEvent.objects.count()


def last_event() -> dict[str, Any]:
    with schema_context("acme"):
        return InboxEvent.objects.order_by("-pk")[0].frame()


def test_statuses_in_order_record_each_step(sent_message, django_capture_on_commit_callbacks):
    # given a sent message
    before = state(sent_message)
    events_before = event_count()

    # when delivered, then read arrive
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", sent_message.wamid, NOW + 20),
    )
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_read.json", sent_message.wamid, NOW + 30)
    )

    # then both steps are kept with their WhatsApp timestamps, one event each
    assert state(sent_message) == {
        **before,
        "status": "read",
        "delivered_at": at(NOW + 20),
        "read_at": at(NOW + 30),
    }
    assert event_count() == events_before + 2
    with schema_context("acme"):
        current = message_data(Message.objects.get(pk=sent_message.pk))
    assert last_event() == {"type": "message.updated", "id": last_event()["id"], "message": current}


def test_statuses_out_of_order_only_move_forward(sent_message, django_capture_on_commit_callbacks):
    # given a sent message
    before = state(sent_message)
    events_before = event_count()

    # when read arrives first, then delivered, then sent
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_read.json", sent_message.wamid, NOW + 30)
    )
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", sent_message.wamid, NOW + 20),
    )
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_sent.json", sent_message.wamid, NOW + 10)
    )

    # then it stays read; the late delivered only fills in its own time, the late sent changes nothing
    assert state(sent_message) == {
        **before,
        "status": "read",
        "read_at": at(NOW + 30),
        "delivered_at": at(NOW + 20),
    }
    assert before["sent_at"] is not None
    assert event_count() == events_before + 2


def test_the_same_status_twice_changes_nothing_and_records_no_second_event(
    sent_message, django_capture_on_commit_callbacks
):
    # given a delivered message
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", sent_message.wamid, NOW + 20),
    )
    after_first = state(sent_message)
    events_after_first = event_count()

    # when the same status arrives again (with a later timestamp)
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", sent_message.wamid, NOW + 25),
    )

    # then nothing changed
    assert after_first["delivered_at"] == at(NOW + 20)
    assert state(sent_message) == after_first
    assert event_count() == events_after_first


def test_failed_is_terminal_and_keeps_the_error_of_the_status(
    sent_message, django_capture_on_commit_callbacks
):
    # given a sent message
    before = state(sent_message)
    failed = status_webhook("status_failed_131047.json", sent_message.wamid, NOW + 20)
    error = failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]

    # when it fails
    deliver_webhook(django_capture_on_commit_callbacks, failed)

    # then the error code, title and details are kept
    failed_state = {
        **before,
        "status": "failed",
        "failed_at": at(NOW + 20),
        "error_code": 131047,
        "error_title": "Re-engagement message",
        "error_details": "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    }
    assert error["error_data"]["details"] == failed_state["error_details"]
    assert state(sent_message) == failed_state
    events_after_failure = event_count()

    # when later receipts arrive (delivered, read, failed again)
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", sent_message.wamid, NOW + 30),
    )
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_read.json", sent_message.wamid, NOW + 40)
    )
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_failed_131047.json", sent_message.wamid, NOW + 50),
    )

    # then it stays failed as it was
    assert state(sent_message) == failed_state
    assert event_count() == events_after_failure


def test_failed_after_read_is_ignored(sent_message, django_capture_on_commit_callbacks):
    # given a read message
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_read.json", sent_message.wamid, NOW + 30)
    )
    read_state = state(sent_message)
    events_after_read = event_count()

    # when a failure arrives for it
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_failed_131047.json", sent_message.wamid, NOW + 40),
    )

    # then it stays read with no error
    assert read_state["status"] == "read"
    assert state(sent_message) == read_state
    assert (read_state["error_code"], read_state["failed_at"]) == (None, None)
    assert event_count() == events_after_read


def test_failed_after_delivered_is_kept(sent_message, django_capture_on_commit_callbacks):
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", sent_message.wamid, NOW + 20),
    )

    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_failed_131047.json", sent_message.wamid, NOW + 40),
    )

    assert (state(sent_message)["status"], state(sent_message)["failed_at"]) == ("failed", at(NOW + 40))


def test_played_counts_as_read(sent_message, django_capture_on_commit_callbacks):
    # given a sent voice reply
    before = state(sent_message)

    # when the customer plays it
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_read.json", sent_message.wamid, NOW + 30, status="played"),
    )

    # then it is read at that time
    assert state(sent_message) == {**before, "status": "read", "read_at": at(NOW + 30)}


def test_a_status_for_an_unknown_wamid_changes_nothing(sent_message, django_capture_on_commit_callbacks):
    # given the messages as they are
    unknown = "wamid.UNKNOWN" + secrets.token_hex(12)
    before = state(sent_message)
    events_before = event_count()
    with schema_context("acme"):
        messages_before = sorted(Message.objects.values_list("pk", "status", "wamid"))

    # when a status for a message we never sent arrives
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_delivered.json", unknown, NOW + 20)
    )

    # then it is acknowledged and nothing changed
    assert state(sent_message) == before
    assert event_count() == events_before
    with schema_context("acme"):
        assert sorted(Message.objects.values_list("pk", "status", "wamid")) == messages_before
        assert not Message.objects.filter(wamid=unknown).exists()


def test_a_status_naming_an_inbound_message_changes_nothing(
    acme_number, db, django_capture_on_commit_callbacks
):
    # given an inbound message
    inbound = retarget(payload("inbound_text.json"), wa_id=fresh_wa_id())["entry"][0]["changes"][0]["value"]
    with schema_context("acme"):
        received = actions.do_receive_inbound(acme_number, inbound["messages"][0], inbound["contacts"])
    assert received is not None
    events_before = event_count()

    # when a status names its wamid
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_read.json", received.wamid, NOW + 20)
    )

    # then it stays as received
    with schema_context("acme"):
        received.refresh_from_db()
    assert (received.status, received.read_at) == ("received", None)
    assert event_count() == events_before


def test_status_payload_files_are_what_these_tests_assume():
    def first_status(name: str) -> dict[str, Any]:
        return payload(name)["entry"][0]["changes"][0]["value"]["statuses"][0]

    assert [first_status(f"status_{s}.json")["status"] for s in ("sent", "delivered", "read")] == [
        "sent",
        "delivered",
        "read",
    ]
    assert first_status("status_failed_131047.json")["errors"][0]["code"] == 131047


def test_a_status_that_overtakes_the_send_answer_is_applied_when_the_wamid_is_stored(
    db, acme_number, alice, django_capture_on_commit_callbacks
):
    # given a queued reply whose Graph API answer has not been stored yet
    wa_id = fresh_wa_id()
    inbound = retarget(payload("inbound_text.json"), wa_id=wa_id)["entry"][0]["changes"][0]["value"]
    wamid = "wamid.EARLY" + secrets.token_hex(8)
    with schema_context("acme"):
        received = actions.do_receive_inbound(acme_number, inbound["messages"][0], inbound["contacts"])
        assert received is not None
        reply = actions.check_send_text_reply(received.conversation, alice, "On its way")

    # when Meta's delivered status arrives first
    deliver_webhook(
        django_capture_on_commit_callbacks, status_webhook("status_delivered.json", wamid, NOW + 5)
    )
    assert state(reply)["status"] == "queued"

    # then storing the send's wamid applies it, and it is not applied again
    with schema_context("acme"):
        actions.do_mark_sent(reply.pk, wamid)
        from conversations.models import PendingStatus

        assert not PendingStatus.objects.filter(wamid=wamid).exists()
    assert state(reply)["status"] == "delivered"
    assert state(reply)["delivered_at"] == at(NOW + 5)


def test_statuses_for_wamids_that_never_became_ours_are_dropped_after_a_week(
    db, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from conversations.models import PendingStatus
    from conversations.tasks import sweep_pending_statuses

    # given two statuses for unknown wamids, one received eight days ago
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", "wamid.OLD" + secrets.token_hex(6), NOW),
    )
    deliver_webhook(
        django_capture_on_commit_callbacks,
        status_webhook("status_delivered.json", "wamid.NEW" + secrets.token_hex(6), NOW),
    )
    with schema_context("acme"):
        old, new = PendingStatus.objects.order_by("-pk")[1], PendingStatus.objects.order_by("-pk")[0]
        PendingStatus.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=8))

    # when the hourly sweep runs
    dropped = sweep_pending_statuses()

    # then only the old one is gone
    assert dropped >= 1
    with schema_context("acme"):
        assert not PendingStatus.objects.filter(pk=old.pk).exists()
        assert PendingStatus.objects.filter(pk=new.pk).exists()
