"""Hostile and odd webhooks: a bad change never stops the others, failures are retried with backoff then parked
for the operator, odd items are stored as well as they can be, and no body ever gets a 5xx."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations import webhooks
from conversations.models import AccountEvent, Contact, Message
from helpdesk.tenancy.models import WebhookEvent
from tests.conftest import ACME, GLOBEX, fresh_wa_id, payload, post_webhook, public_client, retarget
from tests.faults import refused_writes


def deliver(capture: Any, p: dict[str, Any] | bytes, **kwargs: Any) -> Any:
    """POST a webhook and run what its commit triggers (the eager processing task)."""
    with capture(execute=True):
        return post_webhook(p, **kwargs)


def text_webhook(spec: dict[str, str], wa_id: str, body: str) -> dict[str, Any]:
    return retarget(payload("inbound_text.json"), spec, wa_id=wa_id, text=body)


def account_update(spec: dict[str, str], event: str, metadata: Any = None) -> dict[str, Any]:
    value: dict[str, Any] = {"phone_number": spec["display"], "event": event}
    if metadata is not None:
        value["metadata"] = metadata
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": spec["waba"],
                "time": int(time.time()),
                "changes": [{"field": "account_update", "value": value}],
            }
        ],
    }


def stored(schema: str, wa_id: str) -> list[str]:
    with schema_context(schema):
        return list(Message.objects.filter(conversation__contact__wa_id=wa_id).values_list("text", flat=True))


def account_events(schema: str, event: str) -> int:
    with schema_context(schema):
        return AccountEvent.objects.filter(event=event).count()


def make_due(event_id: int) -> None:
    """The retry's time has come (instead of waiting for it)."""
    WebhookEvent.objects.filter(pk=event_id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# ------------------------------------------------------------------ one bad event never stops the others


def test_a_malformed_account_update_does_not_stop_any_tenants_messages(
    db, django_capture_on_commit_callbacks
):
    # given acme signs an account_update whose metadata is a string, and globex's customer writes afterwards
    poison = deliver(django_capture_on_commit_callbacks, account_update(ACME, "ACCOUNT_VIOLATION", "oops"))
    wa_id = fresh_wa_id()
    response = deliver(
        django_capture_on_commit_callbacks, text_webhook(GLOBEX, wa_id, "still here"), secret=GLOBEX["secret"]
    )

    # then both were acknowledged, and globex's message is in its inbox
    assert (poison.status_code, response.status_code) == (200, 200)
    assert stored("globex", wa_id) == ["still here"]
    # and the account update is kept like any other (its metadata is not needed to route it)
    assert account_events("acme", "ACCOUNT_VIOLATION") == 1
    assert not WebhookEvent.objects.filter(processed_at__isnull=True, parked_at__isnull=True).exists()


def test_a_change_that_cannot_be_applied_is_recorded_and_everything_else_is_applied(
    db, django_capture_on_commit_callbacks
):
    # given the database refuses one kind of account event (a real failure, injected at the database)
    wa_id = fresh_wa_id()
    batch = text_webhook(ACME, wa_id, "halo")
    batch["entry"].append(account_update(ACME, "POISON")["entry"][0])
    with refused_writes("acme", "conversations_accountevent", "NEW.event = 'POISON'"):
        # when a webhook brings a message and that event, and globex's customer writes meanwhile
        deliver(django_capture_on_commit_callbacks, batch)
        event = WebhookEvent.objects.order_by("-pk")[0]
        other = fresh_wa_id()
        deliver(
            django_capture_on_commit_callbacks, text_webhook(GLOBEX, other, "hi"), secret=GLOBEX["secret"]
        )

        # then the message of the same webhook and the other tenant's message are applied
        assert stored("acme", wa_id) == ["halo"]
        assert stored("globex", other) == ["hi"]
        # and the failed change is recorded on its event with its tenant, field and error, to be retried later
        event.refresh_from_db()
        assert (event.processed_at, event.parked_at) == (None, None)
        assert [(f["key"], f["tenant"], f["field"]) for f in event.failures] == [
            ("1.0", "acme", "account_update")
        ]
        assert "injected failure" in event.failures[0]["error"]
        assert event.attempts == 1
        assert (
            timezone.now() + timedelta(seconds=20)
            < event.next_attempt_at
            < timezone.now() + timedelta(seconds=40)
        )

        # and it is not retried before its time (not five times within a tenth of a second)
        assert webhooks.process_pending_events() == 0

        # when every retry fails too, the event is parked after the fifth attempt, with growing delays
        delays = []
        for _ in range(4):
            make_due(event.pk)
            before = timezone.now()
            webhooks.process_pending_events()
            event.refresh_from_db()
            if event.next_attempt_at:
                delays.append(round((event.next_attempt_at - before).total_seconds() / 60, 1))
        assert delays == [2.0, 10.0, 60.0]
        assert (event.attempts, event.parked_at is not None, event.next_attempt_at) == (5, True, None)
        assert public_client().get("/healthz").json()["parked_webhook_events"] == 1

    # when the operator replays it after the fix
    call_command("replay_webhook_events", "--tenant", "acme")

    # then only the failed change is applied again: the account event once, the message not twice
    event.refresh_from_db()
    assert (event.processed_at is not None, event.parked_at, event.failures) == (True, None, [])
    assert account_events("acme", "POISON") == 1
    assert stored("acme", wa_id) == ["halo"]
    assert public_client().get("/healthz").json()["parked_webhook_events"] == 0


def test_replay_filters_by_tenant_and_date(db, django_capture_on_commit_callbacks):
    with refused_writes("acme", "conversations_accountevent", "NEW.event = 'POISON'"):
        deliver(django_capture_on_commit_callbacks, account_update(ACME, "POISON"))
    event = WebhookEvent.objects.order_by("-pk")[0]
    WebhookEvent.objects.filter(pk=event.pk).update(
        parked_at=timezone.now(), attempts=5, next_attempt_at=None
    )

    # a replay for another tenant, or of later events only, leaves it parked
    call_command("replay_webhook_events", "--tenant", "globex")
    call_command("replay_webhook_events", "--since", (timezone.now() + timedelta(days=1)).date().isoformat())
    event.refresh_from_db()
    assert (event.parked_at is not None, account_events("acme", "POISON")) == (True, 0)

    # the matching replay applies it
    call_command("replay_webhook_events", "--since", timezone.now().date().isoformat())
    event.refresh_from_db()
    assert (event.processed_at is not None, account_events("acme", "POISON")) == (True, 1)


def test_replay_refuses_an_unknown_tenant_and_a_bad_date(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No tenant"):
        call_command("replay_webhook_events", "--tenant", "nobody")
    with pytest.raises(CommandError, match="ISO date"):
        call_command("replay_webhook_events", "--since", "yesterday")


def test_the_operator_sees_parked_events_and_can_replay_them(db, django_capture_on_commit_callbacks, client):
    from helpdesk.tenancy.models import User

    with refused_writes("acme", "conversations_accountevent", "NEW.event = 'POISON'"):
        deliver(django_capture_on_commit_callbacks, account_update(ACME, "POISON"))
    event = WebhookEvent.objects.order_by("-pk")[0]
    WebhookEvent.objects.filter(pk=event.pk).update(
        parked_at=timezone.now(), attempts=5, next_attempt_at=None
    )
    operator = User.objects.create_superuser("root@operator.test", "Operator-Pass-4471")
    agent_page = public_client()
    assert agent_page.get("/operator/webhooks/").status_code == 302  # not signed in: to the login page

    page = public_client()
    page.force_login(operator)
    html = page.get("/operator/webhooks/").content.decode()
    for shown in ("acme", "account_update", "injected failure"):
        assert shown in html

    response = page.post("/operator/webhooks/", {"event": str(event.pk)})
    assert "1 applied, 0 failed again" in response.content.decode()
    assert account_events("acme", "POISON") == 1


# ------------------------------------------------------------------ store what can be stored


def test_odd_items_are_stored_as_well_as_they_can_be_and_never_lose_the_others(
    db, django_capture_on_commit_callbacks
):
    # given one change with: a text with NUL bytes, a very long profile name, a placeholder timestamp, an
    # absurd timestamp, a message without id, and a normal message; plus a change without `field`
    names = {w: fresh_wa_id() for w in ("nul", "long", "placeholder", "absurd", "noid", "plain")}
    long_name = "Siti " + "Nur" * 400
    messages = [
        {
            "from": names["nul"],
            "id": "wamid.NUL" + fresh_wa_id(),
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": "ha\x00lo\x00"},
        },
        {
            "from": names["long"],
            "id": "wamid.LONG" + fresh_wa_id(),
            "timestamp": str(int(time.time())),
            "type": "image",
            "image": {"id": "1", "caption": "c" * 5000},
        },
        {
            "from": names["placeholder"],
            "id": "wamid.PH" + fresh_wa_id(),
            "timestamp": "<TIMESTAMP>",
            "type": "text",
            "text": {"body": "placeholder"},
        },
        {
            "from": names["absurd"],
            "id": "wamid.AB" + fresh_wa_id(),
            "timestamp": "99999999999999",
            "type": "text",
            "text": {"body": "absurd"},
        },
        {
            "from": names["noid"],
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": "no id"},
        },
        {
            "from": names["plain"],
            "id": "wamid.PL" + fresh_wa_id(),
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": "plain"},
        },
    ]
    contacts = [
        {"profile": {"name": long_name if key == "long" else "N\x00ame"}, "wa_id": wa}
        for key, wa in names.items()
    ]
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": ACME["waba"],
                "changes": [
                    {"value": {"metadata": {"phone_number_id": ACME["pnid"]}, "messages": []}},
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": ACME["display"],
                                "phone_number_id": ACME["pnid"],
                            },
                            "contacts": contacts,
                            "messages": messages,
                        },
                    },
                ],
            }
        ],
    }
    before = timezone.now()
    response = deliver(django_capture_on_commit_callbacks, body)
    after = timezone.now()

    assert response.status_code == 200
    event = WebhookEvent.objects.order_by("-pk")[0]
    assert (event.processed_at is not None, event.failures) == (True, [])
    assert "\\u0000" in event.body  # the raw event keeps what was sent
    assert stored("acme", names["nul"]) == ["halo"]
    assert stored("acme", names["plain"]) == ["plain"]
    assert stored("acme", names["noid"]) == []
    with schema_context("acme"):
        assert Contact.objects.get(wa_id=names["long"]).name == long_name
        assert Message.objects.get(conversation__contact__wa_id=names["long"]).text == "c" * 5000
        assert Contact.objects.get(wa_id=names["nul"]).name == "Name"
        for key in ("placeholder", "absurd"):
            created = Message.objects.get(conversation__contact__wa_id=names[key]).created_at
            assert before - timedelta(seconds=1) <= created <= after  # the receipt time


def test_a_redelivered_account_template_or_quality_event_adds_no_second_row(
    db, django_capture_on_commit_callbacks
):
    for name in (
        "template_status_update.json",
        "phone_number_quality_update.json",
        "account_update_violation.json",
    ):
        body = (json.dumps(payload(name))).encode()
        with schema_context("acme"):
            before = AccountEvent.objects.count()
        deliver(django_capture_on_commit_callbacks, body)
        deliver(django_capture_on_commit_callbacks, body)
        with schema_context("acme"):
            assert AccountEvent.objects.count() == before + 1, name


# ------------------------------------------------------------------ no 5xx, whatever the body


@pytest.mark.parametrize(
    "body",
    [
        b'{"entry": 5}',
        b'{"entry": true}',
        b'{"entry":[{"id":"1","changes":5}]}',
        b"[" * 100_000,
        b'{"entry": [5]}',
    ],
    ids=["entry-number", "entry-bool", "changes-number", "deep-nesting", "entry-item-number"],
)
def test_an_unsigned_body_of_the_wrong_shape_gets_400_and_stores_nothing(db, body, caplog):
    before = WebhookEvent.objects.count()

    response = post_webhook(body, secret=None)

    assert response.status_code == 400
    assert set(response.json()) == {"detail", "code"}
    assert WebhookEvent.objects.count() == before
    assert not any(record.exc_info for record in caplog.records)  # refused, not crashed


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
FIELDS = st.sampled_from(
    ["messages", "statuses", "account_update", "history", "smb_message_echoes", "user_preferences", "", None]
)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "from": st.one_of(st.just("6281200000001"), JSON),
        "id": st.one_of(st.text(min_size=1, max_size=300), JSON),
        "timestamp": st.one_of(st.integers(), st.text(max_size=12), JSON),
        "type": st.one_of(
            st.sampled_from(["text", "image", "reaction", "edit", "revoke", "system", "interactive"]), JSON
        ),
        "text": st.one_of(st.fixed_dictionaries({"body": st.text(max_size=30)}), JSON),
        "reaction": JSON,
        "edit": JSON,
        "interactive": JSON,
    },
)
VALUE = st.fixed_dictionaries(
    {"metadata": st.one_of(st.just({"phone_number_id": ACME["pnid"]}), JSON)},
    optional={
        "messages": st.one_of(st.lists(MESSAGE, max_size=3), JSON),
        "statuses": st.one_of(
            st.lists(
                st.dictionaries(st.sampled_from(["id", "status", "timestamp", "errors"]), JSON), max_size=2
            ),
            JSON,
        ),
        "contacts": JSON,
        "message_echoes": st.one_of(st.lists(MESSAGE, max_size=2), JSON),
        "history": JSON,
        "user_preferences": JSON,
        "event": JSON,
    },
)
WEBHOOK = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "entry": st.lists(
                st.fixed_dictionaries(
                    {
                        "id": st.one_of(st.just(ACME["waba"]), JSON),
                        "changes": st.lists(
                            st.fixed_dictionaries({"field": FIELDS, "value": st.one_of(VALUE, JSON)}),
                            max_size=3,
                        ),
                    },
                    optional={"time": JSON},
                ),
                max_size=2,
            )
        }
    ),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=WEBHOOK, signed=st.booleans())
def test_any_json_signed_or_not_never_gets_a_5xx_and_never_sticks_the_queue(
    db, django_capture_on_commit_callbacks, body, signed
):
    raw = json.dumps(body).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(raw, secret=ACME["secret"] if signed else None)
    assert response.status_code in (200, 400, 403)
    if response.status_code != 200:
        assert set(response.json()) == {"detail", "code"}
    # every stored event was applied, or its failures were recorded for a later retry: nothing is left half-done
    webhooks.process_pending_events()
    left = WebhookEvent.objects.filter(processed_at__isnull=True, parked_at__isnull=True)
    assert all(event.failures and event.next_attempt_at for event in left)
    # and a normal message still goes through afterwards
    wa_id = fresh_wa_id()
    deliver(django_capture_on_commit_callbacks, text_webhook(ACME, wa_id, "after"))
    assert stored("acme", wa_id) == ["after"]


def test_timestamps_are_read_as_whatsapp_sends_them():
    from conversations.actions import timestamp_or_none

    received = datetime(2026, 12, 1, tzinfo=UTC)
    assert timestamp_or_none("1764547200", received) == datetime(2025, 12, 1, tzinfo=UTC)
    assert timestamp_or_none(1764547200.0, received) == datetime(2025, 12, 1, tzinfo=UTC)
    for odd in ("<TIMESTAMP>", "", None, True, [], "1e400", 10**20, -5, "1000000000000"):
        assert timestamp_or_none(odd, received) is None, odd
