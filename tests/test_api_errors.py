"""No 500 on any input: every API error is `{"detail": <text>, "code": <machine code>}` (field errors keep their
fields), and a refused request changes nothing. One test per input that used to answer 500."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from typing import Any

import pytest
from django_tenants.utils import schema_context

from conversations.models import Conversation, InboxEvent, Message, Note
from helpdesk.tenancy.models import Membership
from tests.conftest import ACME, fresh_wa_id, issue_token, receive_text, tenant_client

NOW = int(time.time())


def receive(number: Any, wa_id: str, text: str = "hello") -> Message:
    return receive_text(number, wa_id, text, NOW - 10)


def api(user: Any) -> Any:
    return tenant_client(ACME, issue_token(user))


def event_count() -> int:
    with schema_context("acme"):
        return InboxEvent.objects.count()


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The one error shape: a human `detail` (text) and a machine `code`."""
    assert response.status_code == status, response.content
    body = dict(response.json())
    assert set(body) <= {"detail", "code", "fields"}, body
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["code"] == code, body
    return body


# ------------------------------------------------------------------ the shape of every error


def test_an_anonymous_call_is_a_401_in_the_error_shape(db):
    response = tenant_client(ACME).get("/api/v1/conversations/")

    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    assert response.status_code == 401


def test_a_wrong_token_is_a_401_in_the_error_shape(db):
    response = tenant_client(ACME, "0" * 40).get("/api/v1/conversations/")

    assert (response.status_code, response.json()) == (
        401,
        {"detail": "Invalid token.", "code": "authentication_failed"},
    )


def test_a_missing_object_is_a_404_in_the_error_shape(db, alice):
    response = api(alice).get(f"/api/v1/conversations/{2**63 - 1}/")

    assert_error(response, 404, "not_found")


def test_a_method_not_allowed_is_a_405_in_the_error_shape(db, alice):
    response = api(alice).delete("/api/v1/conversations/")

    assert_error(response, 405, "method_not_allowed")


def test_a_body_that_is_not_json_is_a_400_parse_error(db, alice):
    before = Membership.objects.get(user=alice, tenant__schema_name="acme").is_available

    response = api(alice).patch("/api/v1/me/", b"{not json", content_type="application/json")

    assert_error(response, 400, "parse_error")
    assert Membership.objects.get(user=alice, tenant__schema_name="acme").is_available is before


def test_an_unsupported_media_type_is_a_415_in_the_error_shape(db, alice):
    response = api(alice).patch("/api/v1/me/", b"available=false", content_type="text/plain")

    assert_error(response, 415, "unsupported_media_type")
    assert Membership.objects.get(user=alice, tenant__schema_name="acme").is_available is True


def test_field_errors_keep_their_fields(db, acme_number, alice):
    ticket_id = receive(acme_number, fresh_wa_id()).conversation.current_ticket_id

    response = api(alice).patch(
        f"/api/v1/tickets/{ticket_id}/", {"status": "exploded"}, content_type="application/json"
    )

    assert response.json() == {
        "detail": 'status: "exploded" is not a valid choice.',
        "code": "invalid",
        "fields": {"status": ['"exploded" is not a valid choice.']},
    }
    with schema_context("acme"):
        from tickets.models import Ticket

        assert Ticket.objects.get(pk=ticket_id).status == "open"


# ------------------------------------------------------------------ ids in query parameters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("0", 0),
        ("42", 42),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),
        ("9" * 20, None),
        ("9" * 5000, None),
        ("²", None),
        ("¹", None),
        ("٣", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1 ", None),
        ("1.0", None),
        ("1_000", None),
        ("", None),
    ],
)
def test_parse_id_takes_ascii_whole_numbers_within_bigint_only(raw, expected):
    from helpdesk.params import parse_id

    assert parse_id(raw) == expected


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("assignee=²", "assignee"),
        ("assignee=99999999999999999999", "assignee"),
        ("conversation=²", "conversation"),
        ("conversation=99999999999999999999", "conversation"),
    ],
)
def test_ticket_filters_refuse_ids_that_are_not_ascii_whole_numbers(db, alice, query, parameter):
    response = api(alice).get(f"/api/v1/tickets/?{query}")

    body = assert_error(response, 400, "invalid")
    assert list(body["fields"]) == [parameter]


@pytest.mark.parametrize("after", ["¹", "²", "99999999999999999999", "-1"])
def test_messages_after_refuses_ids_that_are_not_ascii_whole_numbers(db, acme_number, alice, after):
    conversation_id = receive(acme_number, fresh_wa_id()).conversation_id

    response = api(alice).get(f"/api/v1/conversations/{conversation_id}/messages/?after={after}")

    body = assert_error(response, 400, "invalid")
    assert list(body["fields"]) == ["after"]


def test_messages_after_still_takes_an_id(db, acme_number, alice):
    wa_id = fresh_wa_id()
    first = receive(acme_number, wa_id, "one")
    second = receive(acme_number, wa_id, "two")

    response = api(alice).get(f"/api/v1/conversations/{first.conversation_id}/messages/?after={first.pk}")

    assert response.status_code == 200
    assert [m["id"] for m in response.json()["results"]] == [second.pk]


@pytest.mark.parametrize("query", ["agent=²", "number=¹", "agent=99999999999999999999"])
def test_report_filters_refuse_ids_that_are_not_ascii_whole_numbers(db, sam, query):
    response = api(sam).get(f"/api/v1/reports/summary/?from=2026-01-01&to=2026-01-31&{query}")

    assert_error(response, 400, "invalid")


@pytest.mark.parametrize("interval", ["day", "week"])
@pytest.mark.parametrize("path", ["summary", "timeseries", "agents"])
def test_a_report_ending_at_the_end_of_the_calendar_is_refused(db, sam, path, interval):
    response = api(sam).get(f"/api/v1/reports/{path}/?from=9999-12-30&to=9999-12-31&interval={interval}")

    body = assert_error(response, 400, "invalid")
    assert body["detail"] == "`to` must not be after 9999-12-24."


def test_a_report_at_the_start_of_the_calendar_is_answered(db, sam):
    response = api(sam).get("/api/v1/reports/timeseries/?from=0001-01-01&to=0001-01-09&interval=week")

    assert response.status_code == 200
    assert [bucket["start"] for bucket in response.json()["results"]] == ["0001-01-01", "0001-01-08"]


# ------------------------------------------------------------------ conversation cursors


def cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        cursor(1, "9999-12-31T23:00:00-05:00", 1),  # year 10000 in UTC
        cursor(1, "0001-01-01T01:00:00+05:00", 1),  # year 0 in UTC
        cursor(1, "2026-01-01T00:00:00+24:00", 1),  # beyond Python's
        cursor(1, "2026-01-01T00:00:00", 1),  # no offset at all
        cursor(1, "2026-01-01T00:00:00+00:00", 2**63),
        cursor(1, "2026-01-01T00:00:00+00:00", -1),
        cursor(1, "2026-01-01T00:00:00+00:00", True),
        cursor(1, "2026-01-01T00:00:00+00:00", 1.5),
        cursor(1, "2026-01-01T00:00:00+00:00"),
        cursor(1, 5, 1),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),
        base64.urlsafe_b64encode(b'{"a": 1, "b": 2, "c": 3}').decode(),
        "not-a-cursor",
        "%00",
    ],
    ids=[
        "year-9999-negative-offset",
        "year-1-positive-offset",
        "offset-beyond-python",
        "naive",
        "pk-beyond-bigint",
        "negative-pk",
        "boolean-pk",
        "fractional-pk",
        "two-parts",
        "value-not-text",
        "deep-nesting",
        "object",
        "garbage",
        "nul",
    ],
)
@pytest.mark.parametrize("ordering", ["recent", "window"])
def test_a_forged_cursor_is_refused(db, acme_number, alice, token, ordering):
    receive(acme_number, fresh_wa_id())

    response = api(alice).get(f"/api/v1/conversations/?ordering={ordering}&cursor={token}")

    body = assert_error(response, 400, "invalid")
    assert list(body["fields"]) == ["cursor"]


@pytest.mark.parametrize("offset", ["+23:59", "+05:00:00.5", "-00:00:01"])
def test_a_cursor_with_an_offset_postgresql_refuses_pages_like_its_utc_moment(db, acme_number, alice, offset):
    for _ in range(2):
        receive(acme_number, fresh_wa_id())
    client = api(alice)
    first = client.get("/api/v1/conversations/").json()
    with schema_context("acme"):
        edge = Conversation.objects.get(pk=first["results"][0]["id"])
    moment = datetime.fromisoformat("2000-01-01T00:00:00" + offset)
    shifted = edge.last_message_at.astimezone(moment.tzinfo).isoformat()

    response = client.get(f"/api/v1/conversations/?cursor={cursor(1, shifted, edge.pk)}")

    assert response.status_code == 200
    after_first = [c["id"] for c in first["results"][1:]]
    assert [c["id"] for c in response.json()["results"]][: len(after_first)] == after_first


def test_a_cursor_of_the_list_still_pages(db, acme_number, alice):
    for _ in range(3):
        receive(acme_number, fresh_wa_id())
    client = api(alice)
    first = client.get("/api/v1/conversations/").json()
    with schema_context("acme"):
        edge = Conversation.objects.get(pk=first["results"][0]["id"])
    token = cursor(1, edge.last_message_at.isoformat(), edge.pk)

    response = client.get(f"/api/v1/conversations/?cursor={token}")

    assert response.status_code == 200
    after_first = [c["id"] for c in first["results"][1:]]
    assert [c["id"] for c in response.json()["results"]][: len(after_first)] == after_first


# ------------------------------------------------------------------ bodies that are not objects

NOT_OBJECTS = [[], [1], ["available", True], "available", 5, None, True]
NOT_OBJECT_IDS = ["empty-list", "list", "pair", "string", "number", "null", "true"]


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=NOT_OBJECT_IDS)
def test_me_refuses_a_body_that_is_not_an_object_and_changes_nothing(db, alice, body):
    Membership.objects.filter(user=alice).update(is_available=False)

    response = api(alice).patch("/api/v1/me/", json.dumps(body), content_type="application/json")

    assert_error(response, 400, "invalid")
    assert Membership.objects.get(user=alice, tenant__schema_name="acme").is_available is False


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=NOT_OBJECT_IDS)
def test_status_refuses_a_body_that_is_not_an_object_and_changes_nothing(db, acme_number, alice, body):
    conversation_id = receive(acme_number, fresh_wa_id()).conversation_id
    events_before = event_count()

    response = api(alice).post(
        f"/api/v1/conversations/{conversation_id}/status/", json.dumps(body), content_type="application/json"
    )

    assert_error(response, 400, "invalid")
    with schema_context("acme"):
        assert Conversation.objects.get(pk=conversation_id).status == "open"
    assert event_count() == events_before


def test_status_refuses_a_status_that_is_not_text(db, acme_number, alice):
    conversation_id = receive(acme_number, fresh_wa_id()).conversation_id

    response = api(alice).post(
        f"/api/v1/conversations/{conversation_id}/status/",
        {"status": ["resolved"]},
        content_type="application/json",
    )

    assert_error(response, 400, "invalid")
    with schema_context("acme"):
        assert Conversation.objects.get(pk=conversation_id).status == "open"


# ------------------------------------------------------------------ support settings


def settings_of(client: Any) -> dict[str, Any]:
    response = client.get("/api/v1/settings/support/")
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"timezone": []}, "timezone"),
        ({"timezone": {"a": 1}}, "timezone"),
        ({"timezone": 7}, "timezone"),
        ({"timezone": "Asia/Jakarta\x00"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"holidays": [{"date": "2026-12-25", "name": "Natal\x00"}]}, "NUL"),
        ({"holidays": [{"date": "2026-12-25", "name": ["Natal"]}]}, "name"),
        ({"holidays": [{"date": "2026-12-25", "name": "x" * 201}]}, "200"),
        ({"holidays": ["2026-12-25\x00"]}, "holidays"),
        ({"business_hours": [{"weekday": 0, "opens": "09:00:00.000001+05:00", "closes": "17:00"}]}, "HH:MM"),
        ({"business_hours": [{"weekday": 0, "opens": "09:00+05:00", "closes": "17:00"}]}, "HH:MM"),
        ({"business_hours": [{"weekday": 0, "opens": "09:00", "closes": "17:00:00.5"}]}, "HH:MM"),
        ({"business_hours": [{"weekday": 0, "opens": "9", "closes": "17:00"}]}, "HH:MM"),
        ({"business_hours": [{"weekday": 0, "opens": "09:00:30", "closes": "17:00"}]}, "HH:MM"),
        ({"business_hours": [{"weekday": 0, "opens": "09:00", "closes": 1700}]}, "HH:MM"),
        ({"business_hours": [{"weekday": True, "opens": "09:00", "closes": "17:00"}]}, "weekday"),
        ({"business_hours": [{"weekday": 1.0, "opens": "09:00", "closes": "17:00"}]}, "weekday"),
        ({"sla_policies": [{"priority": "low", "first_response_seconds": 2**31}]}, "365 days"),
        ({"sla_policies": [{"priority": "low", "resolution_seconds": 365 * 86400 + 1}]}, "365 days"),
        ({"sla_policies": [{"priority": ["low"]}]}, "priority"),
        ({"reopen_window_hours": 2**63}, "reopen_window_hours"),
    ],
    ids=[
        "timezone-list",
        "timezone-object",
        "timezone-number",
        "timezone-nul",
        "timezone-path",
        "holiday-name-nul",
        "holiday-name-list",
        "holiday-name-long",
        "holiday-date-nul",
        "time-microseconds-offset",
        "time-offset",
        "time-fraction",
        "time-hour-only",
        "time-seconds",
        "time-number",
        "weekday-boolean",
        "weekday-float",
        "target-2-31",
        "target-over-a-year",
        "priority-list",
        "scalar-huge",
    ],
)
def test_settings_refuse_malformed_values_and_change_nothing(db, ada, changes, complaint):
    client = api(ada)
    before = settings_of(client)

    response = client.patch("/api/v1/settings/support/", changes, content_type="application/json")

    body = assert_error(response, 400, "invalid")
    assert complaint in body["detail"]
    assert settings_of(client) == before


def test_settings_still_take_valid_values_at_their_limits(db, ada, restore_settings):
    client = api(ada)

    response = client.patch(
        "/api/v1/settings/support/",
        {
            "business_hours": [{"weekday": 0, "opens": "09:00", "closes": "17:30"}],
            "holidays": [{"date": "2026-12-25", "name": "x" * 200}],
            "sla_policies": [{"priority": "low", "first_response_seconds": 365 * 86400}],
        },
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["business_hours"] == [{"weekday": 0, "opens": "09:00", "closes": "17:30"}]
    assert response.json()["holidays"] == [{"date": "2026-12-25", "name": "x" * 200}]
    assert response.json()["sla_policies"][0]["first_response_seconds"] == 365 * 86400


@pytest.fixture
def restore_settings(db: None) -> Any:
    yield
    with schema_context("acme"):
        from tickets.actions import forget_support_rules

        forget_support_rules()


# ------------------------------------------------------------------ notes


def note_count(conversation_id: int) -> int:
    with schema_context("acme"):
        return Note.objects.filter(conversation_id=conversation_id).count()


@pytest.mark.parametrize("length", [10_001, 3_000_000])
def test_a_note_longer_than_10000_characters_is_refused(db, acme_number, alice, length):
    conversation_id = receive(acme_number, fresh_wa_id()).conversation_id
    events_before = event_count()

    response = api(alice).post(
        f"/api/v1/conversations/{conversation_id}/notes/",
        {"text": "x" * length},
        content_type="application/json",
    )

    body = assert_error(response, 400, "too_long")
    assert "10000" in body["detail"]
    assert note_count(conversation_id) == 0
    assert event_count() == events_before


def test_a_note_of_10000_characters_is_kept(db, acme_number, alice):
    conversation_id = receive(acme_number, fresh_wa_id()).conversation_id

    response = api(alice).post(
        f"/api/v1/conversations/{conversation_id}/notes/",
        {"text": "x" * 10_000},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert len(response.json()["text"]) == 10_000
    assert note_count(conversation_id) == 1


# ------------------------------------------------------------------ URLs that match no route


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/conversations/0.5/read/",
        "/api/v1/conversations/null,null/messages/",
        "/api/v1/conversations/-2.75e-113/status/",
        "/api/v1/nothing-here/",
    ],
)
def test_an_api_url_that_matches_no_route_is_a_json_404(db, alice, path):
    response = api(alice).get(path)

    assert response["Content-Type"] == "application/json"
    assert (response.status_code, response.json()) == (404, {"detail": "Not found.", "code": "not_found"})


def test_a_page_url_that_matches_no_route_is_still_an_html_404(db, alice):
    response = api(alice).get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# ------------------------------------------------------------------ the schema documents the errors


def test_the_schema_validates_without_warnings(db, tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_every_operation_documents_its_errors_in_the_error_shape(db, alice):
    schema = api(alice).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]

    documented = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            documented[f"{method.upper()} {path}"] = {int(code) for code in responses if code.startswith("4")}
            for code, response in responses.items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == error, (method, path, code)

    assert documented["POST /api/v1/auth/token/"] == {400, 415, 429}
    assert documented["GET /api/v1/conversations/"] == {400, 401, 403}
    assert documented["GET /api/v1/conversations/{id}/"] == {401, 403, 404}
    assert documented["POST /api/v1/conversations/{id}/status/"] == {400, 401, 403, 404, 415}
    assert documented["POST /api/v1/conversations/{conversation_pk}/messages/"] == {
        400,
        401,
        403,
        404,
        409,
        415,
    }
    assert documented["GET /api/v1/me/"] == {401, 403}
    assert documented["PATCH /api/v1/settings/support/"] == {400, 401, 403, 415}
    assert documented["GET /api/v1/tickets/"] == {400, 401, 403, 404}  # 404: a page beyond the last
    assert all({401, 403} <= codes for name, codes in documented.items() if "auth/token" not in name)


# ------------------------------------------------------------------ values the database cannot hold


@pytest.mark.parametrize("assignee", [2**63, 2**64, -1])
def test_a_ticket_assignee_beyond_bigint_is_refused_and_changes_nothing(db, acme_number, sam, assignee):
    ticket_id = receive(acme_number, fresh_wa_id()).conversation.current_ticket_id
    with schema_context("acme"):
        from tickets.models import Ticket

        before = Ticket.objects.values().get(pk=ticket_id)

    response = api(sam).patch(
        f"/api/v1/tickets/{ticket_id}/",
        {"assignee": assignee, "status": "pending"},
        content_type="application/json",
    )

    body = assert_error(response, 400, "invalid")
    assert "assignee" in body["detail"]
    with schema_context("acme"):
        assert Ticket.objects.values().get(pk=ticket_id) == before


@pytest.mark.parametrize("kind", ["notes", "messages"])
def test_text_with_a_nul_character_is_refused(db, acme_number, alice, kind):
    conversation_id = receive(acme_number, fresh_wa_id()).conversation_id
    with schema_context("acme"):
        messages_before = Message.objects.filter(conversation_id=conversation_id).count()
    events_before = event_count()

    response = api(alice).post(
        f"/api/v1/conversations/{conversation_id}/{kind}/",
        {"text": "hi\x00there"},
        content_type="application/json",
    )

    assert_error(response, 400, "invalid")
    assert note_count(conversation_id) == 0
    with schema_context("acme"):
        assert Message.objects.filter(conversation_id=conversation_id).count() == messages_before
    assert event_count() == events_before
