"""Broadcasts against the Graph API faked at the HTTP level: who is skipped and why (each reason, in order), each
consenting recipient sent exactly once with their own values, paced by the shared Redis limiter, permissions and
bad input, YELLOW needing an admin's confirmation, a restriction pausing a running broadcast, the failure
threshold, 131049 / 131050, statuses and replies followed, and an interrupted send settled without a second one."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations import broadcasts, consent, pacing
from conversations.models import (
    Broadcast,
    BroadcastRecipient,
    Contact,
    Conversation,
    Guardrails,
    Message,
    MessageTemplate,
    PendingStatus,
    SenderKind,
)
from helpdesk.tenancy.models import WhatsAppNumber
from tests.conftest import ACME, GRAPH_URL, deliver_webhook, issue_token, payload, retarget, tenant_client
from tickets import actions as ticket_actions

MESSAGES_URL = f"{GRAPH_URL}/{ACME['pnid']}/messages"
BODY = "Halo {{1}}, diskon akhir tahun untuk anda. Balas STOP untuk berhenti."


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    consent._cache.clear()
    ticket_actions._rules_cache.clear()
    return


def mobile() -> str:
    return "62812" + str(secrets.randbelow(10**8)).zfill(8)


@pytest.fixture
def promo(db: None) -> MessageTemplate:
    with schema_context("acme"):
        return MessageTemplate.objects.create(
            waba_id=ACME["waba"],
            meta_id=str(secrets.randbelow(10**12)),
            name="promo_" + secrets.token_hex(4),
            language="id",
            category="MARKETING",
            components=[{"type": "BODY", "text": BODY, "example": {"body_text": [["Budi"]]}}],
            status="approved",
        )


def person(number: Any, name: str, **consent_fields: Any) -> Contact:
    """A contact of acme's number; opted in unless told otherwise."""
    fields = {"opted_in_at": timezone.now() - timedelta(days=30), "opt_in_source": "form", **consent_fields}
    with schema_context("acme"):
        return Contact.objects.create(number=number, wa_id=mobile(), name=name, **fields)


def reached_before(contact: Contact, template: MessageTemplate, days: int) -> None:
    """An earlier broadcast of the template reached the contact `days` ago."""
    with schema_context("acme"):
        earlier = Broadcast.objects.create(
            name="earlier", number_id=contact.number_id, template_name=template.name, template_language="id"
        )
        BroadcastRecipient.objects.create(
            broadcast=earlier,
            contact=contact,
            wa_id=contact.wa_id,
            status="delivered",
            sent_at=timezone.now() - timedelta(days=days),
        )


def spec(template: MessageTemplate, number: Any, **audience: Any) -> dict[str, Any]:
    return {
        "name": "Promo Desember",
        "number": number.pk,
        "template": {
            "name": template.name,
            "language": "id",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "{{contact.name}}"}]}],
        },
        "audience": audience,
    }


def api(user: Any) -> Any:
    return tenant_client(ACME, issue_token(user))


def post(user: Any, path: str, body: Any = None) -> Any:
    return api(user).post(f"/api/v1/broadcasts/{path}", body or {}, content_type="application/json")


def templates_sent(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [body for body in sent if body.get("type") == "template"]


def test_the_preview_names_each_reason_in_order_and_the_start_sends_each_once(
    db, sent, sam, acme_number, promo, django_capture_on_commit_callbacks
):
    budi, sari = person(acme_number, "Budi"), person(acme_number, "Sari")
    out = person(acme_number, "Opted out", opted_out_at=timezone.now())
    stopped = person(acme_number, "Stopped", marketing="stop")
    never = person(acme_number, "No consent", opted_in_at=None)
    capped = person(acme_number, "Capped")
    reached_before(capped, promo, days=3)
    audience = {
        "contacts": [budi.pk, out.pk, stopped.pk, never.pk, capped.pk],
        "wa_ids": [f"+{sari.wa_id}", "0" + budi.wa_id[2:], "12345"],  # Budi again, in local form
    }
    created = post(sam, "", spec(promo, acme_number, **audience))
    assert created.status_code == 201, created.content
    broadcast_id = created.json()["id"]

    preview = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/preview/").json()

    assert preview["recipients"] == 2
    assert preview["skipped"] == {
        "invalid_number": 1,
        "duplicate": 1,
        "opted_out": 1,
        "marketing_stopped": 1,
        "no_opt_in": 1,
        "frequency_cap": 1,
    }
    assert preview["cost"]["estimate"] == round(2 * broadcasts.RATES_USD["MARKETING"], 2)
    assert preview["daily_limit"]["this_broadcast"] == 2

    with django_capture_on_commit_callbacks(execute=True):
        started = post(sam, f"{broadcast_id}/start/")
    assert started.status_code == 200, started.content

    done = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/").json()
    assert done["status"] == "completed"
    assert (done["counts"]["sent"], done["counts"]["skipped"], done["counts"]["duplicates"]) == (2, 5, 1)
    bodies = templates_sent(sent)
    assert sorted(body["to"] for body in bodies) == sorted([f"+{budi.wa_id}", f"+{sari.wa_id}"])
    names = {body["to"]: body["template"]["components"][0]["parameters"][0]["text"] for body in bodies}
    assert names == {f"+{budi.wa_id}": "Budi", f"+{sari.wa_id}": "Sari"}
    assert all(body["biz_opaque_callback_data"].startswith("broadcast-recipient:") for body in bodies)
    skipped = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/recipients/", {"status": "skipped"}).json()
    assert {row["reason"] for row in skipped["results"]} == {
        "invalid_number",
        "opted_out",
        "marketing_stopped",
        "no_opt_in",
        "frequency_cap",
    }
    with schema_context("acme"):
        # a conversation the broadcast started waits in no one's Open tab until the customer answers
        assert Conversation.objects.get(contact=budi).status == "resolved"
        shown = Message.objects.get(conversation__contact=budi, type="template")
        assert (shown.sender_kind, shown.status, shown.text) == (
            SenderKind.BROADCAST,
            "sent",
            BODY.replace("{{1}}", "Budi"),
        )

    # started again: refused, and nothing more is sent
    assert post(sam, f"{broadcast_id}/start/").status_code == 409
    assert len(templates_sent(sent)) == 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"audience": {}}, None),
        ({"audience": {"labels": [999999]}}, "unknown_label"),
        ({"number": 999999}, None),
        ({"name": ""}, None),
        ({"template": {"name": "no_such_template", "language": "id"}}, "template_unknown"),
        ({"scheduled_at": "tomorrow"}, None),
    ],
)
def test_bad_broadcasts_are_refused_and_agents_cannot_make_one(
    db, sam, alice, acme_number, promo, change, code
):
    body = {**spec(promo, acme_number, wa_ids=[mobile()]), **change}

    refused = post(sam, "", body)

    assert refused.status_code == 400, refused.content
    if code:
        assert refused.json()["code"] == code
    assert post(alice, "", spec(promo, acme_number, wa_ids=[mobile()])).status_code == 403
    with schema_context("acme"):
        assert not Broadcast.objects.exists()


def test_a_yellow_number_needs_an_admins_confirmation_and_runs_at_half_pace(db, sam, ada, acme_number, promo):
    WhatsAppNumber.objects.filter(pk=acme_number.pk).update(quality_rating="YELLOW")
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[person(acme_number, "Budi").pk])).json()[
        "id"
    ]

    assert post(sam, f"{broadcast_id}/start/").json()["code"] == "confirmation_required"
    assert post(sam, f"{broadcast_id}/start/", {"confirm": True}).status_code == 409  # supervisors cannot
    started = post(ada, f"{broadcast_id}/start/", {"confirm": True})

    assert started.status_code == 200, started.content
    assert (started.json()["status"], started.json()["half_pace"]) == ("running", True)


def test_a_restriction_pauses_a_running_broadcast_which_then_sends_nothing(
    db, sent, sam, acme_number, promo, django_capture_on_commit_callbacks
):
    people = [person(acme_number, f"P{i}").pk for i in range(3)]
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=people)).json()["id"]
    post(sam, f"{broadcast_id}/start/")  # its runner is not run: rows stay queued
    restriction = retarget(payload("inbound_text.json"))
    restriction["entry"][0]["changes"] = [
        {
            "field": "account_update",
            "value": {
                "event": "ACCOUNT_RESTRICTION",
                "restriction_info": [
                    {
                        "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                        "expiration": int(time.time()) + 86400,
                    }
                ],
            },
        }
    ]

    deliver_webhook(django_capture_on_commit_callbacks, restriction)

    paused = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/").json()
    assert (paused["status"], paused["paused_code"]) == ("paused", "number_restriction")
    assert "restricted" in paused["paused_reason"]
    with schema_context("acme"):
        assert broadcasts.run_slice(broadcast_id, seconds=0.2) == (False, False)
    assert templates_sent(sent) == []
    assert post(sam, f"{broadcast_id}/resume/").json()["code"] == "number_at_risk"  # the alert is still open


def failing_graph(graph: Any, codes: dict[str, int]) -> list[dict[str, Any]]:
    """Meta refuses the sends to these numbers with these codes; accepts the others."""
    bodies: list[dict[str, Any]] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        bodies.append(body)
        code = codes.get(body.get("to", "").lstrip("+"))
        if code:
            error = {
                "error": {
                    "message": "refused",
                    "type": "OAuthException",
                    "code": code,
                    "error_data": {"details": "x"},
                }
            }
            return 400, {}, json.dumps(error)
        ok = payload("send_response.json")
        ok["messages"][0]["id"] = "wamid.OUT" + secrets.token_hex(10)
        return 200, {}, json.dumps(ok)

    graph.add_callback("POST", MESSAGES_URL, callback=answer)
    return bodies


def test_131049_is_not_retried_and_131050_opts_the_contact_out(
    db, graph, sam, acme_number, promo, django_capture_on_commit_callbacks
):
    limited, stopped = person(acme_number, "Limited"), person(acme_number, "Stopped")
    bodies = failing_graph(graph, {limited.wa_id: 131049, stopped.wa_id: 131050})
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[limited.pk, stopped.pk])).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        post(sam, f"{broadcast_id}/start/")

    assert len([b for b in bodies if b["to"] == f"+{limited.wa_id}"]) == 1
    failed = (
        api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/recipients/", {"status": "failed"}).json()["results"]
    )
    assert sorted(row["error_code"] for row in failed) == [131049, 131050]
    with schema_context("acme"):
        assert Contact.objects.get(pk=stopped.pk).opt_out_route == "error_131050"
        assert Contact.objects.get(pk=limited.pk).opted_out_at is None


def test_failures_past_the_threshold_pause_the_broadcast(
    db, graph, sam, acme_number, promo, django_capture_on_commit_callbacks
):
    with schema_context("acme"):
        Guardrails.objects.filter(pk=Guardrails.current().pk).update(
            failure_pause_after=3, failure_pause_percent=5
        )
    people = [person(acme_number, f"P{i}") for i in range(30)]
    failing_graph(graph, {p.wa_id: 131026 for p in people})  # undeliverable: permanent
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[p.pk for p in people])).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        post(sam, f"{broadcast_id}/start/")

    paused = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/").json()
    assert (paused["status"], paused["paused_code"]) == ("paused", "failures")
    assert paused["counts"]["failed"] < 30  # it stopped early
    assert paused["counts"]["queued"] > 0


def test_statuses_and_replies_follow_the_recipient(
    db, sent, sam, acme_number, promo, django_capture_on_commit_callbacks
):
    budi = person(acme_number, "Budi")
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[budi.pk])).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        post(sam, f"{broadcast_id}/start/")
    with schema_context("acme"):
        wamid = Message.objects.get(conversation__contact=budi, type="template").wamid
    delivered = retarget(payload("status_delivered.json"))
    status = delivered["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update(id=wamid, recipient_id=budi.wa_id, timestamp=str(int(time.time())))

    deliver_webhook(django_capture_on_commit_callbacks, delivered)
    row = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/recipients/").json()["results"][0]
    assert (row["status"], row["delivered_at"] is not None) == ("delivered", True)

    deliver_webhook(
        django_capture_on_commit_callbacks,
        retarget(payload("inbound_text.json"), wa_id=budi.wa_id, text="mau"),
    )
    row = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/recipients/").json()["results"][0]
    assert (row["status"], row["replied_at"] is not None) == ("replied", True)


def test_an_interrupted_send_is_settled_by_metas_status_or_sent_again_never_twice(
    db, sent, sam, acme_number, promo, settings
):
    """A worker died after claiming two rows: Meta reported one of them (its status webhook, with our callback
    data, waits as a PendingStatus); the other never reached Meta."""
    settings.BROADCAST_INTERRUPTED_GRACE_SECONDS = 0
    seen, lost = person(acme_number, "Seen"), person(acme_number, "Lost")
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[seen.pk, lost.pk])).json()["id"]
    post(sam, f"{broadcast_id}/start/")
    with schema_context("acme"):
        rows = {r.contact_id: r for r in BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)}
        for row in rows.values():
            conversation = Conversation.objects.get_or_create(
                contact_id=row.contact_id, defaults={"number": acme_number}
            )[0]
            message = Message.objects.create(
                conversation=conversation,
                direction="out",
                type="template",
                status="queued",
                sender_kind="broadcast",
            )
            BroadcastRecipient.objects.filter(pk=row.pk).update(
                status="sending",
                claimed_at=timezone.now() - timedelta(seconds=5),
                message=message,
                attempts=1,
            )
        PendingStatus.objects.create(
            wamid="wamid.SEEN",
            status={
                "id": "wamid.SEEN",
                "status": "sent",
                "biz_opaque_callback_data": broadcasts.callback_of(rows[seen.pk].pk),
            },
        )

        assert broadcasts.recover_interrupted(broadcast_id) == 2
        assert broadcasts.run_slice(broadcast_id)[0] is False

        settled = {r.contact_id: r for r in BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)}
        assert settled[seen.pk].status == "sent"
        assert Message.objects.get(pk=settled[seen.pk].message_id).wamid == "wamid.SEEN"
        assert settled[lost.pk].status == "sent"
    assert [body["to"] for body in templates_sent(sent)] == [f"+{lost.wa_id}"]  # only the lost one, once


def test_the_shared_pace_never_puts_more_than_the_rate_in_a_second(db):
    """Slots reserved by many callers at once (threads: each its own Redis round trips) at 50 per second: on the
    one clock they share (Redis's), slots are at least 1/50 s apart, so no one-second window holds more than 50."""
    number_id = 900_000_000 + secrets.randbelow(10**6)
    slots: list[float] = []

    def caller() -> None:
        for _ in range(30):
            slots.append(pacing.reserve_slot(number_id, 50)[0])

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    slots.sort()
    assert len(set(slots)) == 120  # no slot given twice
    assert all(b - a >= 1 / 50 for a, b in itertools.pairwise(slots))
    assert max(sum(1 for t in slots if t0 <= t < t0 + 1.0) for t0 in slots) <= 50


def test_a_template_once_marketing_keeps_the_marketing_guardrails(db, sam, acme_number, promo):
    """Meta approved the promotion as UTILITY (its webhook says so): the frequency cap still applies to it."""
    with schema_context("acme"):
        MessageTemplate.objects.filter(pk=promo.pk).update(category="UTILITY", previous_category="MARKETING")
    reached = person(acme_number, "Reached")
    reached_before(reached, promo, days=13)
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[reached.pk])).json()["id"]

    preview = api(sam).get(f"/api/v1/broadcasts/{broadcast_id}/preview/").json()

    assert (preview["recipients"], preview["skipped"]["frequency_cap"]) == (0, 1)


def test_the_broadcasts_page_is_for_supervisors_and_admins_in_both_languages(db, alice, sam, ada):
    from django.test import Client

    for user, status in ((alice, 403), (sam, 200), (ada, 200)):
        client = Client(HTTP_HOST=ACME["domain"], HTTP_ACCEPT_LANGUAGE="id")
        client.force_login(user)
        response = client.get("/broadcasts/")
        assert response.status_code == status, user
    page = response.content.decode()
    assert "Siaran baru" in page
    assert "Impor kontak" in page
    assert 'data-testid="nav-broadcasts"' in page


@pytest.mark.parametrize(
    ("kind", "value", "blocks"),
    [
        (
            "restriction",
            {
                "restriction_info": [
                    {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 4102444800}
                ]
            },
            True,
        ),
        (
            "restriction",
            {
                "restriction_info": [
                    {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1}
                ]
            },
            False,
        ),
        (
            "restriction",
            {"restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}]},
            False,
        ),
        ("disable", {"ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE"}}, True),
        (
            "violation",
            {"violation_info": {"violation_type": "SCAM"}},
            False,
        ),  # paused what ran; admins decide
    ],
)
def test_which_open_alerts_forbid_starting(db, sam, acme_number, promo, kind, value, blocks):
    from conversations.models import AccountEvent, HealthAlert

    with schema_context("acme"):
        event = AccountEvent.objects.create(
            number=None,
            waba_id=ACME["waba"],
            field="account_update",
            event=kind,
            value=value,
            occurred_at=timezone.now(),
            digest=secrets.token_hex(16),
        )
        HealthAlert.objects.create(number=None, waba_id=ACME["waba"], kind=kind, level=4, event=event)
    broadcast_id = post(sam, "", spec(promo, acme_number, contacts=[person(acme_number, "Budi").pk])).json()[
        "id"
    ]

    started = post(sam, f"{broadcast_id}/start/")

    assert (started.status_code == 409) is blocks, started.content
