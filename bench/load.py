"""The load generator: a separate process that sends signed webhooks and watches an agent's websocket.

    python -m bench.load CONFIG.json RESULT.json

CONFIG (written by bench/bench_ingest.py):
    port, host (Host header), path, secret, phone_number_id, waba_id, display_number
    mode: "open" (a fixed schedule: request i is due at start + i / post rate, whatever the answers; latency
          counts from the due time, so a slow server cannot slow the load down and hide its own delay) or
          "closed" (`concurrency` senders, each sending its next request when the last one was answered:
          saturation)
    segments: [{"rate": items/s, "duration": s}, ...] (open) | duration (closed), batch: items per POST
    mix: {"new": share of customer messages from new customers, "status": share of items that are status
          updates, "returning": size of the returning customers' pool}
    tag (unique per run: wamids and new customers), seed, timeout (per request), max_connections,
    redeliver (send what was not answered 200 again after the phase, as Meta does), drain_timeout, quiet,
    ws: {"port", "uri", "origin", "headers", "kind": "product" | "reference"} or null

RESULT: {"requests": [[due, sent, done, status, retry_after, items, [inbound wamids], redelivery], ...],
         "frames": {wamid: [arrival, ...]}, "start", "send_end", "end", "ws_ready", "ws_error"}
Times are `time.time()` seconds. Status 0: timed out; -1: connection failed. A customer message counts as
pushed when a frame carrying its wamid arrives on the websocket (product: `message.created`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

# Kept-alive connections idle longer than this are not reused: gunicorn's uvicorn worker closes them after
# gunicorn's `keepalive` (2 s by default), and a request written to a closing connection is lost.
IDLE_SECONDS = 1.0
Request = list[Any]  # [due, sent, done, status, retry_after, items, wamids, redelivery]


# ------------------------------------------------------------------ payloads


@dataclass
class Mix:
    """Realistic webhook items: customer texts (new and returning customers) and statuses for our earlier
    messages (sent, delivered, read in turn; the product does not know those wamids: they wait as pending)."""

    config: dict[str, Any]
    rng: random.Random = field(init=False)
    counter: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.get("seed", 1))
        mix = self.config.get("mix", {})
        self.new_share = float(mix.get("new", 0.3))
        self.status_share = float(mix.get("status", 0.25))
        self.pool = int(mix.get("returning", 200))
        self.tag = str(self.config["tag"])

    def returning(self, index: int) -> str:
        return f"6281{index:09d}"

    def _metadata(self) -> dict[str, str]:
        return {
            "display_phone_number": self.config["display_number"],
            "phone_number_id": self.config["phone_number_id"],
        }

    def item(self, forced_customer: int | None = None) -> tuple[dict[str, Any], str | None]:
        """One change value and the wamid of the customer message in it (None for a status)."""
        self.counter += 1
        n = self.counter
        now = int(time.time())
        if forced_customer is None and self.rng.random() < self.status_share:
            out = self.rng.randrange(max(1, n // 3 + 1))
            status = ("sent", "delivered", "read")[n % 3]
            return {
                "messaging_product": "whatsapp",
                "metadata": self._metadata(),
                "statuses": [
                    {
                        "id": f"wamid.OUT.{self.tag}.{out}",
                        "status": status,
                        "timestamp": str(now),
                        "recipient_id": self.returning(out % self.pool),
                        "pricing": {
                            "billable": False,
                            "pricing_model": "PMP",
                            "type": "free_customer_service",
                            "category": "service",
                        },
                    }
                ],
            }, None
        if forced_customer is not None:
            wa_id = self.returning(forced_customer)
        elif self.rng.random() < self.new_share:
            wa_id = f"6289{self.tag[-4:].rjust(4, '0')}{n:07d}"
        else:
            wa_id = self.returning(self.rng.randrange(self.pool))
        wamid = f"wamid.BENCH.{self.tag}.{n}"
        text = self.rng.choice(
            [
                "Hi, my order has not arrived yet.",
                "Can I change the delivery address?",
                "Thanks!",
                "Is the shop open on Sunday?",
                "I was charged twice for order #4521, please check.",
            ]
        )
        return {
            "messaging_product": "whatsapp",
            "metadata": self._metadata(),
            "contacts": [{"profile": {"name": f"Customer {wa_id[-5:]}"}, "wa_id": wa_id}],
            "messages": [
                {"from": wa_id, "id": wamid, "timestamp": str(now), "type": "text", "text": {"body": text}}
            ],
        }, wamid

    def body(self, items: int, forced: list[int] | None = None) -> tuple[bytes, list[str]]:
        """A POST body with `items` changes in one entry (Meta batches several in one request)."""
        changes = []
        wamids = []
        for i in range(items):
            value, wamid = self.item(forced[i] if forced else None)
            changes.append({"value": value, "field": "messages"})
            if wamid:
                wamids.append(wamid)
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"id": self.config["waba_id"], "changes": changes}],
        }
        return json.dumps(payload, separators=(",", ":")).encode(), wamids


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ------------------------------------------------------------------ HTTP/1.1 over asyncio streams


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = 0  # requests answered on it
        self.idle_since = time.monotonic()

    async def exchange(self, request: bytes) -> tuple[int, dict[str, str], bool]:
        """(status, headers, keep-alive) of one request."""
        self.writer.write(request)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed by the server")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                await self.reader.readexactly(size + 2)  # the chunk and its CRLF
                if size == 0:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            if length:
                await self.reader.readexactly(length)
        keep = headers.get("connection", "").lower() != "close"
        return status, headers, keep

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Pool:
    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.limit = limit
        self.idle: list[Connection] = []
        self.opened = 0
        self.free = asyncio.Condition()

    async def acquire(self, fresh: bool = False) -> Connection:
        async with self.free:
            while not self.idle and self.opened >= self.limit:
                await self.free.wait()
            while self.idle:
                conn = self.idle.pop()
                if not fresh and time.monotonic() - conn.idle_since < IDLE_SECONDS:
                    return conn
                conn.close()  # stale (the server may be closing it), or room for a fresh one
                self.opened -= 1
                if fresh:
                    break
            self.opened += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except BaseException:
            await self.release(None)
            raise
        return Connection(reader, writer)

    async def release(self, conn: Connection | None) -> None:
        async with self.free:
            if conn is None:
                self.opened -= 1
            else:
                conn.idle_since = time.monotonic()
                self.idle.append(conn)
            self.free.notify()


class Sender:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.pool = Pool(int(config["port"]), int(config.get("max_connections", 256)))
        self.timeout = float(config.get("timeout", 10.0))
        self.head = (
            f"POST {config['path']} HTTP/1.1\r\nHost: {config['host']}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.requests: list[Request] = []

    def wire(self, body: bytes) -> bytes:
        signature = sign(self.config["secret"], body)
        return (
            self.head
            + f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    async def send(
        self, due: float, body: bytes, items: int, wamids: list[str], redelivery: bool = False
    ) -> Request:
        record: Request = [due, 0.0, 0.0, -1, None, items, wamids, redelivery]
        self.requests.append(record)
        request = self.wire(body)
        record.append(body)  # kept for a redelivery; dropped from the result
        conn: Connection | None = None
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self.pool.acquire()
                record[1] = time.time()
                try:
                    status, headers, keep = await conn.exchange(request)
                except (ConnectionError, OSError, asyncio.IncompleteReadError):
                    if not conn.used:
                        raise
                    # A kept-alive connection the server had closed before reading this request (as every
                    # HTTP client does, send it again on a new one).
                    conn.close()
                    await self.pool.release(None)
                    conn = None
                    conn = await self.pool.acquire(fresh=True)
                    status, headers, keep = await conn.exchange(request)
                conn.used += 1
            record[3] = status
            record[4] = headers.get("retry-after")
            if keep:
                await self.pool.release(conn)
                conn = None
        except TimeoutError:
            record[3] = 0
        except Exception as error:
            record[3] = -1
            record[4] = f"{type(error).__name__}: {error}"[:200]  # what failed, in place of Retry-After
        finally:
            record[2] = time.time()
            if record[1] == 0.0:
                record[1] = record[2]
            if conn is not None:  # closed by the server, timed out or broken: its slot is free again
                conn.close()
                await self.pool.release(None)
        return record


# ------------------------------------------------------------------ websocket


class Watcher:
    """The agent's websocket: the arrival time of every customer message's frame, by wamid."""

    def __init__(self, config: dict[str, Any] | None) -> None:
        self.config = config
        self.frames: dict[str, list[float]] = {}
        self.ready = asyncio.Event()
        self.error = ""
        self.last_frame = 0.0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        assert self.config is not None
        product = self.config.get("kind") == "product"
        try:
            async with connect(
                self.config["uri"],
                origin=self.config.get("origin"),  # type: ignore[arg-type]
                additional_headers=self.config.get("headers") or {},
                host="127.0.0.1",
                port=int(self.config["port"]),
                max_size=None,
                max_queue=None,
                ping_interval=None,
                open_timeout=30,
            ) as socket:
                async for text in socket:
                    arrived = time.time()
                    if isinstance(text, bytes):
                        continue
                    if not self.ready.is_set():
                        self.ready.set()
                    if '"message.created"' not in text:
                        continue
                    frame = json.loads(text)
                    if product:
                        message = frame.get("message") or {}
                        if message.get("direction") != "in":
                            continue
                        wamid = message.get("wamid")
                    else:
                        wamid = frame.get("wamid")
                    if wamid:
                        self.frames.setdefault(wamid, []).append(arrived)
                        self.last_frame = arrived
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.error = f"{type(error).__name__}: {error}"
            self.ready.set()

    async def start(self) -> None:
        if self.config is None:
            self.ready.set()
            return
        self.task = asyncio.create_task(self.run())
        await asyncio.wait_for(self.ready.wait(), 30)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


# ------------------------------------------------------------------ phases


async def open_loop(sender: Sender, mix: Mix, segments: list[dict[str, float]], batch: int) -> None:
    tasks: set[asyncio.Task[Request]] = set()
    start = time.time()
    due = start
    for segment in segments:
        post_rate = float(segment["rate"]) / batch
        count = round(float(segment["duration"]) * post_rate)
        for i in range(count):
            moment = due + i / post_rate
            delay = moment - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body, wamids = mix.body(batch)
            task = asyncio.create_task(sender.send(moment, body, batch, wamids))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        due += float(segment["duration"])
    if tasks:
        await asyncio.wait(set(tasks))


async def closed_loop(
    sender: Sender, mix: Mix, concurrency: int, duration: float, batch: int, max_items: int
) -> None:
    """Saturation: `concurrency` senders back to back, until `duration` s passed or `max_items` were sent."""
    end = time.time() + duration
    budget = [max_items // batch]

    async def one() -> None:
        while time.time() < end and budget[0] > 0:
            budget[0] -= 1
            body, wamids = mix.body(batch)
            await sender.send(time.time(), body, batch, wamids)

    await asyncio.gather(*(one() for _ in range(concurrency)))


async def warm(sender: Sender, mix: Mix, concurrency: int) -> None:
    """One message from every returning customer (they exist before the measured phases)."""
    queue = list(range(mix.pool))

    async def one() -> None:
        while queue:
            customer = queue.pop()
            body, wamids = mix.body(1, [customer])
            await sender.send(time.time(), body, 1, wamids)

    await asyncio.gather(*(one() for _ in range(concurrency)))


async def redeliver(sender: Sender, config: dict[str, Any]) -> None:
    """What was not answered 200 is sent again (once), as Meta does, after the Retry-After asked for (capped at
    `redeliver_wait` s: the benchmark compresses Meta's backoff)."""
    failed = [r for r in list(sender.requests) if r[3] != 200 and not r[7]]
    if not failed:
        return
    hints = [float(r[4]) for r in failed if r[4] and str(r[4]).isdigit()]
    await asyncio.sleep(min(max(hints, default=1.0), float(config.get("redeliver_wait", 2.0))))
    queue = list(failed)

    async def one() -> None:
        while queue:
            r = queue.pop(0)
            await sender.send(time.time(), r[8], r[5], r[6], redelivery=True)

    await asyncio.gather(*(one() for _ in range(int(config.get("concurrency", 16)))))


async def main_async(config: dict[str, Any]) -> dict[str, Any]:
    sender = Sender(config)
    mix = Mix(config)
    watcher = Watcher(config.get("ws"))
    await watcher.start()
    started = time.time()
    batch = int(config.get("batch", 1))
    if config["mode"] == "open":
        await open_loop(sender, mix, config["segments"], batch)
    elif config["mode"] == "closed":
        await closed_loop(
            sender,
            mix,
            int(config.get("concurrency", 16)),
            float(config["duration"]),
            batch,
            int(config.get("max_items", 10**9)),
        )
    elif config["mode"] == "warm":
        await warm(sender, mix, int(config.get("concurrency", 16)))
    send_end = time.time()
    if config.get("redeliver"):
        await redeliver(sender, config)
    # Drain: until every acknowledged customer message was pushed, or nothing arrived for `quiet` seconds.
    if watcher.task is not None:
        acked = {w for r in sender.requests if r[3] == 200 for w in r[6]}
        deadline = time.time() + float(config.get("drain_timeout", 60))
        quiet = float(config.get("quiet", 5))
        while time.time() < deadline and not watcher.error:
            if acked <= watcher.frames.keys():
                break
            if time.time() - max(watcher.last_frame, send_end) > quiet:
                break
            await asyncio.sleep(0.05)
    end = time.time()
    await watcher.stop()
    return {
        "requests": [r[:8] for r in sender.requests],
        "frames": watcher.frames,
        "start": started,
        "send_end": send_end,
        "end": end,
        "ws_error": watcher.error,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as handle:
        config = json.load(handle)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(main_async(config))
    with open(argv[1], "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
