"""The loop through real processes: webhook in (daphne), processing and sending (a real Celery worker),
a websocket client that sees it live, and the reply reaching the (fake) Graph API."""

from __future__ import annotations

import json
import socket as socket_module
import time
from typing import Any

import requests
from websockets.sync.client import connect

from tests.conftest import ACME, api_token, fresh_wa_id, payload, retarget


def wait_for(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.time() + seconds
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    return check()


def api(live_stack: Any, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method,
        f"http://127.0.0.1:{live_stack.port}{path}",
        timeout=10,
        headers={"Host": ACME["domain"], "Authorization": f"Token {token}"},
        **kwargs,
    )


def test_inbound_message_is_pushed_live_and_the_reply_reaches_the_graph_api(committed_db, live_stack):
    token = api_token("alice@acme.test")
    wa_id = fresh_wa_id()
    with connect(
        f"ws://{ACME['domain']}:{live_stack.port}/ws/inbox/",
        sock=socket_module.create_connection(("127.0.0.1", live_stack.port)),
        origin=f"http://{ACME['domain']}:{live_stack.port}",
        additional_headers={"Authorization": f"Token {token}"},
        open_timeout=10,
    ) as socket:
        ready = json.loads(socket.recv(timeout=5))
        assert ready["type"] == "ready"

        response = live_stack.webhook(
            retarget(payload("inbound_text.json"), wa_id=wa_id, text="Paket saya di mana?")
        )
        assert response.status_code == 200

        frame = json.loads(socket.recv(timeout=10))
        assert frame["type"] == "message.created"
        assert frame["id"] > ready["last_event_id"]
        assert frame["message"]["text"] == "Paket saya di mana?"
        assert frame["conversation"]["contact"]["wa_id"] == wa_id
        conversation_id = frame["conversation"]["id"]

        reply = api(
            live_stack,
            token,
            "POST",
            f"/api/v1/conversations/{conversation_id}/messages/",
            json={"text": "Sedang kami cek."},
        )
        assert reply.status_code == 201
        assert reply.json()["status"] == "queued"

        sends = wait_for(lambda: live_stack.graph.sends(wa_id))
        assert [s["body"]["text"]["body"] for s in sends] == ["Sedang kami cek."]
        assert sends[0]["path"] == f"/v25.0/{ACME['pnid']}/messages"
        assert sends[0]["headers"]["Authorization"] == f"Bearer {ACME['token']}"

        updates = []
        while not any(f.get("message", {}).get("status") == "sent" for f in updates):
            updates.append(json.loads(socket.recv(timeout=10)))
        sent = [f for f in updates if f["type"] == "message.updated"][-1]["message"]
        assert sent["id"] == reply.json()["id"]
        assert sent["wamid"].startswith("wamid.E2E")
