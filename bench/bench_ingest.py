"""Ingest, end to end: signed webhooks in, stored, applied, pushed to a connected agent's websocket; the product
against the minimal reference (bench/reference.py), both served the same way, load from bench/load.py.

Phases, on the product first and then on the reference (fresh servers each, same load):
  warm       one message from each returning customer (not measured)
  single     saturation, one item per POST: `max_items` items from 32 senders back to back; the end-to-end
             rate is items acknowledged / (last customer message pushed - first request sent)
  batched    saturation with Meta's batching (10 items per POST, 8 senders): the same rate; the backlog when
             the last request was answered (customer messages not yet pushed, scaled to items) and the time to
             push it all: after a burst the backlog drains at this rate
  latency    open loop at half the product's single-POST end-to-end rate (the same rate for the reference):
             push latency = frame arrival - the request's due time, p50 and p99
  overload   open loop at twice that rate, then half of it (recovery); requests not answered 200 are
             redelivered once after the phase (Meta does); 5xx and timeouts counted; ack latency recovery

Loss and duplicates: every customer message acknowledged with 200 in any phase must be stored exactly once
(rows counted by wamid) and pushed exactly once (frames counted by wamid). The items are a mix: customer texts
(30% from new customers, the rest from a pool of returning ones) and 25% status updates for our earlier
messages (unknown wamids: the product keeps them pending). Measured only through HTTP, the websocket and row
counts, so the harness keeps working when the apply path changes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import servers
from bench.figures import Figure, at_least, at_most
from bench.stats import percentile, rate, recovery_seconds

ROOT = Path(__file__).resolve().parent.parent
TMP = ROOT / "var" / "bench" / "ingest"
AGENT_PASSWORD = "bench-agent-pass-8261"


@dataclass(frozen=True)
class Plan:
    quick: bool
    returning: int
    single_items: int
    batched_items: int
    batch: int
    latency_seconds: float
    overload_seconds: float
    recovery_seconds: float
    drain_timeout: float
    workers: int = 2

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, 60, 200, 400, 10, 4, 3, 5, 60)
        return cls(False, 300, 2000, 4000, 10, 20, 10, 20, 300)


class Stack(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def load_config(self) -> dict[str, Any]: ...
    def stored(self, wamids: list[str]) -> dict[str, int]: ...


def _post_json(port: int, host: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(payload).encode(),
        headers={"Host": host, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


class ProductStack:
    """The product as production runs it; its own tenant, number and agent in the scratch database."""

    name = "product"

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        stamp = f"{int(time.time()) % 10**6:06d}"
        self.slug = f"bench_ingest_{stamp}"
        self.domain = f"bench-ingest-{stamp}.localhost"
        self.pnid = f"31{stamp}0000001"
        self.waba = f"31{stamp}0000002"
        self.display = f"62813{stamp}01"
        self.secret = secrets.token_hex(16)
        self.email = f"agent@bench-ingest-{stamp}.example.com"
        self.port = servers.free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.token = ""

    def setup(self) -> None:
        from django.core.management import call_command

        call_command("create_tenant_account", self.slug, name="Ingest benchmark", domain=self.domain)
        call_command(
            "add_whatsapp_number",
            self.slug,
            phone_number_id=self.pnid,
            waba_id=self.waba,
            display_number=self.display,
            access_token="x",
            app_secret=self.secret,
            verify_token=secrets.token_hex(8),
        )
        call_command(
            "create_tenant_user", self.slug, self.email, role="agent", password=AGENT_PASSWORD, name="Agent"
        )

    def start(self) -> None:
        env = dict(os.environ)
        TMP.mkdir(parents=True, exist_ok=True)
        self.procs = [
            servers.start_web(self.port, env, workers=self.plan.workers),
            servers.start_worker(env),
            servers.start_beat(env, TMP / f"celerybeat-{self.slug}"),
        ]
        try:
            servers.wait_http(self.port)
            self.token = _post_json(
                self.port,
                self.domain,
                "/api/v1/auth/token/",
                {"email": self.email, "password": AGENT_PASSWORD},
            )["token"]
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        servers.stop(*self.procs)

    def load_config(self) -> dict[str, Any]:
        host = f"{self.domain}:{self.port}"
        return {
            "port": self.port,
            "host": "localhost",
            "path": "/webhooks/whatsapp/",
            "secret": self.secret,
            "phone_number_id": self.pnid,
            "waba_id": self.waba,
            "display_number": self.display,
            "ws": {
                "kind": "product",
                "port": self.port,
                "uri": f"ws://{host}/ws/inbox/",
                "origin": f"http://{host}",
                "headers": {"Authorization": f"Token {self.token}"},
            },
        }

    def stored(self, wamids: list[str]) -> dict[str, int]:
        from django.db import connection
        from django_tenants.utils import schema_context

        from conversations.models import Message

        with schema_context(self.slug), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT wamid, count(*) FROM {Message._meta.db_table} WHERE wamid = ANY(%s) GROUP BY wamid",
                [wamids],
            )
            return {wamid: int(count) for wamid, count in cursor.fetchall()}


class ReferenceStack:
    """bench/reference.py served the same way: gunicorn + uvicorn workers, and its applier process."""

    name = "reference"

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.secret = secrets.token_hex(16)
        self.port = servers.free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.dsn = os.environ["DATABASE_URL"]
        self.prefix = f"benchref{secrets.token_hex(3)}"

    def setup(self) -> None:
        from bench import reference

        reference.create_schema(self.dsn)

    def start(self) -> None:
        env = dict(
            os.environ, REFERENCE_DSN=self.dsn, REFERENCE_APP_SECRET=self.secret, REFERENCE_PREFIX=self.prefix
        )
        self.procs = [
            servers.start_web(self.port, env, workers=self.plan.workers, app="bench.reference:application"),
            servers.start_reference_applier(env),
        ]
        try:
            servers.wait_http(self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        servers.stop(*self.procs)

    def load_config(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "host": "localhost",
            "path": "/webhook",
            "secret": self.secret,
            "phone_number_id": "200000000000001",
            "waba_id": "200000000000002",
            "display_number": "6281300000001",
            "ws": {"kind": "reference", "port": self.port, "uri": f"ws://localhost:{self.port}/ws/"},
        }

    def stored(self, wamids: list[str]) -> dict[str, int]:
        import psycopg

        from bench.reference import SCHEMA

        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                f"SELECT wamid, count(*) FROM {SCHEMA}.message WHERE wamid = ANY(%s) GROUP BY wamid",  # type: ignore[arg-type]
                [wamids],
            ).fetchall()
        return {wamid: int(count) for wamid, count in rows}


# ------------------------------------------------------------------ one phase


@dataclass
class Phase:
    """What one load run saw."""

    name: str
    requests: list[list[Any]]
    frames: dict[str, list[float]]
    start: float
    send_end: float
    end: float
    ws_error: str

    @property
    def acked(self) -> list[list[Any]]:
        return [r for r in self.requests if r[3] == 200]

    @property
    def acked_items(self) -> int:
        return sum(r[5] for r in self.acked)

    @property
    def acked_wamids(self) -> list[str]:
        return [w for r in self.acked for w in r[6]]

    @property
    def pushed(self) -> list[str]:
        return [w for w in self.acked_wamids if w in self.frames]

    @property
    def last_push(self) -> float:
        return max((self.frames[w][0] for w in self.pushed), default=self.send_end)

    def e2e_rate(self) -> float:
        """Items acknowledged per second, from the first request to the last customer message pushed."""
        return rate(self.acked_items, self.last_push - self.start)

    def ack_rate(self) -> float:
        return rate(self.acked_items, self.send_end - self.start)

    def due_of(self) -> dict[str, float]:
        due: dict[str, float] = {}
        for r in self.requests:
            if r[3] == 200:
                for w in r[6]:
                    due.setdefault(w, r[0])
        return due

    def push_latencies(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float]]:
        """(due time, ms from due to first frame) of every pushed customer message due in [since, until)."""
        due = self.due_of()
        return [(due[w], (self.frames[w][0] - due[w]) * 1000) for w in self.pushed if since <= due[w] < until]

    def ack_latencies(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float]]:
        return [(r[0], (r[2] - r[0]) * 1000) for r in self.requests if not r[7] and since <= r[0] < until]

    def backlog_at_send_end(self) -> float:
        """Items acknowledged but not applied when the last request was answered: the customer messages not
        yet pushed then, scaled by the phase's items per customer message."""
        wamids = self.acked_wamids
        if not wamids:
            return 0.0
        waiting = sum(1 for w in wamids if w not in self.frames or self.frames[w][0] > self.send_end)
        return waiting * self.acked_items / len(wamids)

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.requests:
            status = r[3]
            if status == 503 and r[4]:
                key = "503+Retry-After"
            elif status == 0:
                key = "timeout"
            elif status == -1:
                key = f"failed ({str(r[4] or '').split(':')[0]})"
            else:
                key = str(status)
            counts[key] = counts.get(key, 0) + 1
        return counts


def run_load(stack: Stack, phase: str, plan: Plan, **config: Any) -> Phase:
    TMP.mkdir(parents=True, exist_ok=True)
    tag = f"{stack.name[0]}{phase[:3]}{secrets.token_hex(3)}"
    full = {
        **stack.load_config(),
        "tag": tag,
        "seed": hash(tag) % 1000,
        "mix": {"new": 0.3, "status": 0.25, "returning": plan.returning},
        "timeout": 10,
        "max_connections": 256,
        "drain_timeout": plan.drain_timeout,
        "quiet": 8,
        **config,
    }
    config_path = TMP / f"{tag}.json"
    result_path = TMP / f"{tag}-result.json"
    config_path.write_text(json.dumps(full))
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "bench.load", str(config_path), str(result_path)],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    result = json.loads(result_path.read_text())
    config_path.unlink(missing_ok=True)
    result_path.unlink(missing_ok=True)
    out = Phase(
        phase,
        result["requests"],
        result["frames"],
        result["start"],
        result["send_end"],
        result["end"],
        result["ws_error"],
    )
    print(
        f"   {stack.name} {phase}: {len(out.requests)} requests {out.statuses()}, {out.acked_items} items, "
        f"{len(out.pushed)}/{len(out.acked_wamids)} pushed, e2e {out.e2e_rate():.0f}/s, "
        f"ack {out.ack_rate():.0f}/s ({time.monotonic() - started:.0f} s)"
        + (f" ws error: {out.ws_error}" if out.ws_error else ""),
        flush=True,
    )
    return out


@dataclass
class Measured:
    single: Phase
    batched: Phase
    latency: Phase
    overload: Phase
    overload_end: float
    sustainable: float
    lost: int = 0
    duplicated: int = 0
    unpushed: int = 0
    pushed_twice: int = 0
    overload_lost: int = 0
    overload_duplicated: int = 0
    phases: list[Phase] = field(default_factory=list)


def measure(stack: Stack, plan: Plan, sustainable: float | None) -> Measured:
    """Every phase on one stack. `sustainable`: the product's single-POST rate (None: measure it here)."""
    stack.start()
    try:
        warm = run_load(stack, "warm", plan, mode="warm", concurrency=16)
        single = run_load(
            stack, "single", plan, mode="closed", concurrency=32, duration=60, max_items=plan.single_items
        )
        batched = run_load(
            stack,
            "batched",
            plan,
            mode="closed",
            concurrency=8,
            duration=60,
            batch=plan.batch,
            max_items=plan.batched_items,
        )
        rate_ = sustainable if sustainable is not None else max(20.0, single.e2e_rate())
        latency = run_load(
            stack,
            "latency",
            plan,
            mode="open",
            segments=[{"rate": rate_ / 2, "duration": plan.latency_seconds}],
        )
        overload = run_load(
            stack,
            "overload",
            plan,
            mode="open",
            segments=[
                {"rate": rate_ * 2, "duration": plan.overload_seconds},
                {"rate": rate_ / 2, "duration": plan.recovery_seconds},
            ],
            redeliver=True,
            redeliver_wait=2,
        )
        overload_end = overload.start + plan.overload_seconds
        measured = Measured(single, batched, latency, overload, overload_end, rate_)
        measured.phases = [warm, single, batched, latency, overload]
        time.sleep(1)
        _check_loss(stack, measured)
        return measured
    finally:
        stack.stop()


def _check_loss(stack: Stack, measured: Measured) -> None:
    """Every acknowledged customer message stored once and pushed once (all phases)."""
    for phase in measured.phases:
        acked = sorted(set(phase.acked_wamids))
        rows = stack.stored(acked) if acked else {}
        lost = sum(1 for w in acked if w not in rows)
        duplicated = sum(1 for w in acked if rows.get(w, 0) > 1)
        measured.lost += lost
        measured.duplicated += duplicated
        measured.unpushed += sum(1 for w in acked if w not in phase.frames)
        measured.pushed_twice += sum(1 for w in acked if len(phase.frames.get(w, [])) > 1)
        if phase is measured.overload:
            measured.overload_lost, measured.overload_duplicated = lost, duplicated


# ------------------------------------------------------------------ figures


def _p(values: list[tuple[float, float]], q: float) -> float | None:
    return percentile([v for _, v in values], q)


def figures(product: Measured, reference: Measured, plan: Plan) -> list[Figure]:
    p, r = product, reference
    out: list[Figure] = []
    sat = "saturation: {n:,} items ({b}), first request to last customer message pushed on the agent's websocket"
    out.append(
        Figure(
            "ingest",
            "end to end, one item per POST",
            p.single.e2e_rate(),
            r.single.e2e_rate(),
            "msg/s",
            "≥ 0.7x reference",
            at_least(p.single.e2e_rate(), r.single.e2e_rate(), 0.7),
            sat.format(n=plan.single_items, b="32 senders back to back")
            + "; items are customer texts and statuses",
        )
    )
    out.append(
        Figure(
            "ingest",
            f"end to end, batched ({plan.batch} items per POST)",
            p.batched.e2e_rate(),
            r.batched.e2e_rate(),
            "msg/s",
            "≥ 1,000 msg/s",
            p.batched.e2e_rate() >= 1000,
            sat.format(n=plan.batched_items, b="8 senders back to back"),
        )
    )
    out.append(
        Figure(
            "ingest",
            "acknowledged (HTTP 200), one item per POST",
            p.single.ack_rate(),
            r.single.ack_rate(),
            "msg/s",
            "",
            None,
            "the single phase's items / time until its last answer (the request path alone)",
        )
    )
    out.append(
        Figure(
            "ingest",
            "acknowledged, batched",
            p.batched.ack_rate(),
            r.batched.ack_rate(),
            "msg/s",
            "",
            None,
            "",
        )
    )
    out.append(
        Figure(
            "ingest",
            "acknowledged customer messages lost (not stored)",
            p.lost,
            r.lost,
            "",
            "0",
            p.lost == 0,
            "every phase: wamids answered 200 without a row after draining",
        )
    )
    out.append(
        Figure(
            "ingest",
            "duplicates (a wamid stored or pushed twice)",
            p.duplicated + p.pushed_twice,
            r.duplicated + r.pushed_twice,
            "",
            "0",
            p.duplicated + p.pushed_twice == 0,
            "every phase, redeliveries included",
        )
    )
    out.append(
        Figure(
            "ingest",
            "acknowledged customer messages never pushed",
            p.unpushed,
            r.unpushed,
            "",
            "0",
            p.unpushed == 0,
            f"no frame on the agent's websocket within the drain wait (up to {plan.drain_timeout:.0f} s)",
        )
    )
    # (c) the burst: the batched phase
    pb, rb = p.batched, r.batched
    p_drain, r_drain = pb.last_push - pb.send_end, rb.last_push - rb.send_end
    p_backlog, r_backlog = pb.backlog_at_send_end(), rb.backlog_at_send_end()
    p_rate, r_rate = rate(round(p_backlog), p_drain), rate(round(r_backlog), r_drain)
    out += [
        Figure(
            "ingest: backlog after a burst",
            "backlog when the burst's last request was answered",
            p_backlog,
            r_backlog,
            "msg",
            "",
            None,
            "the batched phase: customer messages acknowledged but not yet pushed, scaled to items",
        ),
        Figure("ingest: backlog after a burst", "time to drain it", p_drain, r_drain, "s", "", None, ""),
        Figure(
            "ingest: backlog after a burst",
            "drain rate",
            p_rate,
            r_rate,
            "msg/s",
            "≥ 1,000 msg/s",
            p_rate >= 1000 if p_backlog >= 1 else None,
            "backlog / time to drain it (no figure when nothing was left to drain)",
        ),
    ]
    # (d) push latency at half the product's sustainable rate, the same offered load on both
    p_lat, r_lat = p.latency.push_latencies(), r.latency.push_latencies()
    p50p, p99p, p50r, p99r = _p(p_lat, 50), _p(p_lat, 99), _p(r_lat, 50), _p(r_lat, 99)
    how = (
        f"open loop at {p.sustainable / 2:.0f} msg/s (half the product's single-POST rate) for "
        f"{plan.latency_seconds:.0f} s, both; webhook due time to the frame on the agent's websocket"
    )
    out += [
        Figure("ingest: push latency", "p50", p50p or 0.0, p50r, "ms", "", None, how),
        Figure(
            "ingest: push latency",
            "p99",
            p99p or 0.0,
            p99r,
            "ms",
            "≤ 2x reference p99 + 20 ms",
            p99p is not None and p99r is not None and at_most(p99p, p99r, 2, 20),
            f"{len(p_lat)} / {len(r_lat)} customer messages",
        ),
    ]

    # (e) overload at twice the product's sustainable rate
    def bad_5xx(m: Measured) -> int:
        return sum(1 for q in m.overload.requests if q[3] >= 500 and not (q[3] == 503 and q[4]))

    def unanswered(m: Measured) -> int:
        return sum(1 for q in m.overload.requests if q[3] in (0, -1) and not q[7])

    def overloaded_503(m: Measured) -> int:
        return sum(1 for q in m.overload.requests if q[3] == 503 and q[4] and not q[7])

    def ack_recovery(m: Measured) -> float | None:
        baseline = _p(m.latency.ack_latencies(), 99) or 0.0
        threshold = 2 * baseline + 20
        samples = m.overload.ack_latencies(since=m.overload_end)
        return recovery_seconds(samples, m.overload_end, threshold)

    def push_recovery(m: Measured) -> float | None:
        baseline = _p(m.latency.push_latencies(), 99) or 0.0
        samples = m.overload.push_latencies(since=m.overload_end)
        return recovery_seconds(samples, m.overload_end, 2 * baseline + 20)

    rec_p, rec_r = ack_recovery(p), ack_recovery(r)
    push_p, push_r = push_recovery(p), push_recovery(r)
    window = plan.recovery_seconds
    load = (
        f"open loop at {p.sustainable * 2:.0f} msg/s for {plan.overload_seconds:.0f} s, then "
        f"{p.sustainable / 2:.0f} msg/s for {window:.0f} s; failed requests redelivered once after 2 s"
    )
    out += [
        Figure(
            "ingest: overload",
            "5xx other than 503 with Retry-After",
            bad_5xx(p),
            bad_5xx(r),
            "",
            "0",
            bad_5xx(p) == 0,
            load,
        ),
        Figure(
            "ingest: overload",
            "requests unanswered (10 s timeout or connection refused)",
            unanswered(p),
            unanswered(r),
            "",
            "0",
            unanswered(p) == 0,
            "neither accepted nor refused with 503: Meta would redeliver, but the answer came too late",
        ),
        Figure(
            "ingest: overload", "503 with Retry-After", overloaded_503(p), overloaded_503(r), "", "", None, ""
        ),
        Figure(
            "ingest: overload",
            "acknowledged, then lost or duplicated",
            p.overload_lost + p.overload_duplicated,
            r.overload_lost + r.overload_duplicated,
            "",
            "0",
            p.overload_lost + p.overload_duplicated == 0,
            "customer messages answered 200 (first delivery or redelivery), rows counted after draining",
        ),
        Figure(
            "ingest: overload",
            "ack latency p99 during the overload",
            _p(p.overload.ack_latencies(until=p.overload_end), 99) or 0.0,
            _p(r.overload.ack_latencies(until=r.overload_end), 99),
            "ms",
            "",
            None,
            "due time to the answer",
        ),
        Figure(
            "ingest: overload",
            "ack latency back to normal after the overload",
            rec_p if rec_p is not None else window,
            rec_r if rec_r is not None else window,
            "s",
            "≤ 5 s",
            rec_p is not None and rec_p <= 5,
            "seconds after the overload ends until every 1-second bucket's p99 ack latency stays ≤ 2x the "
            "latency phase's p99 + 20 ms"
            + ("" if rec_p is not None else f"; the product had not recovered after {window:.0f} s"),
        ),
        Figure(
            "ingest: overload",
            "push latency back to normal after the overload",
            push_p if push_p is not None else window,
            push_r if push_r is not None else window,
            "s",
            "",
            None,
            "the same for push latency; the backlog of the overload drains only at the spare rate "
            "(sustainable - offered), so this is long whenever the overload was accepted"
            + ("" if push_p is not None else f"; the product had not recovered after {window:.0f} s"),
        ),
    ]
    return out


def run(quick: bool) -> list[Figure]:
    plan = Plan.make(quick)
    product = ProductStack(plan)
    product.setup()
    reference = ReferenceStack(plan)
    reference.setup()
    p = measure(product, plan, None)
    r = measure(reference, plan, p.sustainable)
    return figures(p, r, plan)
