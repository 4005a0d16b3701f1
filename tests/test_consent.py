"""Consent: opt-out and opt-in by keyword (through the signed webhook, both the batch and the one-by-one path), by
Meta's own stop / resume, the confirmation (a bot message, in the tenant's language, only while the window is
open, once per message however often Meta redelivers it), the guardrails document, contacts from and to CSV, and
a number's send rate."""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from conversations import consent
from conversations.models import Contact, Conversation, Label, Message, SenderKind
from tests.conftest import (
    ACME,
    GRAPH_URL,
    deliver_webhook,
    fresh_wa_id,
    issue_token,
    payload,
    retarget,
    tenant_client,
)
from tickets import actions as ticket_actions
from tickets.models import Ticket

MESSAGES_URL = f"{GRAPH_URL}/{ACME['pnid']}/messages"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    consent._cache.clear()
    ticket_actions._rules_cache.clear()
    yield
    consent._cache.clear()
    ticket_actions._rules_cache.clear()


def mobile() -> str:
    """A valid Indonesian mobile number (Telkomsel's 0812), as a WhatsApp id: fresh_wa_id's may not exist."""
    return "62812" + str(secrets.randbelow(10**8)).zfill(8)


def says(wa_id: str, *texts: str, ts: int | None = None) -> dict[str, Any]:
    """One webhook with the customer's messages (several: the batch path; one: it too)."""
    p = retarget(payload("inbound_text.json"), wa_id=wa_id, ts=ts)
    value = p["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    value["messages"] = [
        {**template, "id": "wamid.TEST" + secrets.token_hex(10), "text": {"body": text}} for text in texts
    ]
    return p


def contact(wa_id: str) -> Contact:
    with schema_context("acme"):
        return Contact.objects.get(wa_id=wa_id)


def to(sent: list[dict[str, Any]], wa_id: str) -> list[str]:
    return [
        body["text"]["body"] for body in sent if body.get("to") == "+" + wa_id and body.get("type") == "text"
    ]


def test_a_keyword_opts_out_once_with_a_bot_confirmation_in_indonesian(
    db, sent, sam, django_capture_on_commit_callbacks
):
    wa_id = fresh_wa_id()
    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "halo"))
    with schema_context("acme"):
        ticket_before = Ticket.objects.get(conversation__contact__wa_id=wa_id)
    stop = says(wa_id, "  BerHenti ")

    deliver_webhook(django_capture_on_commit_callbacks, stop)
    deliver_webhook(django_capture_on_commit_callbacks, stop)  # Meta redelivers it

    opted = contact(wa_id)
    assert (opted.opted_out_at is not None, opted.opt_out_route, opted.opt_out_reason) == (
        True,
        "keyword",
        "BerHenti",
    )
    [confirmation] = to(sent, wa_id)
    assert "START" in confirmation
    assert "tidak akan menerima" in confirmation  # the tenant's customer language: Indonesian by default
    with schema_context("acme"):
        bot = Message.objects.get(conversation__contact__wa_id=wa_id, direction="out")
        assert bot.sender_kind == SenderKind.BOT
        ticket = Ticket.objects.get(pk=ticket_before.pk)
    # the keyword changed no ticket: the wait is the one "halo" started, no response was measured
    assert (ticket.status, ticket.waiting_since, ticket.awaiting_first_response) == (
        ticket_before.status,
        ticket_before.waiting_since,
        True,
    )


def test_start_opts_back_in_and_the_keywords_are_the_tenants(
    db, sent, ada, django_capture_on_commit_callbacks
):
    wa_id = fresh_wa_id()
    admin = tenant_client(ACME, issue_token(ada))
    answer = admin.patch(
        "/api/v1/settings/guardrails/",
        {"opt_out_keywords": ["STOP", "Jangan kirim"], "opt_in_keywords": ["MULAI"]},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["opt_out_keywords"] == ["STOP", "Jangan kirim"]

    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "jangan   KIRIM"))
    assert contact(wa_id).opted_out_at is not None
    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "mulai"))

    back = contact(wa_id)
    assert (back.opted_out_at, back.opt_in_source, back.opted_in_at is not None) == (None, "keyword", True)
    assert len(to(sent, wa_id)) == 2
    # a keyword inside a sentence is an ordinary message
    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "tolong STOP kirim promo ke nomor lama"))
    assert contact(wa_id).opted_out_at is None


def test_no_confirmation_once_the_window_has_closed(db, sent, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()

    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "STOP", ts=int(time.time()) - 25 * 3600))

    assert contact(wa_id).opted_out_at is not None
    assert to(sent, wa_id) == []
    with schema_context("acme"):
        assert Conversation.objects.get(contact__wa_id=wa_id).current_ticket_id is None  # nothing to do


def test_meta_stop_and_resume_change_the_consent(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "halo"))

    def preference(value: str, ts: int) -> dict[str, Any]:
        p = retarget(payload("user_preferences_marketing_stop.json"))
        for change in p["entry"][0]["changes"]:
            for item in change["value"]["user_preferences"]:
                item.update(wa_id=wa_id, value=value, timestamp=ts)
            for item in change["value"].get("contacts", []):
                item["wa_id"] = wa_id
        return p

    deliver_webhook(django_capture_on_commit_callbacks, preference("stop", int(time.time()) - 10))
    stopped = contact(wa_id)
    assert (stopped.marketing, stopped.opt_out_route, stopped.opted_out_at is not None) == (
        "stop",
        "meta",
        True,
    )

    deliver_webhook(django_capture_on_commit_callbacks, preference("resume", int(time.time())))
    resumed = contact(wa_id)
    assert (resumed.marketing, resumed.opted_out_at, resumed.opt_in_source) == ("resume", None, "meta")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"opt_out_keywords": []}, "opt_out_keywords"),
        ({"opt_out_keywords": ["STOP", 5]}, "opt_out_keywords"),
        ({"opt_in_keywords": ["stop"]}, "both"),
        ({"frequency_cap_days": -1}, "frequency_cap_days"),
        ({"frequency_cap_days": True}, "frequency_cap_days"),
        ({"failure_pause_percent": 0}, "failure_pause_percent"),
        ({"frequency_cap_utility": "yes"}, "frequency_cap_utility"),
        ({"paused": True}, "Unknown"),
    ],
)
def test_bad_guardrails_are_refused_and_change_nothing(db, ada, alice, changes, field):
    admin = tenant_client(ACME, issue_token(ada))
    before = admin.get("/api/v1/settings/guardrails/").json()

    refused = admin.patch("/api/v1/settings/guardrails/", changes, content_type="application/json")

    assert refused.status_code == 400, refused.content
    assert field in refused.json()["detail"]
    assert admin.get("/api/v1/settings/guardrails/").json() == before
    agent = tenant_client(ACME, issue_token(alice))
    assert agent.get("/api/v1/settings/guardrails/").status_code == 200
    assert (
        agent.patch(
            "/api/v1/settings/guardrails/", {"frequency_cap_days": 7}, content_type="application/json"
        ).status_code
        == 403
    )


# ------------------------------------------------------------------ contacts from and to CSV


def upload(user: Any, text: str, name: str = "kontak.csv") -> Any:
    return tenant_client(ACME, issue_token(user)).post(
        "/api/v1/contacts/import/", {"file": SimpleUploadedFile(name, text.encode(), "text/csv")}
    )


def test_an_import_reports_each_rejected_row_and_updates_on_a_second_run(db, ada, acme_number):
    first, second = mobile(), mobile()
    local = "0" + first[2:]  # Indonesian national form
    rows = [
        "phone,name,labels,opt_in_source,city",
        f"{local},Budi,promo;VIP {first[-4:]},checkout form,Surabaya",
        f"+{second},Sari,promo,,Medan",
        "12345,Invalid,promo,checkout form,",
        f"{first},Budi again,promo,checkout form,",
    ]

    answer = upload(ada, "\n".join(rows))

    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert (report["created"], report["updated"], report["opted_in"]) == (2, 0, 1)
    assert [(r["line"], r["value"], r["reason"]) for r in report["rejected"]] == [
        (4, "12345", "invalid_number"),
        (5, first, "duplicate"),
    ]
    budi = contact(first)
    assert (budi.name, budi.attributes, budi.opt_in_source, budi.opted_in_at is not None) == (
        "Budi",
        {"city": "Surabaya"},
        "checkout form",
        True,
    )
    assert "line 2" in budi.opt_in_proof
    with schema_context("acme"):
        assert set(Label.objects.filter(pk__in=budi.labels).values_list("name", flat=True)) == {
            "promo",
            f"VIP {first[-4:]}",
        }
    assert contact(second).opted_in_at is None  # no opt-in source: no consent recorded

    again = upload(ada, f"phone,name,city\n+{second},Sari Dewi,Bandung\n").json()
    assert (again["created"], again["updated"]) == (0, 1)
    with schema_context("acme"):
        assert Contact.objects.filter(wa_id=second).count() == 1
    assert (contact(second).name, contact(second).attributes) == ("Sari Dewi", {"city": "Bandung"})


def test_an_import_never_lifts_an_opt_out(db, ada, sent, django_capture_on_commit_callbacks):
    wa_id = mobile()
    deliver_webhook(django_capture_on_commit_callbacks, says(wa_id, "STOP"))

    report = upload(ada, f"phone,opt_in_source\n{wa_id},checkout form\n").json()

    assert (report["kept_opted_out"], report["opted_in"]) == (1, 0)
    assert contact(wa_id).opted_out_at is not None


@pytest.mark.parametrize(
    ("text", "detail"),
    [("name,city\nBudi,Medan\n", "phone"), ("phone\n\x00\x00", "CSV")],
)
def test_a_file_that_cannot_be_read_changes_nothing(db, ada, text, detail):
    with schema_context("acme"):
        before = Contact.objects.count()

    answer = upload(ada, text)

    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_file")
    assert detail in answer.json()["detail"]
    with schema_context("acme"):
        assert Contact.objects.count() == before


def test_agents_may_not_import_or_export(db, alice):
    assert upload(alice, "phone\n+6281234567890\n").status_code == 403
    assert tenant_client(ACME, issue_token(alice)).get("/api/v1/contacts/export/").status_code == 403


def test_export_has_the_consent_and_attributes_and_filters_like_the_list(db, ada, acme_number):
    wa_id = mobile()
    imported = upload(ada, f'phone,name,opt_in_source,city\n+{wa_id},=HYPERLINK("x"),event,Jogja {wa_id}\n')
    assert (imported.status_code, imported.json()["created"]) == (200, 1), imported.content

    client = tenant_client(ACME, issue_token(ada))
    answer = client.get("/api/v1/contacts/export/", {"attribute": f"city:Jogja {wa_id}"})

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert len(rows) == 1
    assert (rows[0]["phone"], rows[0]["opt_in_source"], rows[0]["city"]) == (
        f"+{wa_id}",
        "event",
        f"Jogja {wa_id}",
    )
    assert rows[0]["name"] == '\'=HYPERLINK("x")'  # never a formula in a spreadsheet
    listed = client.get("/api/v1/contacts/", {"attribute": f"city:Jogja {wa_id}"}).json()["results"]
    assert [(c["wa_id"], c["opt_in_source"]) for c in listed] == [(wa_id, "event")]
    assert client.get("/api/v1/contacts/", {"attribute": "no-colon"}).status_code == 400


# ------------------------------------------------------------------ a number's send rate


def test_an_admin_sets_the_send_rate_within_metas_throughput(db, ada, sam, acme_number):
    admin = tenant_client(ACME, issue_token(ada))
    url = f"/api/v1/numbers/{acme_number.pk}/"
    assert admin.get(url).json()["send_rate"] == 80  # Meta's default

    assert admin.patch(url, {"send_rate": 10}, content_type="application/json").json()["send_rate"] == 10
    for bad in (0, 1001, "fast", True):
        refused = admin.patch(url, {"send_rate": bad}, content_type="application/json")
        assert refused.status_code == 400, (bad, refused.content)
    assert admin.get(url).json()["send_rate"] == 10
    supervisor = tenant_client(ACME, issue_token(sam))
    assert supervisor.patch(url, {"send_rate": 50}, content_type="application/json").status_code == 403


def test_a_coexistence_number_is_held_to_20(db, ada, acme_number, django_capture_on_commit_callbacks):
    echo = retarget(payload("inbound_text.json"))
    change = echo["entry"][0]["changes"][0]
    change["field"] = "smb_message_echoes"
    change["value"] = {
        "messaging_product": "whatsapp",
        "metadata": change["value"]["metadata"],
        "message_echoes": [
            {
                "from": ACME["display"],
                "to": fresh_wa_id(),
                "id": "wamid.ECHO" + secrets.token_hex(8),
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "dari HP"},
            }
        ],
    }
    deliver_webhook(django_capture_on_commit_callbacks, echo)
    admin = tenant_client(ACME, issue_token(ada))
    url = f"/api/v1/numbers/{acme_number.pk}/"

    item = admin.get(url).json()
    assert (item["coexistence"], item["send_rate"]) == (True, 20)
    assert admin.patch(url, {"send_rate": 21}, content_type="application/json").status_code == 400
    assert admin.patch(url, {"send_rate": 15}, content_type="application/json").json()["send_rate"] == 15


def test_a_malformed_upload_is_a_json_400(db, ada):
    boundary = "c637e12e2b1a998d80d1b087531af51c"
    answer = tenant_client(ACME, issue_token(ada)).generic(
        "POST",
        "/api/v1/contacts/import/",
        f"--{boundary}--\r\n".encode(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )

    assert (answer.status_code, answer["Content-Type"]) == (400, "application/json")
    assert "file" in answer.json()["fields"]
