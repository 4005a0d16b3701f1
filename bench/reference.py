"""The minimal reference every ingest figure is compared with: what the job needs and nothing more.

- `application` (ASGI; served like the product: gunicorn with uvicorn workers, same worker count):
  `POST /webhook` verifies the HMAC-SHA256 of the raw body with the app secret, inserts the raw body as one row
  (psycopg, a pooled connection per worker: 8 at most, 503 with Retry-After when none is free within 5 s), wakes
  the applier (LPUSH on a Redis list) and answers 200. `GET /healthz` answers 200. A websocket on any path is a
  bare Channels consumer in the group `bench.reference`, forwarding every frame published there.
- `python -m bench.reference applier`: one process; on a wake (BLPOP), claims pending rows in batches
  (`FOR UPDATE SKIP LOCKED`), bulk-inserts the messages (`ON CONFLICT (wamid) DO NOTHING`: a redelivery is not
  a duplicate), applies the statuses to the message rows, marks the rows applied, commits, then publishes one
  frame per new message (`{"wamid": ...}`) to the same kind of channel layer as the product
  (channels_redis `RedisPubSubChannelLayer`).

What it leaves out, on purpose: tenants (one number, its secret from the environment), contacts,
conversations, tickets, the event log, retries. The product does all of that; the ratio says what it costs.

Environment: REFERENCE_DSN (psycopg conninfo or URL), REFERENCE_APP_SECRET, REDIS_URL, REFERENCE_PREFIX (the
channel layer's prefix and the wake list's name).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

SCHEMA = "bench_reference"
GROUP = "bench.reference"
BATCH = 500
POOL_MAX = 8
POOL_TIMEOUT = 5.0

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.event (
    id bigserial PRIMARY KEY,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz
);
CREATE INDEX event_pending ON {SCHEMA}.event (id) WHERE applied_at IS NULL;
CREATE TABLE {SCHEMA}.message (
    id bigserial PRIMARY KEY,
    wamid text NOT NULL UNIQUE,
    wa_id text NOT NULL,
    text text NOT NULL,
    status text NOT NULL DEFAULT 'received',
    sent_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def create_schema(dsn: str) -> None:
    """Fresh tables for the reference (in the scratch database, a schema of their own)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DDL)  # type: ignore[arg-type]


def wake_key(prefix: str) -> str:
    return f"{prefix}:wake"


# ------------------------------------------------------------------ the view


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return b""


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Webhook:
    """The HTTP side, one per worker process; the pool and the Redis client open on first use."""

    def __init__(self) -> None:
        self.secret = os.environ["REFERENCE_APP_SECRET"].encode()
        self.dsn = os.environ["REFERENCE_DSN"]
        self.wake = wake_key(os.environ.get("REFERENCE_PREFIX", "benchref"))
        self.pool: Any = None
        self.redis: Any = None
        self.lock = asyncio.Lock()

    async def _open(self) -> None:
        async with self.lock:
            if self.pool is None:
                import redis.asyncio as aioredis
                from psycopg_pool import AsyncConnectionPool

                pool = AsyncConnectionPool(
                    self.dsn,
                    min_size=1,
                    max_size=POOL_MAX,
                    timeout=POOL_TIMEOUT,
                    kwargs={"autocommit": True},
                    open=False,
                )
                await pool.open()
                self.redis = aioredis.Redis.from_url(os.environ["REDIS_URL"])
                self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET" and scope["path"] == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}')
            return
        if scope["method"] != "POST" or scope["path"] != "/webhook":
            await _respond(send, 404, b'{"detail":"Not found."}')
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), _header(scope, b"x-hub-signature-256").lower()):
            await _respond(send, 403, b'{"detail":"Invalid signature."}')
            return
        if self.pool is None:
            await self._open()
        from psycopg_pool import PoolTimeout

        try:
            async with self.pool.connection() as conn:
                await conn.execute(f"INSERT INTO {SCHEMA}.event (body) VALUES (%s)", [body.decode()])
        except PoolTimeout:
            await _respond(send, 503, b'{"detail":"Busy."}', [(b"retry-after", b"5")])
            return
        await self.redis.lpush(self.wake, b"1")
        await _respond(send, 200, b'{"detail":"Stored."}')


# ------------------------------------------------------------------ the consumer


def _websocket_app() -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CHANNEL_LAYERS={
                "default": {
                    "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                    "CONFIG": {
                        "hosts": [os.environ["REDIS_URL"]],
                        "prefix": os.environ.get("REFERENCE_PREFIX", "benchref"),
                    },
                }
            },
            INSTALLED_APPS=[],
        )
        import django

        django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer

    class ReferenceConsumer(AsyncWebsocketConsumer):
        groups = [GROUP]

        async def connect(self) -> None:
            await self.accept()
            await self.send(text_data='{"type": "ready"}')

        async def bench_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["frame"])

    return ReferenceConsumer.as_asgi()


class Application:
    def __init__(self) -> None:
        self.webhook = Webhook()
        self.websocket = _websocket_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.webhook(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return


_application: Application | None = None


def __getattr__(name: str) -> Any:
    """`bench.reference:application` is built when a server asks for it, not when the harness imports this."""
    global _application
    if name == "application":
        if _application is None:
            _application = Application()
        return _application
    raise AttributeError(name)


# ------------------------------------------------------------------ the applier


def parse(bodies: list[str]) -> tuple[list[tuple[str, str, str, datetime]], list[tuple[str, str]]]:
    """Messages (wamid, wa_id, text, sent at) and statuses (wamid, status) of stored webhook bodies."""
    messages: list[tuple[str, str, str, datetime]] = []
    statuses: list[tuple[str, str]] = []
    for body in bodies:
        try:
            payload = json.loads(body)
        except ValueError:
            continue
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                for message in value.get("messages") or []:
                    text = (message.get("text") or {}).get("body", "")
                    moment = datetime.fromtimestamp(int(message.get("timestamp") or 0), UTC)
                    messages.append((str(message["id"]), str(message.get("from", "")), text, moment))
                for status in value.get("statuses") or []:
                    statuses.append((str(status["id"]), str(status.get("status", ""))))
    return messages, statuses


async def apply_loop() -> None:
    import psycopg
    import redis.asyncio as aioredis
    from channels_redis.pubsub import RedisPubSubChannelLayer

    prefix = os.environ.get("REFERENCE_PREFIX", "benchref")
    layer = RedisPubSubChannelLayer(hosts=[os.environ["REDIS_URL"]], prefix=prefix)
    wake = wake_key(prefix)
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    conn = await psycopg.AsyncConnection.connect(os.environ["REFERENCE_DSN"])
    while True:
        await client.blpop([wake], timeout=1)
        await client.delete(wake)
        while True:
            async with conn.transaction():
                cursor = await conn.execute(
                    f"SELECT id, body FROM {SCHEMA}.event WHERE applied_at IS NULL ORDER BY id LIMIT %s "
                    "FOR UPDATE SKIP LOCKED",
                    [BATCH],
                )
                rows = await cursor.fetchall()
                if not rows:
                    break
                messages, statuses = parse([row[1] for row in rows])
                inserted: list[tuple[Any, ...]] = []
                if messages:
                    columns = list(zip(*messages, strict=True))
                    cursor = await conn.execute(
                        f"INSERT INTO {SCHEMA}.message (wamid, wa_id, text, sent_at) "
                        "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[]) "
                        "ON CONFLICT (wamid) DO NOTHING RETURNING id, wamid",
                        [list(column) for column in columns],
                    )
                    inserted = await cursor.fetchall()
                if statuses:
                    await conn.execute(
                        f"UPDATE {SCHEMA}.message m SET status = s.status "
                        "FROM unnest(%s::text[], %s::text[]) AS s(wamid, status) WHERE m.wamid = s.wamid",
                        [[s[0] for s in statuses], [s[1] for s in statuses]],
                    )
                await conn.execute(
                    f"UPDATE {SCHEMA}.event SET applied_at = now() WHERE id = ANY(%s)",
                    [[row[0] for row in rows]],
                )
            for pk, wamid in inserted:
                frame = json.dumps({"type": "message.created", "id": pk, "wamid": wamid})
                await layer.group_send(GROUP, {"type": "bench.message", "frame": frame})


def main(argv: list[str]) -> int:
    if argv[:1] != ["applier"]:
        print("usage: python -m bench.reference applier", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(apply_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
