"""Meta's webhook POST through the ASGI application as production serves it: in front of Django's request stack
(conversations/webhook_asgi.py), with the same answers and the same storage as the Django view."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator

from helpdesk.asgi import application
from helpdesk.tenancy.models import WebhookEvent
from tests.conftest import ACME, payload, retarget, sign


async def post(body: bytes, host: str = "localhost", signature: str | None = None) -> dict[str, Any]:
    headers = [(b"host", host.encode()), (b"content-type", b"application/json")]
    if signature is not None:
        headers.append((b"x-hub-signature-256", signature.encode()))
    communicator = HttpCommunicator(application, "POST", "/webhooks/whatsapp/", body=body, headers=headers)
    return await communicator.get_response(timeout=10)


@pytest.fixture
def marker(committed_db: None) -> Any:
    """A word only this test's webhooks carry; they are deleted afterwards (the database commits here)."""
    word = "fastpath" + secrets.token_hex(6)
    yield word
    WebhookEvent.objects.filter(body__contains=word).delete()


def message(word: str) -> bytes:
    return json.dumps(retarget(payload("inbound_text.json"), text=word)).encode()


def stored_bodies(word: str) -> list[str]:
    return list(
        WebhookEvent.objects.filter(body__contains=word).order_by("pk").values_list("body", flat=True)
    )


async def test_a_signed_webhook_is_stored_and_acknowledged_without_djangos_stack(marker):
    # given a customer's message, signed with acme's app secret
    body = message(marker)

    # when Meta posts it to the public domain
    response = await post(body, signature=sign(body, ACME["secret"]))

    # then it is acknowledged in the API's shape and stored byte for byte
    assert response["status"] == 200
    assert json.loads(response["body"]) == {"detail": "Stored."}
    assert (b"content-type", b"application/json") in response["headers"]
    assert await database_sync_to_async(stored_bodies)(marker) == [body.decode()]


@pytest.mark.parametrize(
    ("body", "signed", "status", "code"),
    [
        (b"{not json", True, 400, "invalid_json"),
        (b'{"entry": "oops"}', True, 400, "invalid_shape"),
        (None, False, 403, "invalid_signature"),
        (None, "wrong", 403, "invalid_signature"),
    ],
)
async def test_refusals_are_the_views_and_store_nothing(marker, body, signed, status, code):
    body = body or message(marker)
    signature = sign(body, ACME["secret"] if signed is True else "not-the-secret") if signed else None
    response = await post(body, signature=signature)
    assert (response["status"], json.loads(response["body"])["code"]) == (status, code)
    assert await database_sync_to_async(stored_bodies)(marker) == []


async def test_a_body_over_the_upload_limit_gets_413_and_is_not_stored(marker, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = message(marker) + b" " * 1000
    too_large = await post(body, signature=sign(body, ACME["secret"]))
    assert (too_large["status"], json.loads(too_large["body"])["code"]) == (413, "too_large")

    assert await database_sync_to_async(stored_bodies)(marker) == []


async def test_a_process_already_holding_its_share_of_webhooks_answers_503_at_once(marker, settings):
    # given a process whose webhook threads and their queue are full (here: a pool of no connections at all)
    settings.DB_POOL_MAX_SIZE = 0
    body = message(marker)

    # when Meta posts a webhook
    response = await post(body, signature=sign(body, ACME["secret"]))

    # then it is refused at once, to be sent again, and nothing is stored
    assert response["status"] == 503
    assert (b"retry-after", b"5") in response["headers"]
    assert json.loads(response["body"])["code"] == "overloaded"
    assert await database_sync_to_async(stored_bodies)(marker) == []
