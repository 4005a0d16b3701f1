"""Broadcasts: an approved template to 10,000 opted-in contacts at the number's pace, against a fake Graph API
(bench/fake_graph.py, in this process: it records when each send arrived, to whom, and over which connection),
the product served as production runs it: gunicorn + uvicorn workers, two Celery worker processes on the
`broadcasts` queue (so that the pace must hold across processes: it is shared through Redis), one on the
default queue (webhooks, agent replies) and beat. A broadcast's runner is a chain of run_broadcast tasks (a
2-second slice, then the next task); beat's sweep_broadcasts adds a chain for every running broadcast every
30 s, which is how a second process comes to send for the same broadcast.

Each run: 10,000 new contacts (opted in, a label of their own: no frequency cap from the run before), the
number's send_rate set (80, then 1,000 messages per second), the broadcast created and started through the
API (POST /api/v1/broadcasts/, then start/) as an admin. Measured from the fake's arrival times of the
template sends:
  achieved rate       (sends - 1) / (last send - first send); target at least 95% of the cap
  worst second        the most sends in any window [t, t + 1 s) (t: every send's arrival); target at most the cap
  duplicates          sends minus distinct recipients; lost: recipients the fake never saw; both 0
  agent reply delay   an agent's free-text reply (POST /api/v1/conversations/{id}/messages/ to a customer who
                      wrote by a signed webhook) from the POST to its arrival at the fake, sent every 2 s while
                      the broadcast runs; the reference is the same reply with no broadcast running, measured
                      just before the broadcast (informational: the issue sets no target)
The notes say how many processes sent, how much their sends overlapped, and how many run_broadcast tasks were
queued or held at most. Every send and reply is kept in var/bench/broadcast/sends-N-RATE.json.

Then one runner alone, in this process with the servers stopped (`run_slice` on 300 recipients at 1,000/s,
the product's functions wrapped with timers, each part's time net of the parts inside it; statements counted;
CPU of the process and of its PostgreSQL backend): where a send's time goes. A runner sends one message after
another, so its time per send bounds the rate one runner reaches, and the CPU per send bounds what any number
of runners reach on this machine.

Full mode: 10,000 recipients at 80/s and at 1,000/s. Quick mode: 300 at 80/s and 1,000 at 1,000/s, to show
that the harness works: rates are reported, not judged (duplicates, loss and the worst second are, in either).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import servers
from bench.fake_graph import FakeGraph, Send
from bench.figures import Figure
from bench.load import sign
from bench.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
TMP = ROOT / "var" / "bench" / "broadcast"
ADMIN_PASSWORD = "bench-admin-pass-5307"
BODY = "Halo {{1}}, pesanan anda siap diambil. Balas STOP untuk berhenti."
REPLY_EVERY = 2.0  # seconds between agent replies while a broadcast runs
REPLY_TIMEOUT = 30.0
STALL = 60.0  # no send for this long: the broadcast is stuck, stop waiting


@dataclass(frozen=True)
class Plan:
    quick: bool
    runs: tuple[tuple[int, int], ...]  # (recipients, messages per second)
    replies_alone: int  # the reference replies before each broadcast
    profile_recipients: int = 300

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(True, ((300, 80), (1000, 1000)), 4, 100)
        return cls(False, ((10_000, 80), (10_000, 1000)), 10)


# ------------------------------------------------------------------ pure figures of a run


def achieved_rate(times: list[float]) -> float:
    """Sends per second between the first and the last: n sends span n - 1 intervals."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else 0.0


def worst_window(times: list[float], width: float = 1.0) -> int:
    """The most sends in any window [t, t + width): the fullest window starts at some send."""
    ordered = sorted(times)
    worst, end = 0, 0
    for start, moment in enumerate(ordered):
        end = max(end, start)
        while end < len(ordered) and ordered[end] < moment + width:
            end += 1
        worst = max(worst, end - start)
    return worst


# ------------------------------------------------------------------ the product, served


def _request(
    port: int, host: str, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        headers={"Host": host, "Content-Type": "application/json", **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:500].decode(errors="replace")


@dataclass
class Reply:
    posted: float
    answered: float  # the API's 201: the rest of the delay is the default queue's worker and its send
    status: int
    arrived: float | None

    @property
    def delay_ms(self) -> float | None:
        return None if self.arrived is None else (self.arrived - self.posted) * 1000


@dataclass
class Run:
    recipients: int
    rate: int
    sends: list[Send]
    wa_ids: set[str]
    started: float  # the start/ POST
    start_seconds: float  # how long the start/ request took (it makes every recipient row)
    status: str
    counts: dict[str, Any]
    alone: list[Reply]
    during: list[Reply]
    queue_peak: int  # run_broadcast tasks queued or held by the workers, most seen (_broadcast_tasks)
    notes: list[str] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [s.at for s in self.sends]

    @property
    def duplicates(self) -> int:
        return len(self.sends) - len({s.to for s in self.sends})

    @property
    def lost(self) -> int:
        return len(self.wa_ids - {s.to for s in self.sends})

    @property
    def senders(self) -> int:
        """Keep-alive connections that carried sends: one per worker process that sent."""
        return len({s.peer for s in self.sends})

    def overlapping(self, within: float = 0.1) -> float:
        """Share of sends with another worker process's send within `within` seconds: how much of the time
        two runners really sent at once (a single runner whose next slice lands on the other worker alternates
        between the processes without overlapping)."""
        ordered = sorted(self.sends, key=lambda s: s.at)
        near = [False] * len(ordered)
        for indexes in (range(len(ordered)), range(len(ordered) - 1, -1, -1)):
            last: dict[int, float] = {}  # each process's nearest send so far in this direction
            for i in indexes:
                send = ordered[i]
                if any(abs(send.at - at) <= within for peer, at in last.items() if peer != send.peer):
                    near[i] = True
                last[send.peer] = send.at
        return sum(near) / len(near) if near else 0.0

    def joined(self) -> str:
        """Each sender connection: seconds after the start/ POST of its first send, and its share of sends."""
        first: dict[int, float] = {}
        counts: dict[int, int] = {}
        for send in self.sends:
            first[send.peer] = min(first.get(send.peer, send.at), send.at)
            counts[send.peer] = counts.get(send.peer, 0) + 1
        return ", ".join(
            f"+{first[peer] - self.started:.1f} s ({counts[peer]:,} sends)"
            for peer in sorted(first, key=first.get)
        )


class Stack:
    """One tenant, one number pointing at the fake Graph API, an admin; the product's processes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        stamp = f"{int(time.time()) % 10**6:06d}"
        self.stamp = stamp
        self.slug = f"bench_bcast_{stamp}"
        self.domain = f"bench-bcast-{stamp}.localhost"
        self.pnid = f"32{stamp}0000001"
        self.waba = f"32{stamp}0000002"
        self.display = f"62813{stamp}02"
        self.secret = secrets.token_hex(16)
        self.email = f"admin@bench-bcast-{stamp}.example.com"
        self.port = servers.free_port()
        self.fake = FakeGraph()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.token = ""
        self.number_id = 0
        self.template = f"bench_promo_{stamp}"
        self.conversation_id = 0

    @contextmanager
    def tenant(self) -> Iterator[None]:
        from django_tenants.utils import schema_context

        with schema_context(self.slug):
            yield

    def setup(self) -> None:
        from django.core.management import call_command

        from conversations.models import MessageTemplate
        from helpdesk.tenancy.models import WhatsAppNumber

        call_command("create_tenant_account", self.slug, name="Broadcast benchmark", domain=self.domain)
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
            "create_tenant_user", self.slug, self.email, role="admin", password=ADMIN_PASSWORD, name="Admin"
        )
        number = WhatsAppNumber.objects.get(phone_number_id=self.pnid)
        self.number_id = number.pk
        with self.tenant():
            MessageTemplate.objects.create(
                number=number,
                waba_id=self.waba,
                meta_id=str(secrets.randbelow(10**12)),
                name=self.template,
                language="id",
                category="MARKETING",
                components=[{"type": "BODY", "text": BODY, "example": {"body_text": [["Budi"]]}}],
                status="approved",
            )

    def start(self) -> None:
        env = dict(os.environ, WHATSAPP_GRAPH_URL=self.fake.url)
        TMP.mkdir(parents=True, exist_ok=True)
        celery = [servers.PYTHON, "-m", "celery", "-A", "helpdesk", "worker", "-l", "warning"]
        self.procs = [
            servers.start_web(self.port, env, workers=2),
            # Two processes on the broadcasts queue: the number's pace must hold across both.
            servers._spawn([*celery, "-Q", "broadcasts", "-c", "1", "-n", "bcast1@%h"], env, "worker-bcast1"),
            servers._spawn([*celery, "-Q", "broadcasts", "-c", "1", "-n", "bcast2@%h"], env, "worker-bcast2"),
            servers._spawn([*celery, "-Q", "celery", "-c", "2", "-n", "default@%h"], env, "worker-default"),
            servers.start_beat(env, TMP / f"celerybeat-{self.slug}"),
        ]
        try:
            servers.wait_http(self.port)
            _wait_workers({"bcast1", "bcast2", "default"})
            status, answer = _request(
                self.port,
                self.domain,
                "POST",
                "/api/v1/auth/token/",
                {"email": self.email, "password": ADMIN_PASSWORD},
            )
            assert status == 200, f"token: {status} {answer}"
            self.token = answer["token"]
            self.conversation_id = self._customer_writes()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        servers.stop(*self.procs)
        self.procs = []

    def api(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        return _request(
            self.port, self.domain, method, path, payload, {"Authorization": f"Token {self.token}"}
        )

    def _customer_writes(self) -> int:
        """A customer message by a signed webhook (applied by the default worker): an open window to reply in."""
        from conversations.models import Conversation

        wa_id = f"62811{self.stamp}99"
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display,
                                    "phone_number_id": self.pnid,
                                },
                                "contacts": [{"profile": {"name": "Pelanggan Setia"}, "wa_id": wa_id}],
                                "messages": [
                                    {
                                        "from": wa_id,
                                        "id": f"wamid.BCASTIN.{self.stamp}",
                                        "timestamp": str(int(time.time())),
                                        "type": "text",
                                        "text": {"body": "Halo, pesanan saya sudah dikirim?"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/whatsapp/",
            data=body,
            headers={
                "Host": "localhost",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(self.secret, body),
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, response.status
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with self.tenant():
                found = Conversation.objects.filter(contact__wa_id=wa_id).values_list("pk", flat=True).first()
            if found:
                return int(found)
            time.sleep(0.2)
        raise RuntimeError("the customer's webhook was not applied within 60 s")

    def reply(self) -> Reply:
        """One agent reply; its delay is from the POST to its arrival at the fake Graph API."""
        text = f"Baik, kami cek dulu ya ({secrets.token_hex(6)})"
        posted = time.time()
        status, _ = self.api(
            "POST", f"/api/v1/conversations/{self.conversation_id}/messages/", {"text": text}
        )
        answered = time.time()
        arrived = None
        deadline = time.monotonic() + REPLY_TIMEOUT
        while status == 201 and time.monotonic() < deadline:
            arrived = self.fake.arrival_of_text(text)
            if arrived is not None:
                break
            time.sleep(0.002)
        return Reply(posted, answered, status, arrived)


def _wait_workers(names: set[str], timeout: float = 90.0) -> None:
    """Until a Celery worker of each name answers a ping (their queues are consumed from then on)."""
    from helpdesk.celery import app

    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        answers = app.control.ping(timeout=1.0) or []
        seen = {node.split("@")[0] for answer in answers for node in answer}
        if names <= seen:
            unexpected = seen - names
            if unexpected:  # another checkout's workers on this Redis would take our tasks
                print(f"   warning: other Celery workers on this broker: {sorted(unexpected)}", flush=True)
            return
        time.sleep(0.5)
    raise RuntimeError(f"Celery workers {sorted(names - seen)} did not answer within {timeout:.0f} s")


def _broadcast_tasks() -> int:
    """run_broadcast tasks waiting on the `broadcasts` queue or held by the workers (prefetched or running:
    Celery's Redis transport keeps them in `unacked` until acknowledged, run_broadcast acknowledges late)."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return int(client.llen("broadcasts")) + int(client.hlen("unacked"))  # type: ignore[arg-type]


def _audience(stack: Stack, index: int, count: int) -> tuple[int, set[str]]:
    """`count` new opted-in contacts under a label of their own; (the label's id, their numbers)."""
    from django.utils import timezone

    from conversations.models import Contact, Label

    opted_in = timezone.now() - timedelta(days=30)
    wa_ids = [f"62812{index}{i:07d}" for i in range(count)]  # valid Indonesian mobiles, distinct per run
    with stack.tenant():
        label = Label.objects.create(name=f"bench run {index}")
        Contact.objects.bulk_create(
            [
                Contact(
                    number_id=stack.number_id,
                    wa_id=wa_id,
                    name=f"Pelanggan {i}",
                    opted_in_at=opted_in,
                    opt_in_source="form",
                    labels=[label.pk],
                )
                for i, wa_id in enumerate(wa_ids)
            ],
            batch_size=2000,
        )
    return label.pk, set(wa_ids)


def _set_rate(stack: Stack, rate: int) -> None:
    import redis

    from conversations import pacing
    from helpdesk.tenancy.models import WhatsAppNumber

    WhatsAppNumber.objects.filter(pk=stack.number_id).update(send_rate_setting=rate)
    # A slot reserved by an earlier run (at the old rate) must not delay this one.
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(pacing._key(stack.number_id))


def broadcast(stack: Stack, index: int, count: int, rate: int) -> Run:
    """One broadcast of `count` recipients at `rate` per second, with agent replies alongside."""
    from conversations.models import Broadcast

    label, wa_ids = _audience(stack, index, count)
    _set_rate(stack, rate)
    alone = [_paced_reply(stack) for _ in range(stack.plan.replies_alone)]
    status, created = stack.api(
        "POST",
        "/api/v1/broadcasts/",
        {
            "name": f"Benchmark {count} at {rate}/s",
            "number": stack.number_id,
            "template": {
                "name": stack.template,
                "language": "id",
                "components": [
                    {"type": "body", "parameters": [{"type": "text", "text": "{{contact.name}}"}]}
                ],
            },
            "audience": {"labels": [label]},
        },
    )
    assert status == 201, f"create: {status} {created}"
    started = time.time()
    status, answer = stack.api("POST", f"/api/v1/broadcasts/{created['id']}/start/", {})
    start_seconds = time.time() - started
    assert status == 200, f"start: {status} {answer}"
    print(f"   {count} at {rate}/s: started ({start_seconds:.1f} s to make the rows)", flush=True)

    during: list[Reply] = []
    queue_peak = 0
    last_count, last_progress = 0, time.monotonic()
    deadline = time.monotonic() + count / 10 + 300  # far beyond any pace worth reporting
    state = "running"
    while time.monotonic() < deadline:
        during.append(stack.reply())
        queue_peak = max(queue_peak, _broadcast_tasks())
        with stack.tenant():
            state = str(Broadcast.objects.values_list("status", flat=True).get(pk=created["id"]))
        if state != "running":
            break
        now_count = stack.fake.count("template")
        if now_count != last_count:
            last_count, last_progress = now_count, time.monotonic()
        elif time.monotonic() - last_progress > STALL:
            break
        time.sleep(max(0.0, REPLY_EVERY - (during[-1].delay_ms or 0) / 1000))
    time.sleep(1.0)  # a straggler, or a duplicate, would arrive now
    sends = [s for s in stack.fake.snapshot() if s.type == "template" and s.to in wa_ids]
    with stack.tenant():
        from conversations import broadcasts

        done = Broadcast.objects.get(pk=created["id"])
        counts = broadcasts.counts_of(done)
        if done.status == "running":  # stuck: stop it, so that it does not run into the next one
            broadcasts.do_cancel(done)
    last = max((s.at for s in sends), default=started)
    # Replies posted once the broadcast's last message had gone were not sent during it.
    during = [r for r in during if r.posted < last]
    run = Run(count, rate, sends, wa_ids, started, start_seconds, state, counts, alone, during, queue_peak)
    TMP.mkdir(parents=True, exist_ok=True)
    raw = {  # for a closer look after the run: every send (seconds after the start/ POST) and reply
        "sends": [[round(s.at - started, 6), s.to, s.peer] for s in sends],
        "replies": [[r.posted - started, r.answered - r.posted, r.delay_ms] for r in alone + during],
    }
    (TMP / f"sends-{count}-{rate}.json").write_text(json.dumps(raw))
    print(
        f"   {count} at {rate}/s: {state}; {len(sends)} sends, {achieved_rate(run.times):.1f}/s, worst second "
        f"{worst_window(run.times)}, duplicates {run.duplicates}, lost {run.lost}, {run.senders} sender "
        f"connection(s), queue peak {queue_peak}; replies alone {_ms(alone)}, during {_ms(during)}",
        flush=True,
    )
    return run


def _paced_reply(stack: Stack) -> Reply:
    reply = stack.reply()
    time.sleep(0.5)
    return reply


def _ms(replies: list[Reply]) -> str:
    delays = [r.delay_ms for r in replies if r.delay_ms is not None]
    if not delays:
        return "none arrived"
    return f"median {statistics.median(delays):.0f} ms, max {max(delays):.0f} ms ({len(delays)})"


# ------------------------------------------------------------------ one runner, timed


@dataclass
class Profile:
    sends: int
    seconds: float
    statements: int  # SQL statements (BEGIN, COMMIT and savepoints not counted)
    cpu_runner: float  # CPU seconds of this process (the runner; the fake's thread is a small part)
    cpu_database: float | None  # CPU seconds of the runner's PostgreSQL backend (None: /proc unreadable)
    parts: dict[str, float]  # seconds spent in each part (exclusive of the parts inside it), summed

    @property
    def ms_per_send(self) -> float:
        return 1000 * self.seconds / self.sends if self.sends else 0.0


def _backend_cpu(pid: int) -> float | None:
    """utime + stime of a PostgreSQL backend (same machine), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile_runner(stack: Stack, count: int) -> Profile:
    """`run_slice` in this process until a broadcast of `count` recipients at 1,000/s is done, with parts of
    `send_one` timed (the product's functions wrapped here, nothing changed in it) and statements counted."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from conversations import actions, broadcasts, graph_api, pacing
    from conversations.models import Broadcast, BroadcastRecipient, BroadcastStatus
    from helpdesk import live

    label, _ = _audience(stack, 9, count)
    _set_rate(stack, 1000)
    parts: dict[str, float] = {}
    inner: list[float] = []  # time of timed calls inside the running timed call: counted there, not here

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            inner.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - began
                parts[name] = parts.get(name, 0.0) + elapsed - inner.pop()
                if inner:
                    inner[-1] += elapsed

        return wrapper

    statements = 0

    def count_statement(execute: Callable[..., Any], *args: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(*args)

    patched = {
        (broadcasts, "send_one"): "the rest of send_one (recipient, template, fill, commit)",
        (broadcasts, "_conversation_of"): "the recipient's conversation (get or create, locked)",
        (broadcasts, "do_queue_outbound"): "keep the message (do_queue_outbound)",
        (actions.ticket_actions, "on_outbound_message"): "ticket bookkeeping (on_outbound_message)",
        (live, "publish"): "inbox events to agents' sockets (live.publish, after commit)",
        (pacing, "wait_for_slot"): "wait for the slot (Redis)",
        (graph_api, "send_message"): "Graph API call (HTTP)",
        (broadcasts, "_sent"): "record the send (_sent)",
    }
    originals = [(module, name, getattr(module, name)) for module, name in patched]
    old_url = settings.WHATSAPP_GRAPH_URL
    settings.WHATSAPP_GRAPH_URL = stack.fake.url
    try:
        for module, name, original in originals:
            setattr(module, name, timed(patched[(module, name)], original))
        with stack.tenant():
            from helpdesk.tenancy.models import WhatsAppNumber

            number = WhatsAppNumber.objects.get(pk=stack.number_id)
            draft = Broadcast.objects.create(
                name="runner profile",
                number=number,
                template_name=stack.template,
                template_language="id",
                components=[{"type": "body", "parameters": [{"type": "text", "text": "{{contact.name}}"}]}],
                category="MARKETING",
                audience={"labels": [label], "contacts": [], "wa_ids": []},
            )
            # What check_start does, without handing the runner to Celery: this process is the runner.
            BroadcastRecipient.objects.bulk_create(broadcasts.plan(draft).rows, batch_size=2000)
            Broadcast.objects.filter(pk=draft.pk).update(
                status=BroadcastStatus.RUNNING, started_at=timezone.now()
            )
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = int(cursor.fetchone()[0])
            database_before = _backend_cpu(backend)
            cpu_before = time.process_time()
            began = time.perf_counter()
            deadline = time.monotonic() + 120 + count / 10
            with connection.execute_wrapper(count_statement):
                more = True
                while more and time.monotonic() < deadline:  # a failing send retries later: not forever
                    more, _ = broadcasts.run_slice(draft.pk)
            seconds = time.perf_counter() - began
            cpu_runner = time.process_time() - cpu_before
            database_after = _backend_cpu(backend)
            sent = BroadcastRecipient.objects.filter(broadcast=draft, sent_at__isnull=False).count()
    finally:
        settings.WHATSAPP_GRAPH_URL = old_url
        for module, name, original in originals:
            setattr(module, name, original)
    parts["outside send_one (claims, checks between sends)"] = max(0.0, seconds - sum(parts.values()))
    cpu_database = (
        None if database_before is None or database_after is None else database_after - database_before
    )
    return Profile(sent, seconds, statements, cpu_runner, cpu_database, parts)


# ------------------------------------------------------------------ figures


def run_figures(run: Run, quick: bool) -> list[Figure]:
    table = f"broadcast: {run.recipients:,} recipients at {run.rate:,}/s"
    times = run.times
    achieved = achieved_rate(times)
    worst = worst_window(times)
    share = achieved / run.rate if run.rate else 0.0
    judged = not quick
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    first = (min(times) - run.started) if times else 0.0
    how = (
        f"{len(times):,} sends over {span:.1f} s by {run.senders} worker process(es) (keep-alive connections "
        f"seen by the fake; first send after the start/ POST and sends of each: {run.joined()}; sends with "
        f"another process's send within 100 ms: {run.overlapping():.0%}); broadcast {run.status}; recipients "
        f"{run.counts}"
    )
    alone = [r.delay_ms for r in run.alone if r.delay_ms is not None]
    during = [r.delay_ms for r in run.during if r.delay_ms is not None]
    unsent = sum(1 for r in run.during if r.delay_ms is None)
    arrived = [r for r in run.during if r.delay_ms is not None]
    worst_reply = max(arrived, key=lambda r: r.delay_ms or 0.0, default=None)
    api_ms = [(r.answered - r.posted) * 1000 for r in arrived]
    reply_note = (
        f"{len(during)} replies during the broadcast, one every {REPLY_EVERY:.0f} s"
        + (f" ({unsent} never arrived or were refused)" if unsent else "")
        + f"; reference: {len(alone)} replies just before it, no broadcast running"
    )
    return [
        Figure(
            table,
            "achieved rate",
            achieved,
            None,
            "msg/s",
            f"≥ 95% of the cap ({0.95 * run.rate:,.0f} msg/s)"
            + ("" if judged else ", not judged in quick mode"),
            (share >= 0.95) if judged else None,
            f"{share:.1%} of the cap; " + how,
        ),
        Figure(
            table,
            "worst one-second window",
            worst,
            None,
            "msg",
            f"≤ {run.rate:,} (the cap)",
            worst <= run.rate,
            "most template sends arriving at the fake Graph API in any [t, t + 1 s)",
        ),
        Figure(
            table,
            "duplicates",
            run.duplicates,
            None,
            "",
            "0",
            run.duplicates == 0,
            "template sends minus distinct recipients",
        ),
        Figure(
            table,
            "lost",
            run.lost,
            None,
            "",
            "0",
            run.lost == 0,
            "recipients the fake Graph API never received a template for",
        ),
        Figure(
            table,
            "start/ request (makes every recipient row)",
            run.start_seconds * 1000,
            None,
            "ms",
            "",
            None,
            f"then {first:.2f} s from the start/ POST to the first send",
        ),
        Figure(
            table,
            "agent reply delay: median",
            statistics.median(during) if during else 0.0,
            statistics.median(alone) if alone else None,
            "ms",
            "informational",
            None,
            reply_note + "; POST /api/v1/conversations/{id}/messages/ to arrival at the fake Graph API",
        ),
        Figure(
            table,
            "agent reply delay: worst",
            max(during) if during else 0.0,
            max(alone) if alone else None,
            "ms",
            "informational",
            None,
            f"p95 during: {percentile(during, 95) or 0:.0f} ms; the API's answer (201) took a median "
            f"{statistics.median(api_ms) if api_ms else 0:.0f} ms of it, "
            f"{(worst_reply.answered - worst_reply.posted) * 1000 if worst_reply else 0:.0f} ms of the worst; run_broadcast tasks "
            "queued or held by the "
            f"workers, most seen: {run.queue_peak} (one chain of run_broadcast shows 1 or 2; beat's sweep_broadcasts enqueues another for each running broadcast every 30 s)",
        ),
    ]


def profile_figures(profile: Profile, count: int) -> list[Figure]:
    table = "broadcast: one runner alone, where a send's time goes"
    how = (
        f"run_slice in this process, servers stopped, {profile.sends} sends at a cap of 1,000/s against the fake "
        "Graph API (which runs in this process too)"
    )
    out = [
        Figure(table, "time per send", profile.ms_per_send, None, "ms", "", None, how),
        Figure(
            table,
            "ceiling of one runner (1 / time per send)",
            1000 / profile.ms_per_send if profile.ms_per_send else 0.0,
            None,
            "msg/s",
            "",
            None,
            "sends of one runner are strictly one after another: it never goes faster than this",
        ),
        Figure(
            table,
            "SQL statements per send",
            profile.statements / profile.sends if profile.sends else 0.0,
            None,
            "statements",
            "",
            None,
            f"{profile.statements:,} statements for {profile.sends} sends, claims and checks included; BEGIN, "
            "COMMIT and savepoints not counted",
        ),
        Figure(
            table,
            "CPU per send: the runner (Python)",
            1000 * profile.cpu_runner / profile.sends if profile.sends else 0.0,
            None,
            "ms",
            "",
            None,
            "process time of this process during the sends (the fake Graph API's thread included)",
        ),
    ]
    if profile.cpu_database is not None:
        cpu_total = profile.cpu_runner + profile.cpu_database
        out.append(
            Figure(
                table,
                "CPU per send: its PostgreSQL backend",
                1000 * profile.cpu_database / profile.sends if profile.sends else 0.0,
                None,
                "ms",
                "",
                None,
                f"utime + stime of the runner's backend (/proc); runner and backend together "
                f"{1000 * cpu_total / max(1, profile.sends):.1f} ms of CPU per send: on {os.cpu_count()} cores "
                f"at most {profile.sends * (os.cpu_count() or 1) / cpu_total if cpu_total else 0:.0f} sends per "
                "second however many runners, before the web server, Redis and the rest take their share",
            )
        )
    for name, seconds in sorted(profile.parts.items(), key=lambda item: -item[1]):
        out.append(
            Figure(
                table,
                f"of which: {name}",
                1000 * seconds / profile.sends if profile.sends else 0.0,
                None,
                "ms",
                "",
                None,
                f"{seconds / profile.seconds:.0%} of the time" if profile.seconds else "",
            )
        )
    return out


def run(quick: bool) -> list[Figure]:
    plan = Plan.make(quick)
    stack = Stack(plan)
    stack.setup()
    runs: list[Run] = []
    stack.start()
    try:
        for index, (count, rate) in enumerate(plan.runs, start=1):
            runs.append(broadcast(stack, index, count, rate))
    finally:
        stack.stop()
    try:
        profile = profile_runner(stack, plan.profile_recipients)
        print(
            f"   one runner: {profile.ms_per_send:.2f} ms per send, "
            f"{profile.statements / max(1, profile.sends):.1f} statements per send",
            flush=True,
        )
    finally:
        stack.fake.close()
    figures = [f for r in runs for f in run_figures(r, quick)]
    return figures + profile_figures(profile, plan.profile_recipients)
