"""The websocket benchmark's reference: a bare Channels consumer that accepts, joins one group on the same channel
layer as the product (helpdesk.settings) and sends one small frame, served the way the product is
(`bench.servers.start_web(port, env, app="bench.bare_ws:application")`). No origin check, no tenant, no
authentication, no database: what a websocket costs before the product does anything.

GET /healthz answers 200 (for `bench.servers.wait_http`).
"""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "bench.bare"


class BareConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]  # joined by Channels before connect(), left after disconnect()

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data='{"type": "ready", "last_event_id": 0}')  # like the product's first frame

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data='{"type": "pong"}')


async def healthz(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter(
    {"http": healthz, "websocket": URLRouter([path("ws/bare/", BareConsumer.as_asgi())])}
)
