"""The live inbox websocket against the real ASGI application and the Redis channel layer of the settings.

The consumer runs its database calls on another thread, so these tests use `committed_db` (real commits,
never flushed): each test makes its own contacts with fresh ids and reads positions from the event log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.test import override_settings
from django_tenants.utils import schema_context

from conversations import events
from conversations.models import Message
from helpdesk.asgi import application
from tests.conftest import (
    ACME,
    GLOBEX,
    PASSWORD,
    fresh_wa_id,
    issue_token,
    payload,
    post_webhook,
    retarget,
    tenant_client,
)

FRAME_TIMEOUT = 5


@pytest.fixture
def tokens(committed_db: None) -> dict[str, str]:
    from helpdesk.tenancy.models import User

    return {
        user.email.split("@")[0]: issue_token(user)
        for user in User.objects.filter(email__in=["alice@acme.test", "bob@globex.test"])
    }


def socket(host: str, token: str | None = None) -> WebsocketCommunicator:
    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if token:
        headers.append((b"authorization", f"Token {token}".encode()))
    return WebsocketCommunicator(application, "/ws/inbox/", headers=headers)


@asynccontextmanager
async def inbox(host: str, token: str) -> AsyncIterator[tuple[WebsocketCommunicator, dict[str, Any]]]:
    """A connected member's socket and its `ready` frame; disconnected afterwards whatever happens."""
    communicator = socket(host, token)
    connected, _ = await communicator.connect(timeout=FRAME_TIMEOUT)
    assert connected
    try:
        ready = await communicator.receive_json_from(timeout=FRAME_TIMEOUT)
        yield communicator, ready
    finally:
        await communicator.disconnect()


async def frames(communicator: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await communicator.receive_json_from(timeout=FRAME_TIMEOUT) for _ in range(count)]


# ------------------------------------------------------------------ sync helpers (run on a thread)


def _last_event_id(schema: str) -> int:
    with schema_context(schema):
        return events.last_event_id()


def _frames_after(schema: str, after: int) -> list[dict[str, Any]]:
    with schema_context(schema):
        return events.events_after(after)


def _inbound(spec: dict[str, str], wa_id: str, text: str) -> None:
    """A customer writes: a signed webhook, processed at commit by the eager task, which publishes."""
    response = post_webhook(
        retarget(payload("inbound_text.json"), spec=spec, wa_id=wa_id, text=text), secret=spec["secret"]
    )
    assert response.status_code == 200


def _api_view_of(wamid: str, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with schema_context("acme"):
        conversation_id = Message.objects.get(wamid=wamid).conversation_id
    api = tenant_client(ACME, token)
    message = api.get(f"/api/v1/conversations/{conversation_id}/messages/").json()["results"][-1]
    conversation = api.get(f"/api/v1/conversations/{conversation_id}/").json()
    return message, conversation


def _inbound_unpublished(spec: dict[str, str], wa_id: str, texts: list[str]) -> None:
    """Customers write while every frame published is lost on the way (another channel-layer prefix)."""
    from django.conf import settings

    lossy = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    lossy["default"]["CONFIG"] = {**lossy["default"]["CONFIG"], "prefix": "lost-frames"}
    with override_settings(CHANNEL_LAYERS=lossy):
        for text in texts:
            _inbound(spec, wa_id, text)


def _session_cookie(email: str) -> str:
    """A browser session (the inbox page's socket authenticates with its cookie, not a token)."""
    from helpdesk.tenancy.models import User

    client = tenant_client(ACME)
    client.force_login(User.objects.get(email=email))
    return client.cookies["sessionid"].value


last_event_id = sync_to_async(_last_event_id)
frames_after = sync_to_async(_frames_after)
inbound = sync_to_async(_inbound)
api_view_of = sync_to_async(_api_view_of)
inbound_unpublished = sync_to_async(_inbound_unpublished)
session_cookie = sync_to_async(_session_cookie)


# ------------------------------------------------------------------ connecting


async def test_a_member_connects_and_gets_ready_with_the_last_event_id(tokens):
    expected = await last_event_id("acme")

    async with inbox(ACME["domain"], tokens["alice"]) as (_, ready):
        assert ready == {"type": "ready", "last_event_id": expected}


@pytest.mark.parametrize(
    ("host", "who"),
    [
        ("acme.localhost", "bob"),
        ("acme.localhost", None),
        ("nowhere.localhost", "alice"),
        ("evil.example", "alice"),
    ],
    ids=["other-tenants-member", "anonymous", "unknown-tenant-host", "host-not-allowed"],
)
async def test_a_handshake_is_refused_for_non_members_anonymous_and_unknown_hosts(tokens, host, who):
    communicator = socket(host, tokens[who] if who else None)

    connected, code = await communicator.connect(timeout=FRAME_TIMEOUT)

    assert (connected, code) == (False, 1000)
    assert await communicator.receive_nothing(timeout=0.2)


@pytest.mark.parametrize(
    ("email", "accepted"),
    [("alice@acme.test", True), ("bob@globex.test", False)],
    ids=["member", "other-tenants-user"],
)
async def test_a_browser_session_authenticates_the_socket_for_members_only(committed_db, email, accepted):
    cookie = await session_cookie(email)
    communicator = WebsocketCommunicator(
        application,
        "/ws/inbox/",
        headers=[
            (b"host", b"acme.localhost"),
            (b"origin", b"http://acme.localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )

    connected, _ = await communicator.connect(timeout=FRAME_TIMEOUT)
    try:
        assert connected is accepted
        if accepted:
            ready = await communicator.receive_json_from(timeout=FRAME_TIMEOUT)
            assert ready == {"type": "ready", "last_event_id": await last_event_id("acme")}
    finally:
        await communicator.disconnect()


async def test_ping_is_answered_and_unknown_frames_are_refused(tokens):
    async with inbox(ACME["domain"], tokens["alice"]) as (ws, _):
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {"type": "pong"}

        await ws.send_json_to({"type": "resume", "after": "yesterday"})
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {
            "type": "error",
            "code": "invalid_frame",
            "detail": "resume needs `after`: an event id (integer).",
        }

        await ws.send_json_to({"type": "shout"})
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {
            "type": "error",
            "code": "unknown_type",
            "detail": "Unknown frame type 'shout'.",
        }


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        ({"text": "{not json"}, "Frames are JSON text: this one is not JSON."),
        ({"text": ""}, "Frames are JSON text: this one is not JSON."),
        ({"text": "[" * 100_000}, "Frames are JSON text: this one is not JSON."),
        ({"text": "NaN-ish"}, "Frames are JSON text: this one is not JSON."),
        ({"bytes": b'{"type": "ping"}'}, "Frames are JSON text, not binary."),
    ],
    ids=["not-json", "empty", "deep-nesting", "garbage", "binary"],
)
async def test_a_frame_that_is_not_json_text_gets_an_error_and_the_socket_stays_usable(tokens, frame, detail):
    async with inbox(ACME["domain"], tokens["alice"]) as (ws, _):
        await ws.send_input({"type": "websocket.receive", **frame})
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {
            "type": "error",
            "code": "invalid_json",
            "detail": detail,
        }

        # the socket is still open and answers
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {"type": "pong"}

        await ws.send_json_to([1, 2])
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {
            "type": "error",
            "code": "invalid_frame",
            "detail": "Frames are JSON objects.",
        }


# ------------------------------------------------------------------ live frames


async def test_an_inbound_webhook_reaches_the_tenants_sockets_only(tokens):
    wa_id = fresh_wa_id()
    async with (
        inbox(ACME["domain"], tokens["alice"]) as (acme_ws, ready),
        inbox(GLOBEX["domain"], tokens["bob"]) as (globex_ws, _),
    ):
        # when a customer writes to acme
        await inbound(ACME, wa_id, "Halo dari websocket")

        # then acme's socket gets the next event: the message and its conversation, in the API's shape
        frame = await acme_ws.receive_json_from(timeout=FRAME_TIMEOUT)
        logged = await frames_after("acme", ready["last_event_id"])
        message, conversation = await api_view_of(frame["message"]["wamid"], tokens["alice"])
        assert len(logged) == 1
        assert frame == {
            "type": "message.created",
            "id": logged[0]["id"],
            "message": message,
            "conversation": conversation,
        }
        assert frame["id"] > ready["last_event_id"]
        assert (message["text"], conversation["contact"]["wa_id"]) == ("Halo dari websocket", wa_id)
        assert frame == logged[0]

        # and globex's socket hears nothing of it
        assert await globex_ws.receive_nothing(timeout=0.5)
        assert await acme_ws.receive_nothing(timeout=0.2)


def _violation(spec: dict[str, str]) -> None:
    """Meta reports a policy violation on the tenant's business account (a new event: its own time)."""
    p = payload("account_update_violation.json")
    p["entry"][0].update(id=spec["waba"], time=int(time.time() * 1000))
    assert post_webhook(p, secret=spec["secret"]).status_code == 200


def _without_alerts(schema: str) -> None:
    """No alert open or acknowledged (earlier tests may have left one): the next one is raised anew."""
    from conversations.models import HealthAlert

    with schema_context(schema):
        HealthAlert.objects.all().delete()


def _token_of(email: str) -> str:
    from helpdesk.tenancy.models import User

    return issue_token(User.objects.get(email=email))


async def test_health_alerts_reach_supervisors_and_admins_but_not_agents(tokens):
    sam = await sync_to_async(_token_of)("sam@acme.test")
    await sync_to_async(_without_alerts)("acme")
    async with (
        inbox(ACME["domain"], tokens["alice"]) as (agent, _),
        inbox(ACME["domain"], sam) as (supervisor, _),
    ):
        # when Meta reports a violation
        await sync_to_async(_violation)(ACME)

        # then the supervisor's socket gets the alert, the agent's does not
        alert = await supervisor.receive_json_from(timeout=FRAME_TIMEOUT)
        assert (alert["type"], alert["alert"]["kind"]) == ("health.alert", "violation")
        assert await agent.receive_nothing(timeout=0.5)

        # and the agent's next frame follows on at once (the skipped id is not a gap to fill)
        await inbound(ACME, fresh_wa_id(), "after the alert")
        message = await agent.receive_json_from(timeout=FRAME_TIMEOUT)
        assert (message["type"], message["id"]) == ("message.created", alert["id"] + 1)
        assert await agent.receive_nothing(timeout=0.5)


async def test_presence_reaches_the_other_agents_of_the_tenant_only_and_ends_with_the_socket(tokens):
    sam = await sync_to_async(_token_of)("sam@acme.test")
    alice_id = await sync_to_async(lambda: _user_id("alice@acme.test"))()
    async with (
        inbox(ACME["domain"], sam) as (watcher, _),
        inbox(GLOBEX["domain"], tokens["bob"]) as (stranger, _),
    ):
        communicator = socket(ACME["domain"], tokens["alice"])
        assert (await communicator.connect(timeout=FRAME_TIMEOUT))[0]
        await communicator.receive_json_from(timeout=FRAME_TIMEOUT)  # ready

        # when alice opens conversation 42 and types
        await communicator.send_json_to({"type": "presence", "conversation": 42, "typing": True})

        # then sam hears it, bob (another tenant) and alice herself do not
        assert await watcher.receive_json_from(timeout=FRAME_TIMEOUT) == {
            "type": "presence",
            "user": alice_id,
            "conversation": 42,
            "typing": True,
        }
        assert await stranger.receive_nothing(timeout=0.3)
        assert await communicator.receive_nothing(timeout=0.3)

        # the same again at once is not broadcast; a bad frame is refused and the socket stays
        await communicator.send_json_to({"type": "presence", "conversation": 42, "typing": True})
        assert await watcher.receive_nothing(timeout=0.3)
        await communicator.send_json_to({"type": "presence", "conversation": "42", "typing": True})
        assert (await communicator.receive_json_from(timeout=FRAME_TIMEOUT))["code"] == "invalid_frame"

        # when alice's socket closes, sam hears she left
        await communicator.disconnect()
        assert await watcher.receive_json_from(timeout=FRAME_TIMEOUT) == {
            "type": "presence",
            "user": alice_id,
            "conversation": None,
            "typing": False,
        }


def _user_id(email: str) -> int:
    from helpdesk.tenancy.models import User

    return int(User.objects.get(email=email).pk)


async def test_frames_come_with_increasing_ids_in_order(tokens):
    wa_id = fresh_wa_id()
    async with inbox(ACME["domain"], tokens["alice"]) as (ws, ready):
        for text in ("one", "two", "three"):
            await inbound(ACME, wa_id, text)

        received = await frames(ws, 3)

        # (ids come from a sequence: they increase, with holes where a transaction rolled back)
        ids = [f["id"] for f in received]
        assert ready["last_event_id"] < ids[0] < ids[1] < ids[2]
        assert [f["message"]["text"] for f in received] == ["one", "two", "three"]
        assert received == await frames_after("acme", ready["last_event_id"])


# ------------------------------------------------------------------ resuming and gaps


async def test_resume_replays_exactly_the_events_after_the_given_id_in_order(tokens):
    # given three events in the log, written while nobody was connected
    wa_id = fresh_wa_id()
    start = await last_event_id("acme")
    for text in ("one", "two", "three"):
        await inbound(ACME, wa_id, text)
    logged = await frames_after("acme", start)
    assert [f["message"]["text"] for f in logged] == ["one", "two", "three"]

    async with inbox(ACME["domain"], tokens["alice"]) as (ws, ready):
        assert ready["last_event_id"] == logged[-1]["id"]

        # when the client resumes after the first one
        await ws.send_json_to({"type": "resume", "after": logged[0]["id"]})

        # then it gets the two later ones, in order, and nothing else
        assert await frames(ws, 2) == logged[1:]
        assert await ws.receive_nothing(timeout=0.5)

        # and the next live event comes once, with the next id
        await inbound(ACME, wa_id, "four")
        fourth = await ws.receive_json_from(timeout=FRAME_TIMEOUT)
        assert [fourth] == await frames_after("acme", logged[-1]["id"])
        assert fourth["message"]["text"] == "four"
        assert await ws.receive_nothing(timeout=0.5)


async def test_a_frame_past_a_gap_makes_the_consumer_fill_the_gap_from_the_log(tokens):
    wa_id = fresh_wa_id()
    async with inbox(ACME["domain"], tokens["alice"]) as (ws, ready):
        # given two events whose frames were lost on the way to this socket
        await inbound_unpublished(ACME, wa_id, ["lost one", "lost two"])
        assert await ws.receive_nothing(timeout=0.5)
        missed = await frames_after("acme", ready["last_event_id"])
        assert [f["message"]["text"] for f in missed] == ["lost one", "lost two"]

        # when the frame of the second one arrives (its predecessor never did)
        await get_channel_layer().group_send("inbox.acme", {"type": "inbox.event", "frame": missed[1]})

        # then the consumer sends both from the log, in order, once
        assert await frames(ws, 2) == missed
        assert await ws.receive_nothing(timeout=0.5)

        # and a late duplicate of an already sent frame is dropped
        await get_channel_layer().group_send("inbox.acme", {"type": "inbox.event", "frame": missed[0]})
        assert await ws.receive_nothing(timeout=0.5)


# ------------------------------------------------------------------ tenant isolation on the shared thread


async def test_interleaved_consumers_of_two_tenants_each_read_their_own_schema(tokens):
    # given events in both tenants' logs
    acme_start, globex_start = await last_event_id("acme"), await last_event_id("globex")
    for i in range(3):
        await inbound(ACME, fresh_wa_id(), f"acme {i}")
        await inbound(GLOBEX, fresh_wa_id(), f"globex {i}")
    acme_log = await frames_after("acme", acme_start)
    globex_log = await frames_after("globex", globex_start)
    assert [f["message"]["text"] for f in acme_log] == ["acme 0", "acme 1", "acme 2"]
    assert [f["message"]["text"] for f in globex_log] == ["globex 0", "globex 1", "globex 2"]

    # when both tenants' sockets connect one after the other and replay in turns on the shared database thread
    async with (
        inbox(ACME["domain"], tokens["alice"]) as (acme_ws, acme_ready),
        inbox(GLOBEX["domain"], tokens["bob"]) as (globex_ws, globex_ready),
    ):
        assert (acme_ready["last_event_id"], globex_ready["last_event_id"]) == (
            acme_log[-1]["id"],
            globex_log[-1]["id"],
        )
        for _ in range(3):
            await acme_ws.send_json_to({"type": "resume", "after": acme_start})
            await globex_ws.send_json_to({"type": "resume", "after": globex_start})

            # then each reads only its own tenant's log
            assert await frames(acme_ws, 3) == acme_log
            assert await frames(globex_ws, 3) == globex_log
        assert await acme_ws.receive_nothing(timeout=0.3)
        assert await globex_ws.receive_nothing(timeout=0.3)


def test_the_channel_layer_prefix_keeps_redis_databases_apart():
    # Redis pub/sub ignores the database number: two deployments on one server need different prefixes
    from django.conf import settings

    from helpdesk.env import channel_layer_prefix_from_redis_url

    assert [
        channel_layer_prefix_from_redis_url(url)
        for url in ("redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379", "unix:///var/redis.sock?db=2")
    ] == ["asgi.db3", "asgi.db0", "asgi.db2"]
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == channel_layer_prefix_from_redis_url(
        settings.REDIS_URL
    )


async def test_resume_after_an_id_from_the_future_does_not_mute_live_frames(tokens):
    wa_id = fresh_wa_id()
    async with inbox(ACME["domain"], tokens["alice"]) as (ws, ready):
        # when a client resumes after an id the log has not reached (a reset database, another installation)
        await ws.send_json_to({"type": "resume", "after": ready["last_event_id"] + 1000})
        assert await ws.receive_nothing(timeout=0.3)

        # then the next live event still reaches it
        await inbound(ACME, wa_id, "still live")
        frame = await ws.receive_json_from(timeout=FRAME_TIMEOUT)
        assert frame["message"]["text"] == "still live"
        assert frame == (await frames_after("acme", ready["last_event_id"]))[0]


# ------------------------------------------------------------------ origin


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("acme.localhost", "http://globex.localhost"),
        ("acme.localhost", "http://evil.example"),
        ("acme.localhost", "http://acme.localhost:9999"),
        ("acme.localhost:8000", "http://acme.localhost"),
        ("acme.localhost", "http://acme.localhost.evil.example"),
        ("acme.localhost", "null"),
        ("acme.localhost", None),
    ],
    ids=["other-tenant", "foreign-site", "other-port", "missing-port", "suffix", "null", "missing"],
)
async def test_a_handshake_from_another_origin_is_refused(tokens, host, origin):
    headers = [(b"host", host.encode()), (b"authorization", f"Token {tokens['alice']}".encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)

    connected, code = await communicator.connect(timeout=FRAME_TIMEOUT)

    assert (connected, code) == (False, 1000)
    assert await communicator.receive_nothing(timeout=0.2)


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("acme.localhost", "http://acme.localhost"),
        ("acme.localhost:8000", "http://acme.localhost:8000"),
        ("ACME.localhost", "https://acme.localhost"),
        ("acme.localhost:443", "https://acme.localhost"),
    ],
    ids=["plain", "with-port", "https-default-port", "explicit-default-port"],
)
async def test_a_handshake_from_the_tenant_host_itself_is_accepted(tokens, host, origin):
    communicator = WebsocketCommunicator(
        application,
        "/ws/inbox/",
        headers=[
            (b"host", host.encode()),
            (b"origin", origin.encode()),
            (b"authorization", f"Token {tokens['alice']}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=FRAME_TIMEOUT)
    try:
        assert connected
        assert (await communicator.receive_json_from(timeout=FRAME_TIMEOUT))["type"] == "ready"
    finally:
        await communicator.disconnect()


# ------------------------------------------------------------------ losing access closes sockets


REVOKED = {"type": "websocket.close", "code": 4401}


def _new_member(slugs: list[str]) -> dict[str, Any]:
    """A fresh user (committed) who is an agent of the given tenants, with an API token and an acme session."""
    from helpdesk.tenancy.actions import do_add_member
    from helpdesk.tenancy.models import Tenant

    email = f"carol-{fresh_wa_id()}@example.test"
    for slug in slugs:
        membership = do_add_member(Tenant.objects.get(schema_name=slug), email, "agent", PASSWORD, "Carol")
    client = tenant_client(ACME)
    client.force_login(membership.user)
    return {
        "email": email,
        "token": issue_token(membership.user),
        "cookie": client.cookies["sessionid"].value,
    }


def _command(*args: str) -> None:
    call_command(*args, stdout=StringIO())


def _sign_out_everywhere(token: str) -> None:
    assert tenant_client(ACME, token).post("/api/v1/auth/logout-all/").status_code == 204


def _deactivate_unpublished(email: str) -> None:
    """Deactivate while every message to the channel layer is lost (another prefix)."""
    from django.conf import settings

    lossy = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    lossy["default"]["CONFIG"] = {**lossy["default"]["CONFIG"], "prefix": "lost-frames"}
    with override_settings(CHANNEL_LAYERS=lossy):
        _command("deactivate_user", email)


new_member = sync_to_async(_new_member)
command = sync_to_async(_command)
sign_out_everywhere = sync_to_async(_sign_out_everywhere)
deactivate_unpublished = sync_to_async(_deactivate_unpublished)


@asynccontextmanager
async def open_socket(host: str, headers: list[tuple[bytes, bytes]]) -> AsyncIterator[WebsocketCommunicator]:
    communicator = WebsocketCommunicator(
        application,
        "/ws/inbox/",
        headers=[(b"host", host.encode()), (b"origin", f"http://{host}".encode()), *headers],
    )
    connected, _ = await communicator.connect(timeout=FRAME_TIMEOUT)
    assert connected
    try:
        assert (await communicator.receive_json_from(timeout=FRAME_TIMEOUT))["type"] == "ready"
        yield communicator
    finally:
        await communicator.disconnect()


def by_token(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Token {token}".encode())]


def by_session(cookie: str) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"sessionid={cookie}".encode())]


async def assert_closed_within(
    sockets: list[WebsocketCommunicator], started: float, seconds: float = 2.0
) -> None:
    for ws in sockets:
        remaining = seconds - (time.monotonic() - started)
        assert remaining > 0, "not closed in time"
        assert await ws.receive_output(timeout=remaining) == REVOKED


async def test_deactivate_user_closes_every_socket_of_the_user_within_two_seconds(tokens):
    carol = await new_member(["acme", "globex"])
    async with (
        open_socket(ACME["domain"], by_token(carol["token"])) as acme_by_token,
        open_socket(ACME["domain"], by_session(carol["cookie"])) as acme_by_session,
        open_socket(GLOBEX["domain"], by_token(carol["token"])) as globex_by_token,
        inbox(ACME["domain"], tokens["alice"]) as (alice_ws, _),
    ):
        # when the operator deactivates carol
        started = time.monotonic()
        await command("deactivate_user", carol["email"])

        # then each of her sockets, in both tenants, closes within two seconds
        carols = [acme_by_token, acme_by_session, globex_by_token]
        await assert_closed_within(carols, started)

        # and gets no further frame, while alice's socket keeps working
        await inbound(ACME, fresh_wa_id(), "after carol left")
        assert (await alice_ws.receive_json_from(timeout=FRAME_TIMEOUT))["message"][
            "text"
        ] == "after carol left"
        for ws in carols:
            assert await ws.receive_nothing(timeout=0.3)

    # and she cannot connect again
    refused = socket(ACME["domain"], carol["token"])
    assert await refused.connect(timeout=FRAME_TIMEOUT) == (False, 1000)


async def test_removing_a_membership_closes_that_tenants_sockets_only(committed_db):
    carol = await new_member(["acme", "globex"])
    async with (
        open_socket(ACME["domain"], by_token(carol["token"])) as acme_ws,
        open_socket(GLOBEX["domain"], by_token(carol["token"])) as globex_ws,
    ):
        started = time.monotonic()
        await command("remove_tenant_user", "acme", carol["email"])

        await assert_closed_within([acme_ws], started)
        await inbound(ACME, fresh_wa_id(), "not for carol any more")
        assert await acme_ws.receive_nothing(timeout=0.5)
        # her globex socket stays open and answers
        await globex_ws.send_json_to({"type": "ping"})
        assert await globex_ws.receive_json_from(timeout=FRAME_TIMEOUT) == {"type": "pong"}


async def test_signing_out_everywhere_closes_the_users_sockets(committed_db):
    carol = await new_member(["acme"])
    async with (
        open_socket(ACME["domain"], by_token(carol["token"])) as by_token_ws,
        open_socket(ACME["domain"], by_session(carol["cookie"])) as by_session_ws,
    ):
        started = time.monotonic()
        await sign_out_everywhere(carol["token"])

        await assert_closed_within([by_token_ws, by_session_ws], started)


async def test_a_lost_revocation_is_caught_by_the_periodic_recheck(committed_db, settings):
    settings.WEBSOCKET_RECHECK_SECONDS = 0.3
    carol = await new_member(["acme"])
    async with open_socket(ACME["domain"], by_token(carol["token"])) as ws:
        # when carol is deactivated but the message to her sockets is lost on the way
        started = time.monotonic()
        await deactivate_unpublished(carol["email"])

        # then her socket notices at its next re-check
        await assert_closed_within([ws], started)
        assert await ws.receive_nothing(timeout=0.3)


async def test_an_open_socket_keeps_its_token_alive(committed_db, settings):
    from django.utils import timezone
    from knox.models import AuthToken

    settings.WEBSOCKET_RECHECK_SECONDS = 0.2
    carol = await new_member(["acme"])
    soon = timezone.now() + timedelta(seconds=30)
    await sync_to_async(lambda: AuthToken.objects.filter(user__email=carol["email"]).update(expiry=soon))()

    async with open_socket(ACME["domain"], by_token(carol["token"])) as ws:
        await asyncio.sleep(0.6)
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {"type": "pong"}
        expiry = await sync_to_async(lambda: AuthToken.objects.get(user__email=carol["email"]).expiry)()
        assert expiry > timezone.now() + timedelta(hours=23)


# ------------------------------------------------------------------ the cost of a handshake


class DatabaseUse:
    """The database work of websockets while installed: `database_sync_to_async` hops (Channels runs each on the
    process's one database thread) and the statements they run through Django."""

    def __init__(self) -> None:
        self.hops = 0
        self.statements: list[str] = []

    def __call__(self, execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        self.statements.append(str(sql))
        return execute(sql, params, many, context)

    def reset(self) -> None:
        self.hops, self.statements = 0, []


@pytest.fixture
def database_use(monkeypatch: pytest.MonkeyPatch) -> DatabaseUse:
    """Counts hops by wrapping Channels' DatabaseSyncToAsync.thread_handler (which still does all it did)."""
    from channels.db import DatabaseSyncToAsync
    from django.db import connections

    use = DatabaseUse()
    original = DatabaseSyncToAsync.thread_handler

    def counted(self: Any, loop: Any, *args: Any, **kwargs: Any) -> Any:
        use.hops += 1
        with connections["default"].execute_wrapper(use):
            return original(self, loop, *args, **kwargs)

    monkeypatch.setattr(DatabaseSyncToAsync, "thread_handler", counted)
    return use


def _fresh_token(email: str) -> str:
    from helpdesk.tenancy.models import User

    return issue_token(User.objects.get(email=email))


fresh_token = sync_to_async(_fresh_token)


async def test_a_handshake_is_one_database_hop_and_statement_even_an_agents_first(committed_db, database_use):
    # given this process has admitted a socket on acme's host before, and a token never used on a socket
    async with open_socket(ACME["domain"], by_token(await fresh_token("sam@acme.test"))):
        pass
    token = await fresh_token("alice@acme.test")
    database_use.reset()

    # when it connects: one hop, one statement (tenant, token, user, membership and last event id)
    async with open_socket(ACME["domain"], by_token(token)):
        assert (database_use.hops, len(database_use.statements)) == (1, 1)
        assert database_use.statements[0].lstrip().startswith("WITH site AS")  # (no `SET search_path` first)

    # and so when it connects again
    database_use.reset()
    async with open_socket(ACME["domain"], by_token(token)):
        assert (database_use.hops, len(database_use.statements)) == (1, 1)


async def test_sockets_arriving_together_on_a_host_new_to_the_process_look_its_tenant_up_once(
    committed_db, database_use
):
    from conversations import consumers

    # given a process that has admitted no socket yet (just restarted), and three agents' tokens
    consumers._schema_hints.clear()
    tokens = [await fresh_token(email) for email in ("alice@acme.test", "sam@acme.test", "ada@acme.test")]
    database_use.reset()

    # when their sockets connect at once
    sockets = [socket(ACME["domain"], token) for token in tokens]
    try:
        connected = await asyncio.gather(*(ws.connect(timeout=FRAME_TIMEOUT) for ws in sockets))
        readies = [await ws.receive_json_from(timeout=FRAME_TIMEOUT) for ws in sockets]
    finally:
        for ws in sockets:
            await ws.disconnect()
    assert [accepted for accepted, _ in connected] == [True, True, True]
    assert [ready["type"] for ready in readies] == ["ready", "ready", "ready"]

    # then the host's tenant is looked up once (to join its group before the checks), then each is checked once
    assert database_use.hops == 4
    assert [sql.lstrip()[:20] for sql in database_use.statements] == [
        "SELECT t.schema_name",
        "WITH site AS (\n    S",
        "WITH site AS (\n    S",
        "WITH site AS (\n    S",
    ]


async def test_a_resume_is_one_database_hop_and_one_statement_when_nothing_was_missed(tokens, database_use):
    wa_id = fresh_wa_id()
    start = await last_event_id("acme")
    for text in ("one", "two"):
        await inbound(ACME, wa_id, text)
    logged = await frames_after("acme", start)
    async with inbox(ACME["domain"], tokens["alice"]) as (ws, ready):
        # a client that missed two events: the last id, then (in the tenant's schema) the events after its id
        database_use.reset()
        await ws.send_json_to({"type": "resume", "after": start})

        assert await frames(ws, 2) == logged
        assert database_use.hops == 1
        assert len(database_use.statements) == 3
        assert database_use.statements[1] == 'SET search_path = "acme","public"'

        # a client that missed nothing (most of a reconnect storm): the last id only
        database_use.reset()
        await ws.send_json_to({"type": "resume", "after": ready["last_event_id"]})
        await ws.send_json_to({"type": "ping"})

        assert await ws.receive_json_from(timeout=FRAME_TIMEOUT) == {"type": "pong"}
        assert (database_use.hops, len(database_use.statements)) == (1, 1)
        assert 'FROM "acme"."conversations_inboxevent"' in database_use.statements[0]


# ------------------------------------------------------------------ what the handshake checks


def _remove_membership(email: str, slug: str) -> None:
    from helpdesk.tenancy.models import Membership

    Membership.objects.filter(user__email=email, tenant__schema_name=slug).delete()


def _expire_token(token: str, expiry: Any) -> None:
    from knox.crypto import hash_token
    from knox.models import AuthToken

    AuthToken.objects.filter(digest=hash_token(token)).update(expiry=expiry)


def _token_expiry(token: str) -> Any:
    from knox.crypto import hash_token
    from knox.models import AuthToken

    return AuthToken.objects.get(digest=hash_token(token)).expiry


def _change_password_hash(email: str) -> None:
    """The stored password changes without the sessions being deleted (another tool wrote it)."""
    from django.contrib.auth.hashers import make_password

    from helpdesk.tenancy.models import User

    User.objects.filter(email=email).update(password=make_password("another-password-8231"))


def _set_active(email: str, active: bool) -> None:
    from helpdesk.tenancy.models import User

    User.objects.filter(email=email).update(is_active=active)


remove_membership = sync_to_async(_remove_membership)
expire_token = sync_to_async(_expire_token)
token_expiry = sync_to_async(_token_expiry)
change_password_hash = sync_to_async(_change_password_hash)
set_active = sync_to_async(_set_active)


async def refused(host: str, headers: list[tuple[bytes, bytes]]) -> bool:
    communicator = WebsocketCommunicator(
        application,
        "/ws/inbox/",
        headers=[(b"host", host.encode()), (b"origin", f"http://{host}".encode()), *headers],
    )
    connected, code = await communicator.connect(timeout=FRAME_TIMEOUT)
    await communicator.disconnect()
    return (connected, code) == (False, 1000)


async def test_a_socket_admitted_before_is_refused_once_its_membership_is_gone(committed_db):
    # given carol has connected to both tenants with her token (this process remembers whose groups to join)
    carol = await new_member(["acme", "globex"])
    async with open_socket(ACME["domain"], by_token(carol["token"])):
        pass
    async with open_socket(GLOBEX["domain"], by_token(carol["token"])):
        pass

    # when her acme membership is removed (without any message to her sockets)
    await remove_membership(carol["email"], "acme")

    # then acme refuses her next handshake, by token and by session, and globex still takes it
    assert await refused(ACME["domain"], by_token(carol["token"]))
    assert await refused(ACME["domain"], by_session(carol["cookie"]))
    async with open_socket(GLOBEX["domain"], by_token(carol["token"])):
        pass


async def test_an_expired_token_is_refused_and_a_used_one_moves_its_idle_expiry_on(committed_db):
    from django.utils import timezone

    carol = await new_member(["acme"])

    # a token close to its idle expiry is moved on by a handshake, as by an API call (written within a second,
    # together with the other sockets' of the moment)
    await expire_token(carol["token"], timezone.now() + timedelta(seconds=30))
    async with open_socket(ACME["domain"], by_token(carol["token"])):
        deadline = time.monotonic() + 2
        while await token_expiry(carol["token"]) < timezone.now() + timedelta(hours=1):
            assert time.monotonic() < deadline, "the idle expiry did not move on"
            await asyncio.sleep(0.05)
        assert await token_expiry(carol["token"]) > timezone.now() + timedelta(hours=23)

    # an expired one is refused (after it had been admitted before)
    await expire_token(carol["token"], timezone.now() - timedelta(seconds=1))
    assert await refused(ACME["domain"], by_token(carol["token"]))


async def test_a_session_whose_password_hash_changed_or_whose_user_is_inactive_is_refused(committed_db):
    carol, dave = await new_member(["acme"]), await new_member(["acme"])
    async with open_socket(ACME["domain"], by_session(carol["cookie"])):
        pass
    async with open_socket(ACME["domain"], by_session(dave["cookie"])):
        pass

    await change_password_hash(carol["email"])
    await set_active(dave["email"], False)

    assert await refused(ACME["domain"], by_session(carol["cookie"]))
    assert await refused(ACME["domain"], by_session(dave["cookie"]))
    # and their tokens (unchanged by the password hash) follow the same rule for inactive users
    async with open_socket(ACME["domain"], by_token(carol["token"])):
        pass
    assert await refused(ACME["domain"], by_token(dave["token"]))


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", b"Token not-a-token")],
        [(b"authorization", b"Token \xff\xfe")],
        [(b"cookie", b"sessionid=nosuchsessionkey123")],
        [(b"cookie", b"sessionid=short")],
    ],
    ids=["unknown-token", "undecodable-token", "unknown-session", "invalid-session-key"],
)
async def test_a_handshake_with_a_bad_credential_is_refused(committed_db, headers):
    assert await refused(ACME["domain"], headers)


def _user_id(email: str) -> int:
    from helpdesk.tenancy.models import User

    return int(User.objects.get(email=email).pk)


user_id = sync_to_async(_user_id)


async def test_a_revocation_is_also_sent_to_the_inbox_groups_of_the_users_tenants(committed_db):
    # (a socket joins its tenant's group before its check, and its user's group only after it)
    carol = await new_member(["acme", "globex"])
    carol_id = await user_id(carol["email"])
    layer = get_channel_layer()
    listener = await layer.new_channel()
    for group in ("inbox.acme", "inbox.globex"):
        await layer.group_add(group, listener)
    try:
        await command("deactivate_user", carol["email"])

        received = [await asyncio.wait_for(layer.receive(listener), FRAME_TIMEOUT) for _ in range(2)]
    finally:
        for group in ("inbox.acme", "inbox.globex"):
            await layer.group_discard(group, listener)

    assert received == [{"type": "access.revoked", "schema": None, "user": carol_id}] * 2


async def test_a_revocation_in_the_tenants_group_closes_that_users_sockets_only(tokens):
    carol = await new_member(["acme"])
    carol_id = await user_id(carol["email"])
    async with (
        open_socket(ACME["domain"], by_token(carol["token"])) as carols,
        inbox(ACME["domain"], tokens["alice"]) as (alices, _),
    ):
        started = time.monotonic()
        await get_channel_layer().group_send(
            "inbox.acme", {"type": "access.revoked", "schema": "acme", "user": carol_id}
        )

        await assert_closed_within([carols], started)
        await alices.send_json_to({"type": "ping"})
        assert await alices.receive_json_from(timeout=FRAME_TIMEOUT) == {"type": "pong"}
