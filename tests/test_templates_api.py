"""Message templates (/api/v1/templates/): submitted only after the content check, synced from Meta page by page,
kept current by Meta's template webhooks, and sent from a conversation only when approved and filled in right
(the Graph API faked at the HTTP level)."""

from __future__ import annotations

import json
import time
from io import StringIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django_tenants.utils import schema_context

from conversations.models import Message, MessageTemplate
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
    receive_text,
    tenant_client,
)

TEMPLATES_URL = f"{GRAPH_URL}/{ACME['waba']}/message_templates"
MESSAGES_URL = f"{GRAPH_URL}/{ACME['pnid']}/messages"
SHIPPED = "Halo {{1}}, pesanan {{2}} sudah dikirim dan tiba dalam 2 hari kerja."


def draft(
    name: str = "order_shipped",
    text: str = SHIPPED,
    examples: list[str] | None = None,
    category: str = "UTILITY",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "BODY", "text": text}
    examples = ["Budi", "#A123"] if examples is None else examples
    if examples:
        body["example"] = {"body_text": [examples]}
    return {
        "name": name,
        "language": "id",
        "category": category,
        "components": [body, *extra.pop("more", [])],
        **extra,
    }


def admin(ada: Any) -> Any:
    return tenant_client(ACME, issue_token(ada))


def submit(client: Any, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/templates/", body, content_type="application/json")


def template_webhook(meta_id: str, name: str, event: str, **value: Any) -> dict[str, Any]:
    p = payload("template_status_update.json")
    p["entry"][0]["id"] = ACME["waba"]
    p["entry"][0]["changes"][0]["value"].update(
        event=event,
        message_template_id=int(meta_id),
        message_template_name=name,
        message_template_language="id",
        **value,
    )
    return p


def stored(template_id: int) -> MessageTemplate:
    with schema_context("acme"):
        return MessageTemplate.objects.get(pk=template_id)


def approved(name: str, components: list[dict[str, Any]], status: str = "approved") -> MessageTemplate:
    with schema_context("acme"):
        return MessageTemplate.objects.create(
            waba_id=ACME["waba"],
            meta_id=str(abs(hash(name)) % 10**12),
            name=name,
            language="id",
            category="UTILITY",
            components=components,
            status=status,
        )


# ------------------------------------------------------------------ submit


def test_a_blocked_template_is_refused_with_its_findings_and_nothing_reaches_meta(db, ada, graph):
    bad = draft(
        "promo_jackpot",
        "Menangkan jackpot judi online slot gacor hari ini! Daftar sekarang.",
        [],
        "MARKETING",
    )

    response = submit(admin(ada), bad)

    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "content_check_failed"
    assert "prohibited_content" in {f["code"] for f in answer["findings"] if f["severity"] == "error"}
    assert len(graph.calls) == 0
    with schema_context("acme"):
        assert not MessageTemplate.objects.exists()


def test_a_clean_template_is_submitted_to_meta_with_the_numbers_token_and_is_pending(
    db, ada, acme_number, graph
):
    graph.post(TEMPLATES_URL, json={"id": "880001", "status": "PENDING", "category": "UTILITY"}, status=200)

    response = submit(admin(ada), draft(number=acme_number.pk))

    assert response.status_code == 201, response.content
    item = response.json()
    assert (
        item["name"],
        item["language"],
        item["category"],
        item["status"],
        item["number"],
        item["meta_id"],
    ) == ("order_shipped", "id", "UTILITY", "pending", acme_number.pk, "880001")
    [call] = graph.calls
    assert call.request.headers["Authorization"] == f"Bearer {ACME['token']}"
    sent = json.loads(call.request.body)
    assert (sent["name"], sent["language"], sent["category"]) == ("order_shipped", "id", "UTILITY")
    assert sent["components"][0]["text"] == SHIPPED
    assert "parameter_format" not in sent


def test_named_variables_are_submitted_with_the_named_parameter_format(db, ada, graph):
    graph.post(TEMPLATES_URL, json={"id": "880002", "status": "PENDING", "category": "UTILITY"}, status=200)
    body = {
        "type": "BODY",
        "text": "Halo {{customer}}, pesanan {{order}} sudah dikirim hari ini ya.",
        "example": {
            "body_text_named_params": [
                {"param_name": "customer", "example": "Budi"},
                {"param_name": "order", "example": "#A1"},
            ]
        },
    }

    response = submit(admin(ada), {**draft(), "components": [body]})

    assert response.status_code == 201, response.content
    assert json.loads(graph.calls[0].request.body)["parameter_format"] == "NAMED"
    assert response.json()["parameter_format"] == "named"


def test_a_template_meta_refuses_stays_a_draft_and_a_retry_submits_it_once(db, ada, graph):
    graph.post(
        TEMPLATES_URL,
        json={
            "error": {
                "message": "Invalid parameter",
                "type": "OAuthException",
                "code": 100,
                "error_user_title": "Template name exists",
            }
        },
        status=400,
    )
    client = admin(ada)

    refused = submit(client, draft())

    assert refused.status_code == 400
    assert (refused.json()["code"], refused.json()["error"]["code"]) == ("meta_refused", 100)
    assert "Template name exists" in refused.json()["detail"]
    with schema_context("acme"):
        assert list(MessageTemplate.objects.values_list("status", flat=True)) == ["draft"]

    graph.upsert(responses.POST, TEMPLATES_URL, json={"id": "880003", "status": "PENDING"}, status=200)
    assert submit(client, draft()).status_code == 201
    again = submit(client, draft())  # already submitted: refused before Meta is asked

    assert (again.status_code, again.json()["code"]) == (409, "template_exists")
    assert len(graph.calls) == 2
    with schema_context("acme"):
        assert list(MessageTemplate.objects.values_list("status", "meta_id")) == [("pending", "880003")]


def test_a_body_that_is_not_an_object_or_names_another_tenants_number_is_refused(db, ada, globex, graph):
    from helpdesk.tenancy.models import WhatsAppNumber

    client = admin(ada)
    globex_number = WhatsAppNumber.objects.get(phone_number_id=GLOBEX["pnid"])

    assert client.post("/api/v1/templates/", [1], content_type="application/json").status_code == 400
    response = submit(client, draft(number=globex_number.pk))
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert len(graph.calls) == 0


# ------------------------------------------------------------------ Meta's webhooks


def test_status_quality_and_category_webhooks_keep_the_template_current(
    db, ada, graph, django_capture_on_commit_callbacks
):
    graph.post(TEMPLATES_URL, json={"id": "880004", "status": "PENDING", "category": "UTILITY"}, status=200)
    graph.get(f"{GRAPH_URL}/{ACME['pnid']}", json={"quality_rating": "GREEN"}, status=200)
    client = admin(ada)
    template_id = submit(client, draft()).json()["id"]

    deliver_webhook(
        django_capture_on_commit_callbacks, template_webhook("880004", "order_shipped", "APPROVED")
    )
    assert stored(template_id).status == "approved"

    deliver_webhook(
        django_capture_on_commit_callbacks,
        template_webhook(
            "880004", "order_shipped", "PAUSED", other_info={"title": "FIRST_PAUSE", "description": "Paused."}
        ),
    )
    item = client.get(f"/api/v1/templates/{template_id}/").json()
    assert (item["status"], item["reason_code"]) == ("paused", "FIRST_PAUSE")
    assert item["reason"].startswith("Paused by Meta for low quality (first pause: 3 hours).")
    indonesian = client.get(f"/api/v1/templates/{template_id}/", HTTP_ACCEPT_LANGUAGE="id").json()
    assert indonesian["reason"].startswith("Dijeda oleh Meta karena kualitas rendah")

    quality = payload("template_quality_update.json")
    quality["entry"][0]["id"] = ACME["waba"]
    quality["entry"][0]["changes"][0]["value"].update(message_template_id=880004)
    deliver_webhook(django_capture_on_commit_callbacks, quality)
    assert stored(template_id).quality == "yellow"

    category = payload("template_category_update.json")
    category["entry"][0]["id"] = ACME["waba"]
    value = category["entry"][0]["changes"][0]["value"]
    value.update(
        message_template_id=880004,
        previous_category="UTILITY",
        new_category="UTILITY",
        correct_category="MARKETING",
    )
    value.pop("previous_category")
    deliver_webhook(django_capture_on_commit_callbacks, category)
    assert (stored(template_id).category, stored(template_id).correct_category) == ("UTILITY", "MARKETING")
    value.pop("correct_category")
    value.update(previous_category="UTILITY", new_category="MARKETING")
    category["entry"][0]["time"] += 86400
    deliver_webhook(django_capture_on_commit_callbacks, category)
    template = stored(template_id)
    assert (template.category, template.previous_category, template.correct_category) == (
        "MARKETING",
        "UTILITY",
        "",
    )


def test_a_rejection_keeps_metas_reason_and_recommendation(db, ada, django_capture_on_commit_callbacks):
    p = payload("template_status_update_rejected.json")
    p["entry"][0]["id"] = ACME["waba"]
    value = p["entry"][0]["changes"][0]["value"]

    deliver_webhook(django_capture_on_commit_callbacks, p)  # a template made in Meta's own tools: added

    [item] = admin(ada).get("/api/v1/templates/?status=rejected").json()["results"]
    assert (item["name"], item["language"], item["status"], item["reason_code"], item["category"]) == (
        value["message_template_name"],
        value["message_template_language"],
        "rejected",
        "INVALID_FORMAT",
        "MARKETING",
    )
    assert value["rejection_info"]["reason"] in item["reason"]
    assert "Meta recommends: Separate parameters" in item["reason"]


# ------------------------------------------------------------------ sync and delete


def test_sync_reads_every_page_and_drops_what_meta_no_longer_has(db, ada, graph):
    approved("gone_at_meta", [{"type": "BODY", "text": "Old"}])
    with schema_context("acme"):
        MessageTemplate.objects.create(
            waba_id=ACME["waba"], name="my_draft", language="id", category="UTILITY"
        )
    rows = [
        {
            "id": str(770000 + i),
            "name": f"synced_{i}",
            "language": "en",
            "status": "APPROVED",
            "category": "MARKETING",
            "quality_score": {"score": "GREEN"},
            "components": [{"type": "BODY", "text": f"Hello number {i}"}],
        }
        for i in range(5)
    ]

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        start = int(parse_qs(urlsplit(request.url).query).get("after", ["0"])[0])
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + 2)}}
        if start + 2 < len(rows):
            paging["next"] = f"https://graph.test/elsewhere?after={start + 2}"  # only its cursor is followed
        return 200, {}, json.dumps({"data": rows[start : start + 2], "paging": paging})

    graph.add_callback(responses.GET, TEMPLATES_URL, callback=page, content_type="application/json")

    response = admin(ada).post("/api/v1/templates/sync/")

    assert response.json() == {"synced": 5, "errors": []}
    assert len(graph.calls) == 3
    assert all(call.request.headers["Authorization"] == f"Bearer {ACME['token']}" for call in graph.calls)
    with schema_context("acme"):
        assert sorted(MessageTemplate.objects.values_list("name", "status", "quality")) == [
            ("my_draft", "draft", "unknown"),
            *[(f"synced_{i}", "approved", "green") for i in range(5)],
        ]


def test_a_sync_meta_refuses_changes_nothing_and_says_why(db, ada, graph):
    approved("kept", [{"type": "BODY", "text": "Kept"}])
    graph.get(TEMPLATES_URL, json={"error": {"message": "Session has expired", "code": 190}}, status=401)

    response = admin(ada).post("/api/v1/templates/sync/")

    assert (response.status_code, response.json()["code"], response.json()["error"]["code"]) == (
        502,
        "meta_refused",
        190,
    )
    with schema_context("acme"):
        assert list(MessageTemplate.objects.values_list("name", flat=True)) == ["kept"]


def test_deleting_a_template_deletes_it_at_meta_by_name_and_id(db, ada, graph, acme_number):
    template = approved("to_delete", [{"type": "BODY", "text": "Bye"}])
    MessageTemplate.objects.filter(pk=template.pk).update(number=acme_number)
    graph.delete(TEMPLATES_URL, json={"success": True}, status=200)

    assert admin(ada).delete(f"/api/v1/templates/{template.pk}/").status_code == 204

    query = parse_qs(urlsplit(graph.calls[0].request.url).query)
    assert (query["name"], query["hsm_id"]) == (["to_delete"], [template.meta_id])
    with schema_context("acme"):
        assert not MessageTemplate.objects.filter(pk=template.pk).exists()


# ------------------------------------------------------------------ who sees what


def test_agents_list_and_read_approved_templates_only(db, alice, ada):
    ok = approved("ok_one", [{"type": "BODY", "text": "Hi"}])
    pending = approved("waiting", [{"type": "BODY", "text": "Hi"}], status="pending")
    agent = tenant_client(ACME, issue_token(alice))

    names = [t["name"] for t in agent.get("/api/v1/templates/").json()["results"]]
    assert names == ["ok_one"]
    assert agent.get("/api/v1/templates/?status=pending").json()["results"] == []
    assert agent.get(f"/api/v1/templates/{ok.pk}/").status_code == 200
    assert agent.get(f"/api/v1/templates/{pending.pk}/").status_code == 404
    assert [t["name"] for t in admin(ada).get("/api/v1/templates/?status=pending").json()["results"]] == [
        "waiting"
    ]


def test_only_admins_of_the_tenant_change_templates(db, alice, sam, ada, globex, graph):
    template = approved("ok_one", [{"type": "BODY", "text": "Hi"}])
    outsider = do_add_member(globex, "gina@globex.test", "admin", PASSWORD, "Gina").user
    token = issue_token(ada)
    ada.is_active = False
    ada.save()
    changes = [
        ("post", "/api/v1/templates/", draft()),
        ("delete", f"/api/v1/templates/{template.pk}/", None),
        ("patch", f"/api/v1/templates/{template.pk}/", {"components": BODY_ONLY}),
        ("post", "/api/v1/templates/sync/", None),
        ("post", "/api/v1/templates/check/", draft()),
    ]
    for method, path, body in changes:
        for client in (
            tenant_client(ACME, issue_token(alice)),
            tenant_client(ACME, issue_token(sam)),
            tenant_client(ACME, issue_token(outsider)),
        ):
            assert _send(client, method, path, body).status_code == 403, path
        for client in (tenant_client(ACME, token), tenant_client(ACME)):
            assert _send(client, method, path, body).status_code in (401, 403), path
    for path in ("/api/v1/templates/", f"/api/v1/templates/{template.pk}/"):
        assert tenant_client(ACME, issue_token(outsider)).get(path).status_code == 403
        assert tenant_client(ACME, token).get(path).status_code in (401, 403)
    # globex's admin, on globex's domain, does not see acme's template
    assert (
        tenant_client(GLOBEX, issue_token(outsider)).get(f"/api/v1/templates/{template.pk}/").status_code
        == 404
    )
    assert len(graph.calls) == 0
    with schema_context("acme"):
        assert list(MessageTemplate.objects.values_list("name", flat=True)) == ["ok_one"]


def _send(client: Any, method: str, path: str, body: Any) -> Any:
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


# ------------------------------------------------------------------ sending


@pytest.fixture
def closed_conversation(db: None, acme_number: Any) -> Any:
    """A customer who wrote 26 hours ago: the 24-hour window is closed."""
    return receive_text(acme_number, fresh_wa_id(), "halo", int(time.time()) - 26 * 3600).conversation


def send_template(token: str, conversation_id: int, template: Any) -> Any:
    return tenant_client(ACME, token).post(
        f"/api/v1/conversations/{conversation_id}/messages/",
        {"template": template},
        content_type="application/json",
    )


FULL = [
    {"type": "HEADER", "format": "TEXT", "text": "Pesanan {{1}}", "example": {"header_text": ["#A1"]}},
    {"type": "BODY", "text": SHIPPED, "example": {"body_text": [["Budi", "#A1"]]}},
    {"type": "FOOTER", "text": "Toko Acme"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Bicara dengan agen"},
            {"type": "URL", "text": "Lacak", "url": "https://acme.test/lacak/{{1}}", "example": ["A1"]},
        ],
    },
]


def test_an_approved_template_goes_into_a_closed_window_as_the_customer_will_see_it(
    db, alice, closed_conversation, graph, django_capture_on_commit_callbacks
):
    approved("order_shipped", FULL)
    graph.post(
        MESSAGES_URL, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.TPL1"}]}, status=200
    )
    parameters = [
        {"type": "header", "parameters": [{"type": "text", "text": "#A123"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "#A123"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "A123"}]},
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = send_template(
            issue_token(alice),
            closed_conversation.pk,
            {"name": "order_shipped", "language": "id", "components": parameters},
        )

    assert response.status_code == 201, response.content
    item = response.json()
    assert item["type"] == "template"
    assert item["text"] == (
        "Pesanan #A123\n\nHalo Budi, pesanan #A123 sudah dikirim dan tiba dalam 2 hari kerja."
        "\n\nToko Acme\n\n[Bicara dengan agen] | [Lacak]"
    )
    sent = json.loads(graph.calls[0].request.body)
    assert (sent["type"], sent["to"]) == ("template", "+" + closed_conversation.contact.wa_id)
    assert sent["template"] == {
        "name": "order_shipped",
        "language": {"code": "id"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "#A123"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "#A123"}],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": "1",
                "parameters": [{"type": "text", "text": "A123"}],
            },
        ],
    }
    with schema_context("acme"):
        assert Message.objects.get(pk=item["id"]).status == "sent"


BODY_ONLY = [{"type": "BODY", "text": SHIPPED}]


@pytest.mark.parametrize(
    ("status", "template", "code"),
    [
        ("approved", {"name": "nope", "language": "id"}, "template_unknown"),
        ("approved", {"name": "order_shipped", "language": "en"}, "template_unknown"),
        ("pending", {"name": "order_shipped", "language": "id"}, "template_not_approved"),
        ("rejected", {"name": "order_shipped", "language": "id"}, "template_not_approved"),
        ("paused", {"name": "order_shipped", "language": "id"}, "template_paused"),
        ("disabled", {"name": "order_shipped", "language": "id"}, "template_disabled"),
        ("approved", {"name": "order_shipped", "language": "id"}, "template_parameters"),
        (
            "approved",
            {
                "name": "order_shipped",
                "language": "id",
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Budi"}]}],
            },
            "template_parameters",
        ),
        (
            "approved",
            {
                "name": "order_shipped",
                "language": "id",
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": "a\nb"}],
                    }
                ],
            },
            "template_parameters",
        ),
        (
            "approved",
            {
                "name": "order_shipped",
                "language": "id",
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": "Budi"}, {"type": "text", "text": " "}],
                    }
                ],
            },
            "template_parameters",
        ),
        (
            "approved",
            {
                "name": "order_shipped",
                "language": "id",
                "components": [{"type": "header", "parameters": [{"type": "text", "text": "x"}]}],
            },
            "template_parameters",
        ),
        ("approved", {"name": "order_shipped", "language": "id", "components": "body"}, "invalid_template"),
        ("approved", {"language": "id"}, "invalid_template"),
        ("approved", "order_shipped", "invalid_template"),
    ],
    ids=[
        "unknown",
        "other-language",
        "pending",
        "rejected",
        "paused",
        "disabled",
        "no-values",
        "too-few",
        "new-line",
        "blank",
        "no-header-variables",
        "not-a-list",
        "no-name",
        "not-an-object",
    ],
)
def test_a_template_that_cannot_be_sent_is_refused_with_a_code_before_anything_is_queued(
    db, alice, closed_conversation, graph, status, template, code, django_capture_on_commit_callbacks
):
    approved("order_shipped", BODY_ONLY, status=status)
    with schema_context("acme"):
        before = Message.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = send_template(issue_token(alice), closed_conversation.pk, template)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert len(graph.calls) == 0
    with schema_context("acme"):
        assert Message.objects.count() == before


def test_named_variables_are_filled_by_name(
    db, alice, closed_conversation, graph, django_capture_on_commit_callbacks
):
    approved(
        "named_one", [{"type": "BODY", "text": "Halo {{customer}}, pesanan {{order}} sudah dikirim ya."}]
    )
    graph.post(
        MESSAGES_URL, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.TPL2"}]}, status=200
    )
    values = [
        {"type": "text", "parameter_name": "order", "text": "#9"},
        {"type": "text", "parameter_name": "customer", "text": "Budi"},
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = send_template(
            issue_token(alice),
            closed_conversation.pk,
            {"name": "named_one", "language": "id", "components": [{"type": "body", "parameters": values}]},
        )

    assert response.status_code == 201, response.content
    assert response.json()["text"] == "Halo Budi, pesanan #9 sudah dikirim ya."
    wrong = send_template(
        issue_token(alice),
        closed_conversation.pk,
        {
            "name": "named_one",
            "language": "id",
            "components": [
                {"type": "body", "parameters": [dict(values[0], parameter_name="ordr"), values[1]]}
            ],
        },
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "template_parameters")
    assert len(graph.calls) == 1


# ------------------------------------------------------------------ editing where Meta allows


def edit(client: Any, template_id: int, changes: Any) -> Any:
    return client.patch(f"/api/v1/templates/{template_id}/", changes, content_type="application/json")


def test_an_approved_template_is_edited_at_meta_and_goes_back_to_review(db, ada, acme_number, graph):
    template = approved("order_shipped", BODY_ONLY)
    MessageTemplate.objects.filter(pk=template.pk).update(number=acme_number)
    graph.post(f"{GRAPH_URL}/{template.meta_id}", json={"success": True}, status=200)
    new_body = [
        {
            "type": "BODY",
            "text": "Halo {{1}}, paket {{2}} sudah dikirim hari ini ya.",
            "example": {"body_text": [["Budi", "#A1"]]},
        }
    ]

    response = edit(admin(ada), template.pk, {"components": new_body})

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["components"][0]["text"]) == (
        "pending",
        new_body[0]["text"],
    )
    [call] = graph.calls
    assert call.request.headers["Authorization"] == f"Bearer {ACME['token']}"
    assert json.loads(call.request.body) == {"components": new_body}  # an approved one keeps its category


@pytest.mark.parametrize(
    ("status", "changes", "code", "http"),
    [
        ("pending", {"components": BODY_ONLY}, "template_not_editable", 409),
        ("disabled", {"components": BODY_ONLY}, "template_not_editable", 409),
        ("approved", {"category": "MARKETING"}, "template_not_editable", 409),
        (
            "approved",
            {"components": [{"type": "BODY", "text": "Judi online {{1}} gacor setiap hari untuk anda."}]},
            "content_check_failed",
            400,
        ),
        ("approved", ["not", "an", "object"], "invalid", 400),
    ],
    ids=["in-review", "disabled", "category-of-approved", "blocked-by-the-check", "not-an-object"],
)
def test_an_edit_meta_would_not_take_is_refused_before_meta_is_asked(
    db, ada, acme_number, graph, status, changes, code, http
):
    template = approved("order_shipped", BODY_ONLY, status=status)
    MessageTemplate.objects.filter(pk=template.pk).update(number=acme_number)

    response = edit(admin(ada), template.pk, changes)

    assert (response.status_code, response.json()["code"]) == (http, code)
    assert len(graph.calls) == 0
    assert (stored(template.pk).status, stored(template.pk).components) == (status, BODY_ONLY)


def test_agents_and_supervisors_cannot_edit_templates(db, alice, sam, graph):
    template = approved("order_shipped", BODY_ONLY)
    for user in (alice, sam):
        assert (
            edit(tenant_client(ACME, issue_token(user)), template.pk, {"components": BODY_ONLY}).status_code
            == 403
        )
    assert len(graph.calls) == 0


def test_in_simulator_mode_a_submitted_template_is_approved_by_the_simulator(
    db, ada, acme, django_capture_on_commit_callbacks
):
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

    with django_capture_on_commit_callbacks(execute=True):
        response = submit(admin(ada), draft(number=number.pk))

    assert response.status_code == 201, response.content
    assert stored(response.json()["id"]).status == "approved"  # the simulator's signed status webhook
    # a sync reads the simulator's account; acme's real number, whose Graph API is not reachable here, keeps
    # what it had and is named
    synced = admin(ada).post("/api/v1/templates/sync/").json()
    assert synced["synced"] == 1
    assert [(e["number"], e["code"]) for e in synced["errors"]] == [
        (WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"]).pk, None)
    ]
    assert stored(response.json()["id"]).status == "approved"


def test_an_odd_template_webhook_is_kept_in_the_history_and_changes_nothing_else(
    db, ada, django_capture_on_commit_callbacks
):
    from conversations.models import AccountEvent
    from helpdesk.tenancy.models import WebhookEvent

    template = approved("order_shipped", BODY_ONLY)
    odd = template_webhook(template.meta_id, "x" * 600, "DISABLED")
    odd["entry"][0]["changes"][0]["value"]["message_template_id"] = int("9" * 70)

    deliver_webhook(django_capture_on_commit_callbacks, odd)

    assert stored(template.pk).status == "approved"
    with schema_context("acme"):
        assert AccountEvent.objects.filter(field="message_template_status_update").count() == 1
        assert MessageTemplate.objects.count() == 1
    event = WebhookEvent.objects.order_by("-pk").first()
    assert (event.processed_at is not None, event.failures, event.parked_at) == (True, [], None)


def test_the_demo_has_a_closed_window_to_answer_with_its_approved_template(db):
    from django.core.management import call_command

    from conversations.management.commands.seed_demo import CLOSED_WINDOW, DEMO_TEMPLATE
    from conversations.models import Conversation

    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # again: nothing twice

    with schema_context("demo"):
        conversation = Conversation.objects.get(contact__wa_id=CLOSED_WINDOW[0])
        assert not conversation.window_is_open()
        template = MessageTemplate.objects.get(name=DEMO_TEMPLATE["name"])
        assert (template.status, MessageTemplate.objects.count()) == ("approved", 1)
        assert template.waba_id == conversation.number.waba_id
