"""The live inbox websocket (/ws/inbox/).

Frames are JSON: `{"type": "message.created" | "message.updated" | "conversation.updated", "id": <event id>,
"message": {...}, "conversation": {...}}` in the API's shapes. The client sends `{"type": "resume",
"after": <event id>}` on every (re)connect and gets exactly what it missed, in order, from the event log.
Every database call opens the tenant's schema itself (or names it): Channels runs them on one shared thread per
process, so each call queues behind every other socket's; a handshake makes one (socket_access.admit: tenant,
credential, user, membership and last event id in one statement), a resume one.

Presence is not in the log: a client says `{"type": "presence", "conversation": <id> | null, "typing": bool}`
when it opens a conversation, types, or every 20 seconds while it stays; the others of the tenant get
`{"type": "presence", "user": <id>, "conversation", "typing"}` (no id: nothing to resume), and
`"conversation": null` when the socket closes. A client drops what it has not heard again within a minute.

A socket ends (close code 4401, nothing sent after it) when its user loses access: deactivated, signed out
everywhere, password changed (the actions publish to the user's group `user.<id>` and, with the user's id, to
the groups of the user's tenants) or membership of this tenant removed; as a safety net it also re-checks user,
membership and token or session every WEBSOCKET_RECHECK_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django_tenants.utils import schema_context
from knox.models import AuthToken
from knox.settings import knox_settings

from conversations import events, socket_access
from conversations.socket_access import Access, Handshake
from helpdesk import live
from helpdesk.tenancy.models import Membership, Role, UserSession

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

REPLAY_PAGE = 500
# Alerts about the numbers' standing with Meta and the broadcasts: for supervisors and admins only.
SUPERVISOR_FRAMES = ("health.", "broadcast.")
PRESENCE_REPEAT = 1.0  # seconds: the same presence again sooner is not broadcast (a client's loop, or spam)
ACCESS_REVOKED = 4401  # close code: the user may no longer read this inbox; reconnecting will be refused


def database_hop(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`database_sync_to_async`, and the connection given back to the pool at the end of the call from inside
    the caller's context as well (the dispatch below no longer sends a hop just for that after every message)."""

    @functools.wraps(function)
    def hop(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return database_sync_to_async(hop)  # type: ignore[no-any-return]


# The schema each host name was admitted to in this process: only a hint of the tenant group to join before the
# check (a wrong or missing hint costs a second check, never access). One entry per tenant domain in use.
SCHEMA_HINTS_MAX = 10_000
_schema_hints: dict[str, str] = {}
_schema_lookups: dict[str, asyncio.Future[str | None]] = {}


def _remember_schema(hostname: str, schema_name: str) -> None:
    if hostname not in _schema_hints and len(_schema_hints) >= SCHEMA_HINTS_MAX:
        _schema_hints.clear()
    _schema_hints[hostname] = schema_name


@database_hop
def _schema_for_host(hostname: str) -> str | None:
    return socket_access.schema_for_host(hostname)


async def _schema_hint(hostname: str) -> str | None:
    """The schema this host was admitted to, else looked up once for all the handshakes arriving together (after
    a restart every agent reconnects at once: one lookup per host and process, not a second check per socket)."""
    hint = _schema_hints.get(hostname)
    if hint is not None:
        return hint
    lookup = _schema_lookups.get(hostname)
    if lookup is None:
        lookup = asyncio.ensure_future(_schema_for_host(hostname))
        _schema_lookups[hostname] = lookup
        lookup.add_done_callback(lambda _: _schema_lookups.pop(hostname, None))
    try:
        schema_name = await asyncio.shield(lookup)
    except Exception:
        log.exception("looking up the tenant of %r failed", hostname)
        return None
    if schema_name is not None:
        _remember_schema(hostname, schema_name)
    return schema_name


@database_hop
def _admit(handshake: Handshake, schema_hint: str | None) -> Access | None:
    return socket_access.admit(handshake, schema_hint)


@database_hop
def _renew_tokens(digests: list[str]) -> int:
    return socket_access.renew_tokens(digests)


# Tokens whose idle expiry is due to move on, written together a moment after their sockets connected.
RENEW_AFTER_SECONDS = 0.5
_renewals: set[str] = set()
_renewer: asyncio.Task[None] | None = None


def _renew_soon(digest: str) -> None:
    global _renewer
    _renewals.add(digest)
    if _renewer is None or _renewer.done() or _renewer.get_loop() is not asyncio.get_running_loop():
        _renewer = asyncio.create_task(_renew_gathered())


async def _renew_gathered() -> None:
    global _renewer
    try:
        while _renewals:
            await asyncio.sleep(RENEW_AFTER_SECONDS)
            digests = sorted(_renewals)
            _renewals.clear()
            try:
                await _renew_tokens(digests)
            except Exception:
                log.exception(
                    "moving %d tokens' idle expiry on failed (the sockets' re-checks will)", len(digests)
                )
    finally:
        if _renewer is asyncio.current_task():
            _renewer = None


@database_hop
def _still_allowed(user_id: int, tenant_id: int, token_digest: str | None, session_key: str | None) -> bool:
    """The socket's user is active and a member, and its token (an open socket counts as a use: the idle
    expiry moves on) or its session still exists."""
    now = timezone.now()
    if not Membership.objects.filter(user_id=user_id, tenant_id=tenant_id, user__is_active=True).exists():
        return False
    if token_digest:
        return bool(
            AuthToken.objects.filter(digest=token_digest, user_id=user_id, expiry__gt=now).update(
                expiry=now + knox_settings.TOKEN_TTL
            )
        )
    if session_key:
        return UserSession.objects.filter(
            session_key=session_key, user_id=user_id, expire_date__gt=now
        ).exists()
    return False


@database_hop
def _replay(schema_name: str, after_id: int) -> tuple[int, list[dict[str, Any]]]:
    """Where a resume after `after_id` starts (an id the log has not reached counts as its last one, so that it
    does not mute live frames) and the first page of events after it: one hop, and one statement when the client
    has missed nothing (a reconnect storm's usual case)."""
    last = socket_access.last_event_id(schema_name)
    if after_id >= last:
        return last, []
    with schema_context(schema_name):
        return after_id, events.events_after(after_id, limit=REPLAY_PAGE)


@database_hop
def _events_after(schema_name: str, after_id: int) -> list[dict[str, Any]]:
    with schema_context(schema_name):
        return events.events_after(after_id, limit=REPLAY_PAGE)


class InboxConsumer(AsyncJsonWebsocketConsumer):
    schema_name: str
    groups_joined: list[str]
    last_sent_id: int
    user_id: int | None = None  # once admitted
    sees_health = False  # a supervisor or admin (health.* and broadcast.* frames)
    last_presence: tuple[int | None, bool] | None = None
    last_presence_at = 0.0
    ended = False
    recheck_task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        handshake = self.scope.get("handshake")
        if not isinstance(handshake, Handshake) or not handshake.presents_credentials:
            self.ended = True
            await self.close()  # before accept: the handshake is refused with 403
            return
        # The tenant's group is joined before the check (one statement: tenant, credential, user, membership and
        # the last event id), so that no event falls between the id read and the group, and so that a revocation
        # committed after the check is heard: revocations go to the tenants' groups too (live.publish_revocation).
        # Which tenant: the one this host was admitted to before in this process, else looked up (once).
        hint = await _schema_hint(handshake.hostname)
        if hint is None:
            self.ended = True
            await self.close()  # no tenant has this domain
            return
        await self._join(live.inbox_group(hint))
        access = await _admit(handshake, hint)
        if access is not None and access.schema_name != hint:
            hint = access.schema_name
            await self._leave_groups()
            await self._join(live.inbox_group(hint))
            access = await _admit(handshake, hint)
            if access is not None and access.schema_name != hint:
                access = None  # the domain moved between two statements: let the client retry
        if access is None or access.last_event_id is None:
            self.ended = True
            await self._leave_groups()
            await self.close()
            return
        _remember_schema(handshake.hostname, access.schema_name)
        self.user_id = access.user_id
        self.schema_name = access.schema_name
        self.sees_health = access.role in (Role.SUPERVISOR, Role.ADMIN)
        self.last_sent_id = access.last_event_id
        await self._join(live.user_group(access.user_id))
        if access.renew_token and handshake.token_digest:
            _renew_soon(handshake.token_digest)
        await self.accept()
        await self.send_json({"type": "ready", "last_event_id": self.last_sent_id})
        self.recheck_task = asyncio.create_task(
            self._recheck_access(
                access.user_id, access.tenant_id, handshake.token_digest, handshake.session_key
            )
        )

    async def _join(self, group: str) -> None:
        self.groups_joined = [*getattr(self, "groups_joined", []), group]
        await self.channel_layer.group_add(group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before every message (the connect, each frame
        from the client, each frame from the channel layer): that is a hop to the process's one database thread
        per message, queued behind every handshake's check. This consumer touches the database only through
        `database_hop`, which gives its connection back itself at the end of every call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' websocket_disconnect without its closing hop (see dispatch)."""
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        if self.user_id is not None and self.last_presence is not None:
            await self._announce(None, False)  # gone: the others stop showing this agent here
        await self._leave_groups()
        if self.recheck_task is not None:
            self.recheck_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.recheck_task

    async def access_revoked(self, message: dict[str, Any]) -> None:
        """From the user's group, or the tenant's with the user's id: deactivated, signed out everywhere, or
        removed from a tenant (`schema`)."""
        if self.user_id is None or message.get("user", self.user_id) != self.user_id:
            return
        if message.get("schema") in (None, self.schema_name):
            await self._end()

    async def _recheck_access(
        self, user_id: int, tenant_id: int, token_digest: str | None, session_key: str | None
    ) -> None:
        while not self.ended:
            await asyncio.sleep(settings.WEBSOCKET_RECHECK_SECONDS)
            try:
                allowed = await _still_allowed(user_id, tenant_id, token_digest, session_key)
            except Exception:
                log.exception("re-checking a websocket's access failed; trying again later")
                continue
            if not allowed:
                await self._end()

    async def _end(self) -> None:
        """Close with ACCESS_REVOKED, once; nothing is sent after it."""
        if self.ended:
            return
        self.ended = True
        await self._leave_groups()
        await self.close(code=ACCESS_REVOKED)

    async def _leave_groups(self) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

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
        if self.ended:
            return
        if not isinstance(content, dict):
            await self._error("invalid_frame", "Frames are JSON objects.")
            return
        if content.get("type") == "resume":
            after = content.get("after")
            if not isinstance(after, int) or isinstance(after, bool) or after < 0:
                await self._error("invalid_frame", "resume needs `after`: an event id (integer).")
                return
            # An id from the future (another installation, a reset database) must not mute live frames.
            self.last_sent_id, replayed = await _replay(self.schema_name, after)
            if await self._send_replayed(replayed):
                await self._catch_up()
        elif content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        elif content.get("type") == "presence":
            conversation, typing = content.get("conversation"), content.get("typing", False)
            valid_id = conversation is None or (
                isinstance(conversation, int)
                and not isinstance(conversation, bool)
                and 0 < conversation < 2**63
            )
            if not valid_id or not isinstance(typing, bool):
                await self._error(
                    "invalid_frame", "presence needs `conversation` (an id or null), `typing` (bool)."
                )
                return
            now = time.monotonic()
            if self.last_presence == (conversation, typing) and now - self.last_presence_at < PRESENCE_REPEAT:
                return  # the same again, sooner than a refresh needs: not worth a broadcast
            self.last_presence, self.last_presence_at = (conversation, typing), now
            await self._announce(conversation, typing)
        else:
            await self._error("unknown_type", f"Unknown frame type {content.get('type')!r}.")

    async def _announce(self, conversation: int | None, typing: bool) -> None:
        await self.channel_layer.group_send(
            live.inbox_group(self.schema_name),
            {"type": "presence.update", "user": self.user_id, "conversation": conversation, "typing": typing},
        )

    async def presence_update(self, message: dict[str, Any]) -> None:
        """Another agent's presence (never this socket's own user's: their other tabs know)."""
        if self.ended or message.get("user") == self.user_id:
            return
        await self.send_json(
            {
                "type": "presence",
                "user": message["user"],
                "conversation": message["conversation"],
                "typing": message["typing"],
            }
        )

    async def inbox_event(self, message: dict[str, Any]) -> None:
        if self.ended:
            return
        frame = message["frame"]
        event_id = int(frame["id"])
        if event_id <= self.last_sent_id:
            return  # already sent (by a replay)
        if event_id > self.last_sent_id + 1:
            await self._catch_up()  # something may have been dropped on the way: read it from the log
            return
        if self._may_see(frame):
            await self.send_json(frame)
        self.last_sent_id = event_id

    def _may_see(self, frame: dict[str, Any]) -> bool:
        """Alerts about the numbers' standing with Meta (the banners) and broadcasts are for supervisors and
        admins."""
        return self.sees_health or not str(frame.get("type", "")).startswith(SUPERVISOR_FRAMES)

    async def _catch_up(self) -> None:
        while await self._send_replayed(await _events_after(self.schema_name, self.last_sent_id)):
            pass

    async def _send_replayed(self, frames: list[dict[str, Any]]) -> bool:
        """Sends a page of frames from the log; whether a further page may follow."""
        for frame in frames:
            if self.ended:
                return False
            if self._may_see(frame):
                await self.send_json(frame)
            self.last_sent_id = int(frame["id"])
        return len(frames) == REPLAY_PAGE
