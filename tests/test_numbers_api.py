"""WhatsApp numbers for admins (/api/v1/numbers/): add, edit, remove, test the connection against the Graph API
(faked at the HTTP level), the health history in plain words, alerts with their e-mail, and the cost report."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django_tenants.utils import schema_context

from conversations.models import AccountEvent, Conversation, HealthAlert, InboxEvent, Message
from helpdesk.tenancy.actions import do_add_member
from helpdesk.tenancy.models import WhatsAppNumber
from tests.conftest import (
    ACME,
    GLOBEX,
    GRAPH_URL,
    PASSWORD,
    deliver_webhook,
    fresh_wa_id,
    issue_token,
    payload,
    public_client,
    receive_text,
    retarget,
    tenant_client,
)

NUMBER_URL = f"{GRAPH_URL}/{ACME['pnid']}"
SECOND = {
    "phone_number_id": "106540352200001",
    "waba_id": "102290129300001",
    "display_number": "+1 555 078 3999",
    "access_token": "ACME-SECOND-TOKEN",
    "app_secret": "acme-second-secret",
}


def described(**fields: Any) -> dict[str, Any]:
    """The Graph API's answer to GET /{phone-number-id} (payloads/phone_number_status_response.json)."""
    answer = payload("phone_number_status_response.json")
    answer.update({"id": ACME["pnid"], **fields})
    return answer


def admin(ada: Any) -> Any:
    return tenant_client(ACME, issue_token(ada))


def account_payload(name: str) -> dict[str, Any]:
    p = payload(name)
    for entry in p["entry"]:
        entry["id"] = ACME["waba"]
    return p


# ------------------------------------------------------------------ list, add, edit, remove


def test_an_admin_lists_the_tenants_numbers_without_their_credentials(db, ada, acme_number):
    response = admin(ada).get("/api/v1/numbers/")

    assert response.status_code == 200
    items = response.json()["results"]
    assert [item["phone_number_id"] for item in items] == [ACME["pnid"]]
    item = items[0]
    assert {
        "id",
        "phone_number_id",
        "waba_id",
        "display_number",
        "verified_name",
        "quality",
        "messaging_limit",
        "throughput",
        "simulator",
        "connection",
        "webhook_url",
        "verify_token",
    } <= set(item)
    assert (item["quality"], item["connection"], item["verify_token"]) == ("unknown", None, ACME["verify"])
    assert item["webhook_url"] == "http://localhost/webhooks/whatsapp/"
    body = response.content.decode()
    for secret in (
        ACME["token"],
        ACME["secret"],
        acme_number.access_token_encrypted,
        acme_number.app_secret_encrypted,
    ):
        assert secret not in body


def test_an_admin_adds_a_number_whose_signed_webhooks_then_reach_the_inbox(
    db, ada, django_capture_on_commit_callbacks
):
    response = admin(ada).post("/api/v1/numbers/", SECOND, content_type="application/json")

    assert response.status_code == 201, response.content
    item = response.json()
    assert (item["phone_number_id"], item["waba_id"], item["display_number"]) == (
        SECOND["phone_number_id"],
        SECOND["waba_id"],
        "15550783999",
    )
    assert SECOND["access_token"] not in response.content.decode()
    assert SECOND["app_secret"] not in response.content.decode()
    assert len(item["verify_token"]) >= 24  # generated: none was given
    stored = WhatsAppNumber.objects.get(pk=item["id"])
    assert (stored.tenant.schema_name, stored.access_token, stored.app_secret) == (
        "acme",
        SECOND["access_token"],
        SECOND["app_secret"],
    )

    spec = dict(ACME, pnid=SECOND["phone_number_id"], waba=SECOND["waba_id"], display="15550783999")
    wa_id = fresh_wa_id()
    deliver_webhook(
        django_capture_on_commit_callbacks,
        retarget(payload("inbound_text.json"), spec, wa_id=wa_id),
        secret=SECOND["app_secret"],
    )
    with schema_context("acme"):
        assert Conversation.objects.get(contact__wa_id=wa_id).number_id == stored.pk


@pytest.mark.parametrize(
    ("change", "code", "status"),
    [
        ({"phone_number_id": ACME["pnid"]}, "number_exists", 409),
        ({"phone_number_id": GLOBEX["pnid"]}, "number_exists", 409),
        ({"phone_number_id": "12ab"}, "invalid", 400),
        ({"waba_id": ""}, "invalid", 400),
        ({"access_token": ""}, "invalid", 400),
        ({"app_secret": None}, "invalid", 400),
    ],
    ids=["own", "another-tenants", "not-digits", "no-waba", "no-token", "no-secret"],
)
def test_a_number_that_is_taken_or_incomplete_is_refused_and_nothing_changes(db, ada, change, code, status):
    before = list(WhatsAppNumber.objects.order_by("pk").values())

    response = admin(ada).post("/api/v1/numbers/", {**SECOND, **change}, content_type="application/json")

    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert GLOBEX["slug"] not in response.content.decode()  # which tenant owns it is not told
    assert list(WhatsAppNumber.objects.order_by("pk").values()) == before


def test_patch_replaces_only_the_credentials_typed_anew_and_never_returns_them(db, ada, acme_number):
    client = admin(ada)

    response = client.patch(
        f"/api/v1/numbers/{acme_number.pk}/", {"access_token": "NEW-TOKEN"}, content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert "NEW-TOKEN" not in response.content.decode()
    stored = WhatsAppNumber.objects.get(pk=acme_number.pk)
    assert (stored.access_token, stored.app_secret) == ("NEW-TOKEN", ACME["secret"])
    response = client.patch(
        f"/api/v1/numbers/{acme_number.pk}/", {"phone_number_id": "1234"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert WhatsAppNumber.objects.get(pk=acme_number.pk).phone_number_id == ACME["pnid"]


def test_a_number_without_conversations_is_removed_and_one_with_them_is_kept(db, ada, acme_number):
    client = admin(ada)
    added = client.post("/api/v1/numbers/", SECOND, content_type="application/json").json()
    with schema_context("acme"):
        receive_text(acme_number, fresh_wa_id(), "hello", int(time.time()))

    assert client.delete(f"/api/v1/numbers/{added['id']}/").status_code == 204
    refused = client.delete(f"/api/v1/numbers/{acme_number.pk}/")

    assert not WhatsAppNumber.objects.filter(pk=added["id"]).exists()
    assert (refused.status_code, refused.json()["code"]) == (409, "number_in_use")
    assert WhatsAppNumber.objects.filter(pk=acme_number.pk).exists()


def test_a_regenerated_verify_token_answers_metas_handshake_and_the_old_one_no_longer_does(
    db, ada, acme_number
):
    response = admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/verify-token/")

    assert response.status_code == 200
    new = response.json()["verify_token"]
    assert new
    assert new != ACME["verify"]

    def handshake(token: str) -> Any:
        return public_client().get(
            "/webhooks/whatsapp/", {"hub.mode": "subscribe", "hub.challenge": "77", "hub.verify_token": token}
        )

    assert (handshake(new).status_code, handshake(new).content) == (200, b"77")
    assert handshake(ACME["verify"]).status_code == 403


# ------------------------------------------------------------------ test connection


def test_test_connection_reads_the_current_fields_with_the_numbers_own_token(db, ada, acme_number, graph):
    graph.get(NUMBER_URL, json=described(verified_name="Acme Store"), status=200)

    response = admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["ok"], answer["error"]) == (True, None)
    number = answer["number"]
    assert (number["verified_name"], number["quality"], number["messaging_limit"], number["throughput"]) == (
        "Acme Store",
        "green",
        "TIER_2K",
        "STANDARD",
    )
    assert number["connection"]["ok"] is True
    assert number["connection"]["checked_at"]
    request = graph.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {ACME['token']}"
    fields = parse_qs(urlsplit(request.url).query)["fields"][0].split(",")
    assert "whatsapp_business_manager_messaging_limit" in fields
    assert "messaging_limit_tier" not in fields
    with schema_context("acme"):  # each change is in the history
        changes = {e.event: e.value for e in AccountEvent.objects.filter(field="number_state")}
    assert changes["QUALITY_RATING"] == {"old": "UNKNOWN", "new": "GREEN"}
    assert changes["MESSAGING_LIMIT"] == {"old": "", "new": "TIER_2K"}


@pytest.mark.parametrize(
    ("code", "message"),
    [(190, "Error validating access token: Session has expired"), (100, "Unsupported get request.")],
)
def test_test_connection_shows_metas_error_and_keeps_what_was_known(
    db, ada, acme_number, graph, code, message
):
    WhatsAppNumber.objects.filter(pk=acme_number.pk).update(
        verified_name="Acme Store", quality_rating="GREEN"
    )
    graph.get(
        NUMBER_URL, json={"error": {"message": message, "type": "OAuthException", "code": code}}, status=400
    )

    answer = admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/").json()

    assert answer["ok"] is False
    assert answer["error"]["code"] == code
    assert message in answer["error"]["message"]
    assert (answer["number"]["verified_name"], answer["number"]["quality"]) == ("Acme Store", "green")
    assert answer["number"]["connection"]["ok"] is False
    assert answer["number"]["connection"]["error"]["code"] == code


def test_a_simulator_number_tests_against_the_simulator_and_says_so(db, ada, acme):
    from helpdesk.tenancy.actions import do_add_number

    number = do_add_number(
        acme,
        phone_number_id="555000111",
        waba_id="555000112",
        display_number="6280000",
        access_token="x",
        app_secret="y",
        simulator=True,
    )

    answer = admin(ada).post(f"/api/v1/numbers/{number.pk}/test/").json()

    assert answer["ok"] is True
    assert (answer["number"]["simulator"], answer["number"]["verified_name"]) == (True, "Simulator")


# ------------------------------------------------------------------ health history and alerts


def test_account_events_are_listed_for_every_number_of_the_account_once_newest_first(
    db, ada, acme_number, django_capture_on_commit_callbacks, graph
):
    graph.get(NUMBER_URL, json=described(), status=200)  # the refresh each account webhook triggers
    violation = account_payload("account_update_violation.json")
    deliver_webhook(django_capture_on_commit_callbacks, violation)
    deliver_webhook(django_capture_on_commit_callbacks, violation)  # Meta redelivers
    deliver_webhook(django_capture_on_commit_callbacks, account_payload("phone_number_quality_update.json"))

    client = admin(ada)
    events = client.get(f"/api/v1/numbers/{acme_number.pk}/events/").json()["results"]
    meta = [e for e in events if e["field"] != "number_state"]

    assert [e["field"] for e in meta] == ["phone_number_quality_update", "account_update"]
    assert meta[1]["summary"] == "Meta found a policy violation on the business account: adult."
    assert meta[1]["payload"] == violation["entry"][0]["changes"][0]["value"]
    assert {"id", "field", "event", "summary", "received_at", "payload"} <= set(meta[0])
    assert "unlimited customers a day" in meta[0]["summary"]
    indonesian = client.get(f"/api/v1/numbers/{acme_number.pk}/events/", HTTP_ACCEPT_LANGUAGE="id").json()
    violation_in_id = next(e for e in indonesian["results"] if e["field"] == "account_update")
    assert "Meta menemukan pelanggaran kebijakan" in violation_in_id["summary"]
    # a second number of the same account lists the account's event too, not the first number's own
    second = client.post(
        "/api/v1/numbers/", {**SECOND, "waba_id": ACME["waba"]}, content_type="application/json"
    ).json()
    fields = [e["field"] for e in client.get(f"/api/v1/numbers/{second['id']}/events/").json()["results"]]
    assert fields == ["account_update"]


def test_a_violation_raises_an_alert_for_supervisors_and_mails_the_admins(
    db, ada, sam, alice, django_capture_on_commit_callbacks, mailoutbox, graph
):
    graph.get(NUMBER_URL, json=described(), status=200)

    deliver_webhook(django_capture_on_commit_callbacks, account_payload("account_update_violation.json"))

    alerts = tenant_client(ACME, issue_token(sam)).get("/api/v1/alerts/").json()
    assert [(a["kind"], a["level"]) for a in alerts] == [("violation", 3)]
    assert "policy violation" in alerts[0]["summary"]
    assert tenant_client(ACME, issue_token(alice)).get("/api/v1/alerts/").status_code == 403
    assert [m.to for m in mailoutbox] == [["ada@acme.test"]]
    assert "policy violation" in mailoutbox[0].body
    assert "pelanggaran kebijakan" in mailoutbox[0].body  # in Indonesian too
    with schema_context("acme"):  # pushed live: an inbox event
        assert InboxEvent.objects.filter(type="health.alert").count() == 1


def test_an_acknowledged_alert_stays_hidden_until_the_state_worsens(
    db, ada, sam, acme_number, graph, mailoutbox, django_capture_on_commit_callbacks
):
    client = tenant_client(ACME, issue_token(sam))
    for quality in ("GREEN", "YELLOW"):
        graph.upsert(responses.GET, NUMBER_URL, json=described(quality_rating=quality), status=200)
        with django_capture_on_commit_callbacks(execute=True):
            admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/")
    [alert] = client.get("/api/v1/alerts/").json()
    assert (alert["kind"], alert["level"], alert["number"]) == ("quality", 2, acme_number.pk)
    assert "Quality rating changed from high (green) to medium (yellow)." in alert["summary"]

    assert client.post(f"/api/v1/alerts/{alert['id']}/acknowledge/").status_code == 200
    assert client.get("/api/v1/alerts/").json() == []
    graph.upsert(responses.GET, NUMBER_URL, json=described(quality_rating="YELLOW"), status=200)
    admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/")
    assert client.get("/api/v1/alerts/").json() == []  # the same state: still acknowledged

    graph.upsert(responses.GET, NUMBER_URL, json=described(quality_rating="RED"), status=200)
    with django_capture_on_commit_callbacks(execute=True):
        admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/")
    assert [(a["id"], a["level"]) for a in client.get("/api/v1/alerts/").json()] == [(alert["id"], 3)]
    assert len(mailoutbox) == 2

    graph.upsert(responses.GET, NUMBER_URL, json=described(quality_rating="GREEN"), status=200)
    admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/")
    assert client.get("/api/v1/alerts/").json() == []
    with schema_context("acme"):
        assert HealthAlert.objects.get(pk=alert["id"]).cleared_at is not None


def test_a_scheduled_disable_is_an_alert_and_a_reinstatement_clears_it(
    db, sam, django_capture_on_commit_callbacks, graph
):
    graph.get(NUMBER_URL, json=described(), status=200)
    p = account_payload("account_update_disabled.json")
    p["entry"][0]["changes"][0]["value"]["ban_info"]["waba_ban_state"] = "SCHEDULE_FOR_DISABLE"
    deliver_webhook(django_capture_on_commit_callbacks, p)
    client = tenant_client(ACME, issue_token(sam))
    [alert] = client.get("/api/v1/alerts/").json()
    assert (alert["kind"], alert["level"]) == ("disable", 4)
    assert "will disable the business account on April 17, 2025" in alert["summary"]

    p["entry"][0]["changes"][0]["value"]["ban_info"]["waba_ban_state"] = "REINSTATE"
    deliver_webhook(django_capture_on_commit_callbacks, p)

    assert client.get("/api/v1/alerts/").json() == []


# ------------------------------------------------------------------ costs


def test_the_cost_report_counts_billable_messages_per_day_and_category(
    db, ada, acme_number, django_capture_on_commit_callbacks
):
    from tests.conftest import queue_outbound

    with schema_context("acme"):
        conversation = receive_text(acme_number, fresh_wa_id(), "hi", int(time.time())).conversation
        wamids = []
        for n in range(3):
            message = queue_outbound(conversation.pk, at=None)
            wamids.append(f"wamid.COST{n}")
            Message.objects.filter(pk=message.pk).update(wamid=wamids[-1], status="sent")
    for wamid, billable, category in zip(
        wamids, (True, True, False), ("marketing", "marketing", "service"), strict=True
    ):
        status = retarget(payload("status_delivered.json"))
        item = status["entry"][0]["changes"][0]["value"]["statuses"][0]
        item.update(id=wamid, timestamp=str(int(time.time())))
        item["pricing"] = {"billable": billable, "pricing_model": "PMP", "category": category}
        deliver_webhook(django_capture_on_commit_callbacks, status)

    report = admin(ada).get(f"/api/v1/numbers/{acme_number.pk}/costs/").json()

    assert report["billable_by_category"] == {"marketing": 2, "service": 0}
    assert sorted((row["category"], row["billable"], row["free"]) for row in report["rows"]) == [
        ("marketing", 2, 0),
        ("service", 0, 1),
    ]
    with schema_context("acme"):
        assert Message.objects.get(wamid=wamids[0]).pricing_model == "PMP"


# ------------------------------------------------------------------ who may


def number_requests(number_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/api/v1/numbers/{number_id}/"
    return [
        ("get", "/api/v1/numbers/", None),
        ("post", "/api/v1/numbers/", SECOND),
        ("get", base, None),
        ("patch", base, {"display_number": "123"}),
        ("delete", base, None),
        ("post", base + "test/", None),
        ("post", base + "verify-token/", None),
        ("get", base + "events/", None),
        ("get", base + "costs/", None),
    ]


def send(client: Any, method: str, path: str, body: dict[str, Any] | None) -> Any:
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


def test_agents_supervisors_deactivated_admins_and_other_tenants_cannot_touch_numbers(
    db, alice, sam, ada, globex, acme_number, graph
):
    outsider = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    before = list(WhatsAppNumber.objects.order_by("pk").values())
    token = issue_token(ada)
    ada.is_active = False
    ada.save()
    for method, path, body in number_requests(acme_number.pk):
        for user in (alice, sam, outsider):
            assert send(tenant_client(ACME, issue_token(user)), method, path, body).status_code == 403, (
                user.email,
                method,
                path,
            )
        assert send(tenant_client(ACME, token), method, path, body).status_code in (401, 403), (method, path)
        assert send(tenant_client(ACME), method, path, body).status_code in (401, 403), (method, path)
    # another tenant's admin on its own domain does not find acme's number
    for method, path, body in number_requests(acme_number.pk)[2:]:
        assert send(tenant_client(GLOBEX, issue_token(outsider)), method, path, body).status_code == 404
    assert list(WhatsAppNumber.objects.order_by("pk").values()) == before
    assert [call.request.url for call in graph.calls] == []


def test_an_account_webhook_reads_the_number_again(
    db, acme_number, graph, django_capture_on_commit_callbacks
):
    graph.get(NUMBER_URL, json=described(quality_rating="YELLOW"), status=200)

    deliver_webhook(django_capture_on_commit_callbacks, account_payload("phone_number_quality_update.json"))

    assert [call.request.url.split("?")[0] for call in graph.calls] == [NUMBER_URL]
    number = WhatsAppNumber.objects.get(pk=acme_number.pk)
    assert (number.quality_rating, number.connection_ok) == ("YELLOW", True)
    assert number.messaging_limit == "TIER_2K"  # the read's answer, after the webhook's TIER_UNLIMITED


def test_beat_reads_every_tenants_numbers(db, graph):
    from conversations import tasks

    graph.get(NUMBER_URL, json=described(verified_name="Acme Store"), status=200)
    graph.get(
        f"{GRAPH_URL}/{GLOBEX['pnid']}", json=described(id=GLOBEX["pnid"], verified_name="Globex"), status=200
    )

    tasks.refresh_all_numbers()

    names = dict(WhatsAppNumber.objects.values_list("phone_number_id", "verified_name"))
    assert (names[ACME["pnid"]], names[GLOBEX["pnid"]]) == ("Acme Store", "Globex")
    tokens = {call.request.url.split("?")[0]: call.request.headers["Authorization"] for call in graph.calls}
    assert tokens == {
        NUMBER_URL: f"Bearer {ACME['token']}",
        f"{GRAPH_URL}/{GLOBEX['pnid']}": f"Bearer {GLOBEX['token']}",
    }


@pytest.mark.parametrize("path", ["/numbers/", "/templates/"])
def test_the_admin_pages_are_for_admins_of_the_tenant(db, alice, sam, ada, globex, path):
    from django.test import Client

    outsider = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    for user, status in ((alice, 403), (sam, 403), (outsider, 403), (ada, 200)):
        client = Client(HTTP_HOST=ACME["domain"])
        client.force_login(user)
        response = client.get(path)
        assert response.status_code == status, (user.email, response.status_code)
        if user in (alice, sam):  # members are told why (a stranger is told they are not a member)
            assert "This page is for admins." in response.content.decode()
    anonymous = Client(HTTP_HOST=ACME["domain"]).get(path)
    assert (anonymous.status_code, anonymous["Location"].split("?")[0]) == (302, "/login/")


def test_the_numbers_page_speaks_indonesian(db, ada):
    from django.test import Client

    client = Client(HTTP_HOST=ACME["domain"], HTTP_ACCEPT_LANGUAGE="id")
    client.force_login(ada)
    page = client.get("/numbers/").content.decode()
    assert "Nomor WhatsApp" in page
    assert "Tambah nomor" in page


def test_alerts_are_refused_to_agents_other_tenants_and_deactivated_users(
    db, alice, sam, globex, django_capture_on_commit_callbacks, graph
):
    graph.get(NUMBER_URL, json=described(), status=200)
    deliver_webhook(django_capture_on_commit_callbacks, account_payload("account_update_violation.json"))
    outsider = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    with schema_context("acme"):
        alert_id = HealthAlert.objects.get().pk
    token = issue_token(sam)
    sam.is_active = False
    sam.save()
    for client in (
        tenant_client(ACME, issue_token(alice)),
        tenant_client(ACME, issue_token(outsider)),
        tenant_client(ACME, token),
        tenant_client(ACME),
    ):
        assert client.get("/api/v1/alerts/").status_code in (401, 403)
        assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge/").status_code in (401, 403)
    gina = tenant_client(GLOBEX, issue_token(outsider))
    assert gina.get("/api/v1/alerts/").json() == []  # globex has none: acme's is not listed there
    assert gina.post(f"/api/v1/alerts/{alert_id}/acknowledge/").status_code == 404
    with schema_context("acme"):
        assert HealthAlert.objects.get().acknowledged_at is None


def test_an_odd_answer_from_the_graph_api_is_kept_as_far_as_it_fits(db, ada, acme_number, graph):
    graph.get(
        NUMBER_URL,
        json=described(
            verified_name="N" * 300,
            quality_rating="PURPLE",
            whatsapp_business_manager_messaging_limit="L" * 50,
            display_phone_number="9" * 40,
        ),
        status=200,
    )

    answer = admin(ada).post(f"/api/v1/numbers/{acme_number.pk}/test/").json()

    assert answer["ok"] is True
    number = answer["number"]
    assert (
        number["verified_name"],
        number["quality"],
        number["messaging_limit"],
        number["display_number"],
    ) == ("N" * 200, "unknown", "L" * 32, ACME["display"])
