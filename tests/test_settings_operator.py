"""Support settings (admins change, others read), the operator's all-tenant report, the inbox's
'window closes soonest' ordering, private notes over the API, and read receipts to WhatsApp."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
import responses
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import Note
from helpdesk.tenancy.models import Tenant, User
from tests.conftest import ACME, GRAPH_URL, api_token, fresh_wa_id, payload, retarget, tenant_client
from tickets.actions import forget_support_rules


@pytest.fixture
def restore_acme_timezone(db: None) -> Iterator[None]:
    yield
    with schema_context("acme"):
        forget_support_rules()


def settings_of(token: str) -> dict[str, Any]:
    response = tenant_client(ACME, token).get("/api/v1/settings/support/")
    assert response.status_code == 200
    return dict(response.json())


def patch_settings(token: str, changes: dict[str, Any]) -> Any:
    return tenant_client(ACME, token).patch(
        "/api/v1/settings/support/", changes, content_type="application/json"
    )


def test_a_new_tenant_has_sensible_defaults(db):
    settings = settings_of(api_token("alice@acme.test"))
    assert settings["timezone"] == "Asia/Jakarta"
    assert (
        settings["reopen_window_hours"],
        settings["window_warning_minutes"],
        settings["sla_warning_percent"],
    ) == (72, 120, 80)
    assert settings["business_hours"] == [
        {"weekday": d, "opens": "08:00", "closes": "17:00"} for d in range(5)
    ]
    assert [p["priority"] for p in settings["sla_policies"]] == ["low", "normal", "high", "urgent"]
    assert settings["sla_policies"][1] == {
        "priority": "normal",
        "first_response_seconds": 4 * 3600,
        "next_response_seconds": 8 * 3600,
        "resolution_seconds": 24 * 3600,
    }


def test_an_admin_changes_settings_and_they_read_back(db, restore_acme_timezone):
    token = api_token("ada@acme.test")
    changes = {
        "timezone": "Asia/Makassar",
        "reopen_window_hours": 48,
        "auto_assign": False,
        "business_hours": [
            {"weekday": 0, "opens": "09:00", "closes": "12:00"},
            {"weekday": 0, "opens": "13:00", "closes": "00:00"},
        ],
        "holidays": [{"date": "2026-12-25", "name": "Natal"}],
        "sla_policies": [
            {
                "priority": "urgent",
                "first_response_seconds": 600,
                "next_response_seconds": None,
                "resolution_seconds": 7200,
            }
        ],
    }
    response = patch_settings(token, changes)
    assert response.status_code == 200, response.content
    after = settings_of(token)
    assert after == response.json()
    assert after["timezone"] == "Asia/Makassar"
    assert Tenant.objects.get(schema_name="acme").timezone_name == "Asia/Makassar"
    assert (after["reopen_window_hours"], after["auto_assign"]) == (48, False)
    assert after["business_hours"] == changes["business_hours"]
    assert after["holidays"] == changes["holidays"]
    assert after["sla_policies"][-1] == changes["sla_policies"][0]


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"timezone": "Mars/Olympus"}, "IANA"),
        ({"timezone": "+07:00"}, "IANA"),
        ({"reopen_window_hours": 0}, "reopen_window_hours"),
        ({"sla_warning_percent": 100}, "sla_warning_percent"),
        ({"auto_assign": "yes"}, "auto_assign"),
        ({"business_hours": [{"weekday": 7, "opens": "09:00", "closes": "10:00"}]}, "weekday"),
        ({"business_hours": [{"weekday": 1, "opens": "10:00", "closes": "09:00"}]}, "ends before it starts"),
        (
            {
                "business_hours": [
                    {"weekday": 1, "opens": "09:00", "closes": "12:00"},
                    {"weekday": 1, "opens": "11:00", "closes": "13:00"},
                ]
            },
            "overlap",
        ),
        ({"holidays": [{"date": "2026-02-30"}]}, "holidays"),
        ({"sla_policies": [{"priority": "critical"}]}, "priority"),
        ({"sla_policies": [{"priority": "low", "first_response_seconds": -5}]}, "positive"),
        ({"colour": "blue"}, "Unknown settings"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_error_and_change_nothing(db, changes, complaint):
    token = api_token("ada@acme.test")
    before = settings_of(token)
    # a valid section beside the invalid one must not be applied either
    response = patch_settings(
        token, {**changes, "reopen_window_hours": changes.get("reopen_window_hours", 24)}
    )
    assert response.status_code == 400
    assert complaint in response.json()["detail"]
    assert settings_of(token) == before


@pytest.mark.parametrize("email", ["alice@acme.test", "sam@acme.test"])
def test_only_admins_change_settings(db, email):
    token = api_token(email)
    before = settings_of(token)
    response = patch_settings(token, {"reopen_window_hours": 5})
    assert response.status_code == 403
    assert settings_of(token) == before


def test_the_settings_page_is_for_supervisors_and_admins(db, alice, sam):
    agent, supervisor = Client(HTTP_HOST=ACME["domain"]), Client(HTTP_HOST=ACME["domain"])
    agent.force_login(alice)
    supervisor.force_login(sam)
    assert agent.get("/settings/").status_code == 403
    assert agent.get("/reports/").status_code == 403
    assert supervisor.get("/settings/").status_code == 200
    assert supervisor.get("/reports/").status_code == 200


# ------------------------------------------------------------------ the operator


def test_tenant_report_lists_every_tenant_with_its_figures(db, acme_number):
    with schema_context("acme"):
        value = retarget(payload("inbound_text.json"), wa_id=fresh_wa_id())["entry"][0]["changes"][0]["value"]
        actions.do_receive_inbound(acme_number, value["messages"][0], value["contacts"])
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))  # tenants' days may run ahead of UTC
    month_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * 86400))
    out = StringIO()
    call_command("tenant_report", "--from", month_ago, "--to", today, "--csv", stdout=out)
    lines = out.getvalue().strip().splitlines()
    header = lines[0].split(",")
    rows = {line.split(",")[0]: dict(zip(header, line.split(","), strict=True)) for line in lines[1:]}
    assert set(rows) >= {"acme", "globex"}
    assert "public" not in rows
    assert rows["acme"]["timezone"] == "Asia/Jakarta"
    assert int(rows["acme"]["chat_volume.messages_in"]) >= 1
    assert int(rows["acme"]["chat_volume.tickets_opened"]) >= 1


def test_tenant_report_refuses_bad_dates(db):
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("tenant_report", "--from", "yesterday", "--to", "2026-01-01")
    with pytest.raises(CommandError, match="before"):
        call_command("tenant_report", "--from", "2026-02-01", "--to", "2026-01-01")


def test_the_operator_page_is_for_superusers_on_the_public_domain(db, alice):
    operator = User.objects.create_superuser("root@platform.test", "Operator-pw-1")
    anonymous = Client(HTTP_HOST="localhost")
    assert anonymous.get("/operator/reports/").status_code == 302
    member = Client(HTTP_HOST="localhost")
    member.force_login(alice)
    assert member.get("/operator/reports/").status_code == 302
    # a tenant member cannot sign in to the operator pages
    refused = Client(HTTP_HOST="localhost").post("/login/", {"username": "alice@acme.test", "password": "x"})
    assert refused.status_code == 200
    client = Client(HTTP_HOST="localhost")
    assert (
        client.post("/login/", {"username": "root@platform.test", "password": "Operator-pw-1"}).status_code
        == 302
    )
    page = client.get("/operator/reports/?from=2026-01-01&to=2027-01-01")
    assert page.status_code == 200
    assert b">acme<" in page.content
    assert b">globex<" in page.content
    csv = client.get("/operator/reports/?from=2026-01-01&to=2027-01-01&format=csv")
    assert csv["Content-Type"] == "text/csv"
    assert csv.content.decode().splitlines()[0].startswith("tenant,timezone,")
    assert operator.is_superuser
    too_long = client.get("/operator/reports/?from=2020-01-01&to=2030-01-01")
    assert b"at most 731 days" in too_long.content


# ------------------------------------------------------------------ inbox ordering, notes, read receipts


def receive(number: Any, wa_id: str, ts: int) -> int:
    value = retarget(payload("inbound_text.json"), wa_id=wa_id, ts=ts)["entry"][0]["changes"][0]["value"]
    with schema_context("acme"):
        message = actions.do_receive_inbound(number, value["messages"][0], value["contacts"])
        assert message is not None
        return message.conversation_id


def test_window_ordering_lists_waiting_customers_whose_window_closes_soonest_first(db, acme_number, alice):
    now = int(time.time())
    late, soon, closed = (
        receive(acme_number, fresh_wa_id(), now - age) for age in (3600, 20 * 3600, 25 * 3600)
    )
    answered = receive(acme_number, fresh_wa_id(), now - 22 * 3600)
    with schema_context("acme"):
        from conversations.models import Conversation

        actions.check_send_text_reply(Conversation.objects.get(pk=answered), alice, "done")
    listed = tenant_client(ACME, api_token("alice@acme.test")).get("/api/v1/conversations/?ordering=window")
    ids = [c["id"] for c in listed.json()["results"]]
    assert ids.index(soon) < ids.index(late)
    assert closed not in ids
    assert answered not in ids
    bad = tenant_client(ACME, api_token("alice@acme.test")).get("/api/v1/conversations/?ordering=oldest")
    assert bad.status_code == 400


def test_a_private_note_is_stored_listed_and_pushed_but_never_sent(db, acme_number):
    conversation_id = receive(acme_number, fresh_wa_id(), int(time.time()))
    client = tenant_client(ACME, api_token("alice@acme.test"))
    with responses.RequestsMock() as graph:  # no Graph request may be made
        created = client.post(
            f"/api/v1/conversations/{conversation_id}/notes/",
            {"text": "VIP, be kind"},
            content_type="application/json",
        )
        assert len(graph.calls) == 0
    assert created.status_code == 201
    assert created.json()["text"] == "VIP, be kind"
    assert created.json()["author_name"] == "Alice"
    listed = client.get(f"/api/v1/conversations/{conversation_id}/notes/").json()["results"]
    assert [n["id"] for n in listed] == [created.json()["id"]]
    with schema_context("acme"):
        from conversations.models import InboxEvent

        last = InboxEvent.objects.order_by("-pk").first()
        assert last is not None
        assert last.type == "note.created"
        assert last.payload["note"] == created.json()
    empty = client.post(
        f"/api/v1/conversations/{conversation_id}/notes/", {"text": "  "}, content_type="application/json"
    )
    assert empty.status_code == 400
    with schema_context("acme"):
        assert Note.objects.filter(conversation_id=conversation_id).count() == 1


def test_reading_a_conversation_sends_one_read_receipt_for_the_latest_message(
    db, acme_number, settings, django_capture_on_commit_callbacks
):
    settings.WHATSAPP_GRAPH_URL = GRAPH_URL
    wa_id = fresh_wa_id()
    now = int(time.time())
    receive(acme_number, wa_id, now - 60)
    conversation_id = receive(acme_number, wa_id, now - 30)
    with schema_context("acme"):
        from conversations.models import Message

        latest = Message.objects.filter(conversation_id=conversation_id).order_by("-created_at").first()
        assert latest is not None
    client = tenant_client(ACME, api_token("alice@acme.test"))
    with responses.RequestsMock() as graph:
        graph.post(f"{GRAPH_URL}/{ACME['pnid']}/messages", json={"success": True})
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(f"/api/v1/conversations/{conversation_id}/read/").json()["unread_count"] == 0
        with django_capture_on_commit_callbacks(execute=True):  # already read: nothing more is sent
            client.post(f"/api/v1/conversations/{conversation_id}/read/")
        assert len(graph.calls) == 1
        assert json.loads(graph.calls[0].request.body) == {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": latest.wamid,
        }
        assert graph.calls[0].request.headers["Authorization"] == f"Bearer {ACME['token']}"


def test_an_admin_can_keep_no_business_hours_at_all(db, restore_acme_timezone):
    token = api_token("ada@acme.test")
    response = patch_settings(token, {"business_hours": []})
    assert response.status_code == 200
    assert settings_of(token)["business_hours"] == []
    with schema_context("acme"):
        from tickets.actions import support_rules

        forget_support_rules()
        assert support_rules().calendar.weekly_hours == {}
