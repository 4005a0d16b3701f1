"""Shared fixtures: one test database with the public tenant and two tenants, `acme` and `globex`, each with a
WhatsApp number; users alice (agent), sam (supervisor), ada (admin) in acme and bob (agent) in globex.

Tenants are created once per session (a schema migration per tenant is slow). Tests that need committed data
(websocket consumers, the live server) use `committed_db`: it commits for real and never flushes, so such tests
create their own contacts with fresh ids instead of relying on an empty database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django_tenants.utils import schema_context

PAYLOADS = (
    Path(__file__).resolve().parents[2] / "shared" / "whatsapp" / "payloads"
)  # ../shared beside the project
PASSWORD = "Test-Password-8231"

ACME = {
    "slug": "acme",
    "domain": "acme.localhost",
    "pnid": "106540352242922",
    "waba": "102290129340398",
    "display": "15550783881",
    "token": "ACME-ACCESS-TOKEN",
    "secret": "acme-app-secret",
    "verify": "acme-verify",
}
GLOBEX = {
    "slug": "globex",
    "domain": "globex.localhost",
    "pnid": "209000000000001",
    "waba": "209000000000002",
    "display": "15550000002",
    "token": "GLOBEX-ACCESS-TOKEN",
    "secret": "globex-app-secret",
    "verify": "globex-verify",
}
GRAPH_URL = "https://graph.test/v25.0"


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    from helpdesk.celery import app

    settings.WHATSAPP_GRAPH_URL = GRAPH_URL

    # Unit and API tests run Celery tasks in-process at commit; tests/e2e runs a real worker.
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True

    # A wake-up key left by an interrupted run would keep webhooks from waking the (eager) task for a minute.
    from conversations import webhooks

    webhooks._redis().delete(webhooks.WAKE_KEY)


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None, django_db_modify_db_settings: None, django_db_blocker: Any
) -> Iterator[None]:
    """The test database, always created (pytest-django would skip it when only `committed_db` asks for it)."""
    from django.test.utils import setup_databases, teardown_databases

    from helpdesk.tenancy.actions import do_add_member, do_add_number, do_create_tenant, ensure_public_tenant

    with django_db_blocker.unblock():
        databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})
        ensure_public_tenant()
        for spec in (ACME, GLOBEX):
            tenant = do_create_tenant(spec["slug"], spec["slug"].title(), spec["domain"])
            do_add_number(
                tenant,
                phone_number_id=spec["pnid"],
                waba_id=spec["waba"],
                display_number=spec["display"],
                access_token=spec["token"],
                app_secret=spec["secret"],
                verify_token=spec["verify"],
            )
        from helpdesk.tenancy.models import Tenant

        acme, globex = Tenant.objects.get(schema_name="acme"), Tenant.objects.get(schema_name="globex")
        do_add_member(acme, "alice@acme.test", "agent", PASSWORD, "Alice")
        do_add_member(acme, "sam@acme.test", "supervisor", PASSWORD, "Sam")
        do_add_member(acme, "ada@acme.test", "admin", PASSWORD, "Ada")
        do_add_member(globex, "bob@globex.test", "agent", PASSWORD, "Bob")
    yield
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        for connection in connections.all():  # idle pooled connections, checked in by other threads too
            connection.close_pool()  # type: ignore[attr-defined]
        # A connection a worker thread of an async test still holds would keep the database from being dropped.
        test_database = connections["default"].settings_dict["NAME"]
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [test_database],
            )
        connections.close_all()
        connections["default"].close_pool()  # type: ignore[attr-defined]
        teardown_databases(databases, verbosity=0)


@pytest.fixture
def committed_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Database access without a wrapping transaction: writes commit, other threads and processes see them."""
    with django_db_blocker.unblock():
        yield


# ------------------------------------------------------------------ the Graph API, faked at the HTTP level


@pytest.fixture
def graph(settings: Any) -> Iterator[Any]:
    """The Graph API, faked at the HTTP level (`responses`); any request nobody registered fails like a network
    error. conftest sets WHATSAPP_GRAPH_URL after pytest-django has loaded the settings, so it is pinned here."""
    import responses

    settings.WHATSAPP_GRAPH_URL = GRAPH_URL
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sent(graph: Any) -> list[dict[str, Any]]:
    """The bodies acme's number POSTed to /messages, in order, each accepted with a fresh wamid."""
    bodies: list[dict[str, Any]] = []

    def accept(request: Any) -> tuple[int, dict[str, str], str]:
        bodies.append(json.loads(request.body))
        answer = payload("send_response.json")
        answer["messages"][0]["id"] = "wamid.OUT" + secrets.token_hex(10)
        return 200, {}, json.dumps(answer)

    graph.add_callback("POST", f"{GRAPH_URL}/{ACME['pnid']}/messages", callback=accept)
    return bodies


# ------------------------------------------------------------------ personas


def _user(email: str) -> Any:
    from helpdesk.tenancy.models import User

    return User.objects.get(email=email)


@pytest.fixture
def acme(db: None) -> Any:
    from helpdesk.tenancy.models import Tenant

    return Tenant.objects.get(schema_name="acme")


@pytest.fixture
def globex(db: None) -> Any:
    from helpdesk.tenancy.models import Tenant

    return Tenant.objects.get(schema_name="globex")


@pytest.fixture
def alice(db: None) -> Any:
    return _user("alice@acme.test")


@pytest.fixture
def sam(db: None) -> Any:
    return _user("sam@acme.test")


@pytest.fixture
def ada(db: None) -> Any:
    return _user("ada@acme.test")


@pytest.fixture
def bob(db: None) -> Any:
    return _user("bob@globex.test")


@pytest.fixture
def acme_number(db: None) -> Any:
    from helpdesk.tenancy.models import WhatsAppNumber

    return WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])


@pytest.fixture
def in_acme() -> Iterator[None]:
    """Run the test body in acme's schema (for ORM reads of tenant tables)."""
    with schema_context("acme"):
        yield


# ------------------------------------------------------------------ clients


def public_client() -> Client:
    return Client(HTTP_HOST="localhost")


def tenant_client(spec: dict[str, str], token: str | None = None) -> Client:
    headers = {"HTTP_HOST": spec["domain"]}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Token {token}"
    return Client(**headers)


def issue_token(user: Any) -> str:
    """An API token for `user`, as the token endpoint issues it (without the slow password check)."""
    from helpdesk.tenancy.actions import do_issue_api_token

    return do_issue_api_token(user)[0]


def api_token(email: str, spec: dict[str, str] = ACME) -> str:
    response = tenant_client(spec).post(
        "/api/v1/auth/token/", {"email": email, "password": PASSWORD}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return str(response.json()["token"])


# ------------------------------------------------------------------ webhooks


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def fresh_wa_id() -> str:
    return "628" + str(secrets.randbelow(10**10)).zfill(10)


def receive_text(number: Any, wa_id: str, text: str, ts: int, name: str = "Rina") -> Any:
    """A customer's text message to acme, stored through do_receive_inbound (its wamid made of its parts)."""
    from conversations import actions

    message = {
        "from": wa_id,
        "id": f"wamid.T{wa_id}.{ts}.{text}",
        "timestamp": str(ts),
        "type": "text",
        "text": {"body": text},
    }
    with schema_context("acme"):
        stored = actions.do_receive_inbound(number, message, [{"profile": {"name": name}, "wa_id": wa_id}])
    assert stored is not None
    return stored


def queue_outbound(conversation_id: int, at: Any, user: Any = None, kind: str = "agent") -> Any:
    """An outbound message of acme written at `at` (an agent reply, or a bot / automation / broadcast message),
    through do_queue_outbound."""
    from conversations.actions import do_queue_outbound
    from conversations.models import Conversation

    with schema_context("acme"):
        return do_queue_outbound(
            Conversation.objects.get(pk=conversation_id),
            type="text",
            text="reply",
            content={"body": "reply"},
            sender_kind=kind,
            sender=user,
            at=at,
        )


def retarget(
    p: dict[str, Any],
    spec: dict[str, str] = ACME,
    wa_id: str | None = None,
    text: str | None = None,
    ts: int | None = None,
) -> dict[str, Any]:
    """A payload pointed at a tenant's number, with fresh message ids, a chosen sender, text and time."""
    p = json.loads(json.dumps(p))
    for entry in p.get("entry", []):
        entry["id"] = spec["waba"]
        for change in entry.get("changes", []):
            value = change.get("value", {})
            if "metadata" in value:
                value["metadata"] = {"display_phone_number": spec["display"], "phone_number_id": spec["pnid"]}
            for message in value.get("messages", []):
                message["id"] = "wamid.TEST" + secrets.token_hex(10)
                message["timestamp"] = str(ts or int(time.time()))
                if wa_id:
                    message["from"] = wa_id
                if text is not None and message.get("type") == "text":
                    message["text"]["body"] = text
            for contact in value.get("contacts", []):
                if wa_id:
                    contact["wa_id"] = wa_id
    return p


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(
    p: dict[str, Any] | bytes, secret: str | None = ACME["secret"], signature: str | None = None
) -> Any:
    """POST a webhook to the public domain, signed with `secret` (or with the given signature header)."""
    body = p if isinstance(p, bytes) else json.dumps(p).encode()
    headers = {}
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    elif secret is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign(body, secret)
    return public_client().post("/webhooks/whatsapp/", body, content_type="application/json", **headers)


def deliver_webhook(capture: Any, p: dict[str, Any], secret: str = ACME["secret"]) -> Any:
    """POST a signed webhook, which must be accepted, and run what its commit triggers (the eager tasks)."""
    with capture(execute=True):
        response = post_webhook(p, secret=secret)
    assert response.status_code == 200, response.content
    return response
