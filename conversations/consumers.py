"""The live inbox websocket (/ws/inbox/).

Frames are JSON: `{"type": "message.created" | "message.updated" | "conversation.updated", "id": <event id>,
"message": {...}, "conversation": {...}}` in the API's shapes. The client sends `{"type": "resume",
"after": <event id>}` on every (re)connect and gets exactly what it missed, in order, from the event log.
Every database call opens the tenant's schema itself: Channels runs them on one shared thread.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_tenants.utils import schema_context

from conversations import events
from helpdesk import live
from helpdesk.tenancy.access import membership_of
from helpdesk.tenancy.models import Tenant

log = logging.getLogger(__name__)

REPLAY_PAGE = 500


@database_sync_to_async
def _is_member(user: Any, tenant: Tenant) -> bool:
    return membership_of(user, tenant) is not None


@database_sync_to_async
def _last_event_id(schema_name: str) -> int:
    with schema_context(schema_name):
        return events.last_event_id()


@database_sync_to_async
def _events_after(schema_name: str, after_id: int) -> list[dict[str, Any]]:
    with schema_context(schema_name):
        return events.events_after(after_id, limit=REPLAY_PAGE)


class InboxConsumer(AsyncJsonWebsocketConsumer):
    schema_name: str
    group: str
    last_sent_id: int

    async def connect(self) -> None:
        tenant = self.scope.get("tenant")
        if tenant is None or not await _is_member(self.scope.get("user"), tenant):
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.schema_name = tenant.schema_name
        self.group = live.inbox_group(self.schema_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.last_sent_id = await _last_event_id(self.schema_name)
        await self.accept()
        await self.send_json({"type": "ready", "last_event_id": self.last_sent_id})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _error(self, code: str, detail: str) -> None:
        """A refused frame: said to the client, and the socket stays open."""
        await self.send_json({"type": "error", "code": code, "detail": detail})

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # Channels' JSON consumer raises (and drops the socket) on binary or non-JSON frames.
        if text_data is None:
            await self._error("invalid_json", "Frames are JSON text, not binary.")
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):
            await self._error("invalid_json", "Frames are JSON text: this one is not JSON.")
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self._error("invalid_frame", "Frames are JSON objects.")
            return
        if content.get("type") == "resume":
            after = content.get("after")
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                await self._error("invalid_frame", "resume needs `after`: an event id (integer).")
                return
            # An id from the future (another installation, a reset database) must not mute live frames.
            self.last_sent_id = min(after, await _last_event_id(self.schema_name))
            await self._catch_up()
        elif content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self._error("unknown_type", f"Unknown frame type {content.get('type')!r}.")

    async def inbox_event(self, message: dict[str, Any]) -> None:
        frame = message["frame"]
        event_id = int(frame["id"])
        if event_id <= self.last_sent_id:
            return  # already sent (by a replay)
        if event_id > self.last_sent_id + 1:
            await self._catch_up()  # something may have been dropped on the way: read it from the log
            return
        await self.send_json(frame)
        self.last_sent_id = event_id

    async def _catch_up(self) -> None:
        while True:
            missed = await _events_after(self.schema_name, self.last_sent_id)
            for frame in missed:
                await self.send_json(frame)
                self.last_sent_id = int(frame["id"])
            if len(missed) < REPLAY_PAGE:
                return
