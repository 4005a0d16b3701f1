"""Websockets: agents connecting at once to /ws/inbox/ against a bare Channels consumer (bench/bare_ws.py), both
served the way production runs (gunicorn + 2 uvicorn workers, bench/servers.py) on the same Redis channel layer.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python manage.py migrate
    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m bench.bench_websockets [--quick]

Measured (the product and the reference in the same run, one after the other):
- connect: CLIENTS clients (one per agent, each with its own API token, last used 10 minutes ago) open their
  socket at once; the time until every one has completed the handshake and received the first frame (`ready`;
  the reference sends one too). As the first round freshly started workers serve (as after a deploy: nothing
  cached, every token due for its idle-expiry renewal; the median of FRESH_STARTS starts, new agents each time),
  and as the median of ROUNDS rounds interleaved with the reference's once the other phases have run.
- failed handshakes over every connect of the run.
- memory: RSS of the worker processes (/proc) with MEMORY_SOCKETS sockets open minus idle, per socket.
- reconnect: RECONNECTS sockets open, dropped at once (the TCP connection aborted, no close frame: a network
  loss or a restart of the proxy), then all reconnect at once; the product's clients send `resume` with the id
  of their `ready` on open, as the inbox page does, and wait for `pong` after it. Failures must be 0.

The clients are `websockets` in this process's event loop, connecting to 127.0.0.1 with the tenant's Host (and
Origin). Agents get a fast password hasher: their passwords are never used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.figures import Figure, at_most
from bench.servers import free_port, start_web, stop, wait_http

CONNECT_TIMEOUT = 60.0
FRAME_TIMEOUT = 60.0


@dataclass
class Sizes:
    clients: int  # connecting at once
    rounds: int
    memory_sockets: int
    reconnects: int
    fresh_starts: int  # servers started afresh this often for the first-round figure (each with new agents)
    settle_seconds: float


FULL = Sizes(clients=200, rounds=5, memory_sockets=1000, reconnects=1000, fresh_starts=3, settle_seconds=1.0)
QUICK = Sizes(clients=50, rounds=3, memory_sockets=100, reconnects=100, fresh_starts=1, settle_seconds=0.3)


@dataclass
class Target:
    """A server under test: where it listens and how a client of it connects."""

    name: str
    port: int
    host: str  # Host header (and Origin's host)
    path: str
    tokens: list[str]  # one per agent, for the connect rounds; empty: no Authorization header
    other_tokens: list[str]  # as many other agents, for the warm-up, memory and reconnect phases
    resumes: bool  # the product's clients resume after their `ready` id when they reconnect
    proc: Any = None
    failures: list[str] = field(default_factory=list)
    use_other_tokens: bool = False

    def headers(self, i: int) -> dict[str, str]:
        tokens = self.other_tokens if self.use_other_tokens else self.tokens
        return {"Authorization": f"Token {tokens[i % len(tokens)]}"} if tokens else {}


# ------------------------------------------------------------------ setting up the product's tenant


def create_agents(slug: str, agents: int) -> list[str]:
    """A tenant `slug` (schema migrated) with `agents` agents, and an API token for each."""
    from django.db.models import F
    from django.test.utils import override_settings
    from knox.models import AuthToken

    from helpdesk.tenancy.actions import do_add_member, do_create_tenant, do_issue_api_token

    tenant = do_create_tenant(slug, f"Websocket bench {slug}", f"{slug}.localhost")
    tokens = []
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for i in range(agents):
            membership = do_add_member(
                tenant, f"agent{i}@{slug}.bench", "agent", secrets.token_urlsafe(16), f"Agent {i}"
            )
            tokens.append(do_issue_api_token(membership.user)[0])
    # as if last used 10 minutes ago: a first handshake moves the idle expiry on, as a day's first use does
    AuthToken.objects.filter(user__memberships__tenant=tenant).update(
        expiry=F("expiry") - timedelta(minutes=10)
    )
    return tokens


# ------------------------------------------------------------------ clients


async def open_socket(target: Target, i: int, after: int | None = None) -> tuple[Any, dict[str, Any]]:
    """A connected client and the first frame it got; with `after`, it resumes after that id at once (before
    `ready`, as the inbox page does on a reconnect) and waits for the answer to a ping sent after it."""
    from websockets.asyncio.client import connect

    port = target.port
    ws = await connect(
        f"ws://{target.host}:{port}{target.path}",
        host="127.0.0.1",
        origin=f"http://{target.host}:{port}",  # type: ignore[arg-type]
        additional_headers=target.headers(i),
        open_timeout=CONNECT_TIMEOUT,
        ping_interval=None,
        compression=None,
    )
    try:
        if after is not None and target.resumes:
            await ws.send(json.dumps({"type": "resume", "after": after}))
        first = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT))
        if first.get("type") != "ready":
            raise RuntimeError(f"first frame {first!r}")
        if after is not None:
            await ws.send(json.dumps({"type": "ping"}))
            while (frame := json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT)))["type"] != "pong":
                if frame.get("type") == "error":
                    raise RuntimeError(f"resume refused: {frame!r}")
    except BaseException:
        ws.transport.abort()
        raise
    return ws, first


async def open_many(
    target: Target, count: int, start: int = 0, after: list[int] | None = None
) -> tuple[float, list[Any], list[int]]:
    """`count` clients at once: the seconds until the last has its first frame, the open sockets and their
    `ready` ids. Failures are recorded on the target."""

    async def one(i: int) -> tuple[Any, int] | None:
        try:
            ws, first = await open_socket(target, start + i, None if after is None else after[i])
        except Exception as error:  # a failed handshake, a refused or dropped socket, a timeout
            target.failures.append(f"{type(error).__name__}: {error}")
            return None
        return ws, int(first.get("last_event_id", 0))

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    opened = [r for r in results if r is not None]
    return elapsed, [ws for ws, _ in opened], [ready for _, ready in opened]


async def close_all(sockets: list[Any]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def drop_all(sockets: list[Any]) -> None:
    """The network goes away: TCP connections aborted, no close frame."""
    for ws in sockets:
        ws.transport.abort()


# ------------------------------------------------------------------ the servers


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == master:
            pids.append(int(entry.name))
    return pids


def rss_kib(master: int) -> int:
    """Resident memory of the server's worker processes, in KiB."""
    total = 0
    for pid in worker_pids(master):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


async def settle(sizes: Sizes, times: float = 1.0) -> None:
    """Lets the servers finish closing sockets (and the machine calm down) between phases."""
    await asyncio.sleep(sizes.settle_seconds * times)


@dataclass
class Measured:
    connect_seconds: list[float] = field(default_factory=list)
    fresh_connect_seconds: list[float] = field(default_factory=list)
    connects: int = 0
    memory_kib_per_socket: float = 0.0
    reconnect_seconds: float = 0.0
    reconnected: int = 0
    reconnect_failures: int = 0


async def memory_and_reconnect(target: Target, sizes: Sizes, m: Measured) -> None:
    """With the other agents' tokens: warm-up, memory per socket, then dropping and reconnecting them all."""
    target.use_other_tokens = True
    # warm-up: every worker has imported, connected to the database and subscribed to the layer
    _, warm, _ = await open_many(target, 20)
    m.connects += 20
    await close_all(warm)
    await settle(sizes)

    # memory: idle, then MEMORY_SOCKETS open (opened in waves of `clients`)
    idle = rss_kib(target.proc.pid)
    held: list[Any] = []
    readies: list[int] = []
    wanted = max(sizes.memory_sockets, sizes.reconnects)
    while len(held) < wanted:
        wave = min(sizes.clients, wanted - len(held))
        _, sockets, ready = await open_many(target, wave, start=len(held))
        m.connects += wave
        held += sockets
        readies += ready
        if len(held) == sizes.memory_sockets:
            await settle(sizes)
            m.memory_kib_per_socket = (rss_kib(target.proc.pid) - idle) / len(held)
        if len(sockets) < wave:
            break

    # reconnect: RECONNECTS open, dropped at once, reconnecting at once
    drop_all(held)
    failures_before = len(target.failures)
    m.reconnect_seconds, again, _ = await open_many(target, len(held), after=readies)
    m.reconnected = len(again)
    m.reconnect_failures = len(target.failures) - failures_before + (sizes.reconnects - len(held))
    await close_all(again)
    await settle(sizes, 2)
    target.use_other_tokens = False


async def connect_round(target: Target, sizes: Sizes, m: Measured) -> float:
    elapsed, sockets, _ = await open_many(target, sizes.clients)
    m.connects += sizes.clients
    await close_all(sockets)
    await settle(sizes)
    return elapsed


async def measure(
    product: Target, reference: Target, sizes: Sizes, p: Measured, r: Measured
) -> tuple[Measured, Measured]:
    await memory_and_reconnect(reference, sizes, r)
    await memory_and_reconnect(product, sizes, p)
    # then ROUNDS rounds each, interleaved (the order alternating), so that the machine's load hits both alike
    for i in range(sizes.rounds):
        for target, m in [(reference, r), (product, p)][:: 1 if i % 2 else -1]:
            m.connect_seconds.append(await connect_round(target, sizes, m))
    return p, r


def figures(product: Measured, reference: Measured, sizes: Sizes, failures: list[str]) -> list[Figure]:
    p_connect = statistics.median(product.connect_seconds)
    r_connect = statistics.median(reference.connect_seconds)

    def seconds(values: list[float]) -> str:
        return ", ".join(f"{value:.3f}" for value in values)

    rounds = (
        f"median of {sizes.rounds} rounds interleaved with the reference's, after the other phases"
        f" (product {seconds(product.connect_seconds)} s; reference {seconds(reference.connect_seconds)} s)"
    )
    sample = f"; first: {failures[0]}" if failures else ""
    return [
        Figure(
            "websockets",
            f"{sizes.clients} agents connecting at once: until every handshake and first frame",
            p_connect,
            r_connect,
            "s",
            "≤ 3x reference",
            at_most(p_connect, r_connect, 3.0),
            rounds,
        ),
        Figure(
            "websockets",
            f"{sizes.clients} agents connecting at once to freshly started workers (as after a deploy)",
            statistics.median(product.fresh_connect_seconds),
            statistics.median(reference.fresh_connect_seconds),
            "s",
            "≤ 3x reference",
            at_most(
                statistics.median(product.fresh_connect_seconds),
                statistics.median(reference.fresh_connect_seconds),
                3.0,
            ),
            f"median of {sizes.fresh_starts} starts, each the first round the workers serve, other agents each"
            " time, every token due for its idle-expiry renewal (product"
            f" {seconds(product.fresh_connect_seconds)} s; reference {seconds(reference.fresh_connect_seconds)} s)",
        ),
        Figure(
            "websockets",
            "failed handshakes (every connect of the run)",
            float(len(failures)),
            None,
            "handshakes",
            "= 0",
            not failures,
            f"out of {product.connects} connects{sample}",
        ),
        Figure(
            "websockets",
            f"memory per open socket ({sizes.memory_sockets} open minus idle, RSS of the 2 workers)",
            product.memory_kib_per_socket,
            reference.memory_kib_per_socket,
            "KiB",
            "≤ 1.5x reference",
            at_most(product.memory_kib_per_socket, reference.memory_kib_per_socket, 1.5),
        ),
        Figure(
            "websockets",
            f"{sizes.reconnects} clients reconnecting at once (dropped, reconnect, resume): failures",
            float(product.reconnect_failures),
            float(reference.reconnect_failures),
            "failures",
            "= 0",
            product.reconnect_failures == 0,
            f"{product.reconnected} reconnected",
        ),
        Figure(
            "websockets",
            f"{sizes.reconnects} clients reconnecting at once: until every one is back (and resumed)",
            product.reconnect_seconds,
            reference.reconnect_seconds,
            "s",
            "",
            None,
        ),
    ]


def start(product: Target, reference: Target, env: dict[str, str]) -> None:
    product.port, reference.port = free_port(), free_port()
    product.proc = start_web(product.port, env, workers=2)
    reference.proc = start_web(reference.port, env, workers=2, app="bench.bare_ws:application")
    wait_http(product.port, host=product.host)
    wait_http(reference.port, host=reference.host)


def run(quick: bool) -> list[Figure]:
    """The websocket figures; Django is set up on a migrated database (DATABASE_URL, REDIS_URL, SECRET_KEY in
    os.environ for the servers)."""
    sizes = QUICK if quick else FULL
    slug = f"wsbench{secrets.token_hex(4)}"  # no "_": not valid in a host name
    n = sizes.clients
    tokens = create_agents(slug, (2 + sizes.fresh_starts) * n)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "helpdesk.settings"}
    host = f"{slug}.localhost"
    product = Target("product", 0, host, "/ws/inbox/", [], [], resumes=True)
    reference = Target("reference", 0, host, "/ws/bare/", [], [], resumes=False)
    measured_product, measured_reference = Measured(), Measured()

    # the first round freshly started workers serve (as after a deploy), each time with agents new to them; the
    # last start's servers go on with the other phases
    for i in range(sizes.fresh_starts):
        product.tokens = tokens[(2 + i) * n : (3 + i) * n]
        last = i == sizes.fresh_starts - 1
        try:
            start(product, reference, env)
            for target, m in ((reference, measured_reference), (product, measured_product)):
                m.fresh_connect_seconds.append(asyncio.run(connect_round(target, sizes, m)))
            if last:
                product.tokens, product.other_tokens = tokens[:n], tokens[n : 2 * n]
                measured_product, measured_reference = asyncio.run(
                    measure(product, reference, sizes, measured_product, measured_reference)
                )
        finally:
            stop(product.proc, reference.proc)
    if reference.failures:
        print(f"the reference failed {len(reference.failures)}: {reference.failures[:3]}", file=sys.stderr)
    return figures(measured_product, measured_reference, sizes, product.failures)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK.clients} clients instead of {FULL.clients}"
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_hex(24))  # shared with the servers
    import django

    django.setup()
    for figure in run(args.quick):
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else "-"
        reference = f"{figure.reference:.3f}" if figure.reference is not None else "-"
        verdict = {True: "met", False: "NOT MET", None: ""}[figure.met]
        print(
            f"{figure.measure}: product {figure.product:.3f} {figure.unit}, reference {reference}, {ratio}"
            f" (target {figure.target or '-'}) {verdict}{' - ' + figure.note if figure.note else ''}"
        )


if __name__ == "__main__":
    main()
