"""A year of realistic helpdesk history for load tests (`seed_load`), written through the real actions.

* `Planner` decides, from a seeded random generator and nothing else, what every customer does and when: their
  tickets, messages, the bot's greeting, agent replies (minutes in business hours, longer in the evening,
  until the next shift at night and on Sundays, now and then much later), private notes, priority changes,
  resolutions, reopens within the reopen window and the odd 24-hour window that closes unanswered.
* `Runner` replays each customer's plan in the tenant's schema, in time order, through the action functions,
  so the reporting store (ReportingEvent, DailyVolume, ConversationDay, Ticket and Conversation fields) ends up
  as if the history had happened live:
    - customer messages: `conversations.actions.do_receive_inbound` with the WhatsApp timestamp (exact mode), or
      the same steps on the conversation held in memory, then `tickets.actions.on_customer_message`;
    - our messages: the `Message` row with the chosen `created_at`, then `tickets.actions.on_outbound_message`,
      as `do_queue_outbound` does (which cannot take a time: it stamps now);
    - resolutions and priority changes: `tickets.actions.do_update_ticket(..., now=...)`;
    - the per-minute deadline sweep (`tickets.deadlines.raise_due_warnings`), replayed for the conversation's
      ticket at the minute ticks where one of its deadlines falls: `tickets.deadlines.sweep_ticket`.
  The default (fast) mode runs the same tickets.actions code with its store (`tickets.store`) set to
  `WriteBehind`, which keeps the rows of a chunk of customers and inserts them in bulk; `--exact` uses the
  database store, writing every row as the actions run. bench/check_seed_modes.py checks both leave identical
  rows.

Not replayed (docs/performance.md): inbox events (`InboxEvent` rows, their serialisation and publishing) are
switched off for the run by `conversations.events.suppressed()`; delivery statuses are written on the message row (sent,
delivered, read) instead of arriving as status webhooks; private notes are inserted with their historical
`created_at` (`check_add_note` stamps now and only adds an event); `Ticket.created_at` / `updated_at` are set
afterwards to the simulated moments they would have had.

Invariants of the plans (they keep the raw tables sufficient for the brute-force check in
bench/report_summary.py): agents resolve a ticket only after answering the customer's last message, and a ticket
is reopened at most once.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from tickets.store import TicketStore

HOUR = 3600
DAY = 86400

# Local hours customers start a conversation (weights per hour 0..23).
START_HOUR_WEIGHTS = [1, 0.5, 0.3, 0.2, 0.3, 0.8, 2, 4, 7, 9, 10, 10, 9, 9, 9, 8, 8, 8, 8, 9, 10, 9, 6, 3]
FIRST_NAMES = [
    "Budi",
    "Siti",
    "Andi",
    "Dewi",
    "Rizky",
    "Putri",
    "Agus",
    "Sri",
    "Dian",
    "Eko",
    "Rina",
    "Fajar",
    "Ayu",
    "Hendra",
    "Wulan",
    "Joko",
    "Maya",
    "Bayu",
    "Lestari",
    "Yusuf",
    "Nina",
    "Arif",
    "Sari",
    "Tono",
]
LAST_NAMES = [
    "Santoso",
    "Wijaya",
    "Rahma",
    "Saputra",
    "Lestari",
    "Pratama",
    "Hidayat",
    "Kurniawan",
    "Sari",
    "Nugroho",
    "Utami",
    "Setiawan",
    "Halim",
    "Gunawan",
    "Susanto",
    "Putra",
]
CUSTOMER_TEXTS = [
    "Halo, pesanan saya belum sampai",
    "Apakah ukuran M masih tersedia?",
    "Mohon dicek ya",
    "Hi, can I change my delivery address?",
    "Sudah 5 hari belum ada kabar",
    "Nomor resi berapa?",
    "Bisa refund?",
    "Ok",
    "Baik, terima kasih",
    "Thanks!",
    "Barangnya rusak",
    "Kapan dikirim?",
    "Saya sudah transfer",
    "Masih belum bisa",
    "Tolong dibantu",
    "Alamat saya sudah benar",
]
AGENT_TEXTS = [
    "Halo, kami cek dulu ya",
    "Pesanan Anda sedang dikirim",
    "Nomor resi: JNE0012345",
    "Mohon maaf atas keterlambatannya",
    "Sudah kami proses",
    "Bisa kirim foto barangnya?",
    "Refund akan diproses 3-5 hari kerja",
    "Terima kasih sudah menunggu",
    "Sama-sama!",
    "Alamat sudah kami perbarui",
    "Stok ukuran M tersedia",
]
NOTE_TEXTS = [
    "Customer VIP, prioritaskan",
    "Cek dengan gudang",
    "Sudah eskalasi ke tim logistik",
    "Kemungkinan penipuan, hati-hati",
]
BOT_TEXT = "Terima kasih telah menghubungi kami. Agen kami akan segera membalas."


# ------------------------------------------------------------------ plans


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a customer's history. `who` is the agent preference: -1 the ticket's assignee (with `pick`
    as the fallback), else `pick` chooses among the agents."""

    at: float  # unix seconds (whole seconds once planned)
    kind: str  # in | out | bot | note | resolve | priority
    text: str = ""
    template: bool = False
    who: int = -1
    pick: int = 0
    priority: str = ""


@dataclass
class CustomerPlan:
    index: int
    wa_id: str
    name: str
    events: list[Event] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return sum(1 for event in self.events if event.kind in ("in", "out", "bot"))


class Planner:
    """Deterministic histories: the same seed and customer index give the same plan."""

    def __init__(
        self,
        *,
        seed: int,
        end: int,
        days: int,
        timezone_name: str,
        reopen_window_hours: int,
        wa_prefix: str = "62899",
    ) -> None:
        self.seed = seed
        self.end = end
        self.start = end - days * DAY
        self.zone = ZoneInfo(timezone_name)
        self.reopen_window = reopen_window_hours * HOUR
        self.wa_prefix = wa_prefix

    # -- the clock of the support team (local time) --------------------------------------------------------

    def _local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, self.zone)

    def staffing(self, at: float) -> int:
        """2: the whole team (weekdays 08-17), 1: a skeleton crew (weekday evenings, Saturday 09-15), 0: nobody."""
        local = self._local(at)
        weekday, hour = local.weekday(), local.hour
        if weekday < 5:
            return 2 if 8 <= hour < 17 else (1 if 17 <= hour < 22 else 0)
        if weekday == 5 and 9 <= hour < 15:
            return 1
        return 0

    def next_staffed(self, at: float) -> float:
        local = self._local(at).replace(minute=0, second=0, microsecond=0)
        for _ in range(24 * 8):
            local = (local + timedelta(hours=1)).astimezone(self.zone)
            if self.staffing(local.timestamp()):
                return local.timestamp()
        return at + DAY

    def reply_delay(self, rng: random.Random, at: float) -> float:
        level = self.staffing(at)
        if level == 2:
            delay = rng.lognormvariate(math.log(150), 1.0)
        elif level == 1:
            delay = rng.lognormvariate(math.log(900), 0.9)
        elif rng.random() < 0.15:  # the on-call agent
            delay = rng.lognormvariate(math.log(2400), 0.7)
        else:  # the backlog when the shift starts
            delay = self.next_staffed(at) - at + rng.lognormvariate(math.log(1200), 0.8)
        if rng.random() < 0.07:  # busy: hours
            delay += rng.uniform(1800, 4 * HOUR)
        return max(15.0, delay)

    def customer_delay(self, rng: random.Random, at: float) -> float:
        delay = rng.lognormvariate(math.log(100), 1.1)
        if rng.random() < 0.12:
            delay += rng.uniform(HOUR, 10 * HOUR)
        local = self._local(at + delay)
        if local.hour < 6 and rng.random() < 0.6:  # most people sleep
            morning = local.replace(hour=7, minute=0, second=0) + timedelta(seconds=rng.uniform(0, 2 * HOUR))
            delay = morning.timestamp() - at
        return max(5.0, delay)

    def resolve_delay(self, rng: random.Random, at: float) -> float:
        roll = rng.random()
        if roll < 0.70:
            delay = rng.lognormvariate(math.log(600), 0.8)
        elif roll < 0.93:
            delay = rng.uniform(HOUR, 8 * HOUR)
        else:  # forgotten for days
            delay = rng.uniform(DAY, 5 * DAY)
        if not self.staffing(at + delay):
            delay = self.next_staffed(at + delay) - at + rng.uniform(0, 1800)
        return delay

    def ticket_start(self, rng: random.Random, not_before: float) -> float:
        """A moment after `not_before` on a day drawn later, at an hour customers write (fewer on weekends)."""
        for _ in range(50):
            day = self._local(not_before).date()
            hour = rng.choices(range(24), weights=START_HOUR_WEIGHTS)[0]
            local = datetime(
                day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=self.zone
            )
            at = local.timestamp()
            if at < not_before:
                at += DAY
            if local.weekday() >= 5 and rng.random() < 0.35:
                not_before += DAY
                continue
            return at
        return not_before

    # -- one customer --------------------------------------------------------------------------------------

    def plan(self, index: int) -> CustomerPlan:
        rng = random.Random(f"{self.seed}:{index}")  # noqa: S311 (reproducible load, not secrets)
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        plan = CustomerPlan(index=index, wa_id=f"{self.wa_prefix}{index:08d}", name=name)
        events: list[Event] = []
        at = self.ticket_start(rng, self.start + rng.random() * (self.end - self.start))
        while at < self.end:
            resolved = self._ticket(rng, at, events)
            if resolved is None or rng.random() < 0.45:  # a one-time customer
                break
            # Next contact: well after the reopen window, weeks later on average.
            at = self.ticket_start(rng, resolved + self.reopen_window + DAY + rng.expovariate(1 / (40 * DAY)))
        # Cut at the end of the history; keep time strictly increasing per conversation.
        last = 0
        for event in events:
            moment = max(int(event.at), last + 1)
            if moment > self.end:
                break
            plan.events.append(_moved(event, moment))
            last = moment
        return plan

    def _ticket(self, rng: random.Random, at: float, events: list[Event]) -> float | None:
        resolved = self._cycle(rng, at, events, opening=True)
        if resolved is not None and rng.random() < 0.10:  # the customer comes back within the reopen window
            later = (
                rng.uniform(60, 1800) if rng.random() < 0.5 else rng.uniform(HOUR, self.reopen_window - HOUR)
            )
            resolved = self._cycle(rng, resolved + later, events, opening=False)
        return resolved

    def _cycle(self, rng: random.Random, at: float, events: list[Event], opening: bool) -> float | None:
        """Customer messages and agent replies until the agent resolves; None if it runs past the end."""
        t = at
        rounds = 0
        first_reply = True
        while True:
            if t > self.end:
                return None
            # The customer writes one or more messages.
            burst = 1 + (rng.random() < 0.45) + (rng.random() < 0.15)
            last_in = t
            for n in range(burst):
                events.append(Event(t, "in", rng.choice(CUSTOMER_TEXTS)))
                last_in = t
                if opening and rounds == 0 and n == 0 and (not self.staffing(t) or rng.random() < 0.3):
                    events.append(Event(t + rng.uniform(1, 4), "bot", BOT_TEXT))
                    t += 5
                t += rng.uniform(4, 90)
            window_end = last_in + DAY
            # The reply: usually minutes, sometimes the window closes first.
            if rng.random() < 0.025:
                if rng.random() < 0.5:  # the customer writes again after the window closed
                    nudge = window_end + rng.uniform(1800, 20 * HOUR)
                    events.append(Event(nudge, "in", rng.choice(CUSTOMER_TEXTS)))
                    window_end = nudge + DAY
                    reply = nudge + self.reply_delay(rng, nudge)
                else:  # an agent follows up with a template
                    reply = window_end + rng.uniform(1800, 30 * HOUR)
            else:
                reply = last_in + self.reply_delay(rng, last_in)
            if opening and first_reply and rng.random() < 0.06:
                level = rng.choices(["high", "urgent", "low"], weights=[4, 1, 1])[0]
                events.append(Event(reply, "priority", priority=level, pick=rng.randrange(1 << 30)))
                reply += rng.uniform(5, 60)
            pick = rng.randrange(1 << 30)
            who = -1 if rng.random() < 0.85 else 0
            events.append(
                Event(reply, "out", rng.choice(AGENT_TEXTS), template=reply >= window_end, who=who, pick=pick)
            )
            last_out = reply
            if rng.random() < 0.25:
                last_out = reply + rng.uniform(20, 120)
                events.append(
                    Event(
                        last_out,
                        "out",
                        rng.choice(AGENT_TEXTS),
                        template=last_out >= window_end,
                        who=who,
                        pick=pick,
                    )
                )
            if rng.random() < 0.05:
                events.append(
                    Event(last_out + rng.uniform(10, 300), "note", rng.choice(NOTE_TEXTS), who=who, pick=pick)
                )
                last_out += 301
            first_reply = False
            rounds += 1
            if rng.random() >= (0.65 - 0.1 * rounds if opening else 0.3 - 0.1 * rounds):
                break
            t = last_out + self.customer_delay(rng, last_out)
        resolved = last_out + self.resolve_delay(rng, last_out)
        events.append(Event(resolved, "resolve"))
        return resolved


def _moved(event: Event, at: float) -> Event:
    return Event(at, event.kind, event.text, event.template, event.who, event.pick, event.priority)


def make_plans(planner: Planner, first_index: int, messages: int) -> list[CustomerPlan]:
    """Customers from `first_index` on until their plans hold at least `messages` messages."""
    plans: list[CustomerPlan] = []
    total = 0
    index = first_index
    while total < messages:
        plan = planner.plan(index)
        index += 1
        if plan.events:
            plans.append(plan)
            total += plan.message_count
    return plans


# ------------------------------------------------------------------ replay through the actions


def _copy(instance: Any) -> Any:
    """A model instance as a fresh query would return it (Django's own pickling copy, without pickling)."""
    clone = instance.__class__.__new__(instance.__class__)
    clone.__dict__ = instance.__dict__.copy()
    clone._state = copy.copy(instance._state)
    clone._state.fields_cache = instance._state.fields_cache.copy()
    return clone


class WriteBehind(TicketStore):
    """What tickets.actions stores while one chunk of customers is replayed, written in bulk at its end.

    Every conversation of a chunk is replayed from its first message to its last within the chunk, so its
    tickets are born and finished there: a ticket is kept as its last saved state (a read returns a copy of it,
    as a query would) and inserted once; reporting events, conversation days and daily counts are appended and
    inserted (counts as one upsert that adds them). Ticket ids come from the table's sequence, as an insert's
    would. `flush` writes it all in one transaction.
    """

    def __init__(self) -> None:
        self.tickets: dict[int, Any] = {}  # id -> last saved state
        self.new_tickets: list[int] = []
        self.events: list[Any] = []
        self.days: dict[tuple[Any, int], Any] = {}
        self.counts: dict[tuple[Any, int, int], dict[str, int]] = {}
        self.conversations: dict[int, Any] = {}
        self._ids: list[int] = []

    def next_ticket_id(self) -> int:
        from tickets.models import Ticket

        if not self._ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, 500)",
                    [Ticket._meta.db_table],
                )
                self._ids = sorted((row[0] for row in cursor.fetchall()), reverse=True)
        return self._ids.pop()

    def load_ticket(self, pk: int) -> Any:
        saved = self.tickets.get(pk)
        if saved is None:
            raise RuntimeError(f"ticket {pk} was not created in this chunk")
        return _copy(saved)

    def lock_conversation(self, pk: int) -> None:
        pass  # the chunk's conversations are this process's alone until they are written

    def lock_ticket(self, pk: int) -> Any:
        return self.load_ticket(pk)

    def set_current_ticket(self, conversation: Any, ticket: Any) -> None:
        conversation.current_ticket = ticket
        self.conversations[conversation.pk].current_ticket = ticket

    def follow_ticket_status(self, ticket: Any) -> None:
        from tickets.models import conversation_status_of

        conversation = self.conversations.get(ticket.conversation_id)
        if conversation is not None and conversation.current_ticket_id == ticket.pk:
            conversation.status = conversation_status_of(ticket.status)

    def add_event(self, event: Any) -> Any:
        self.events.append(event)
        return event

    def mark_conversation_day(self, row: Any) -> None:
        self.days.setdefault((row.day, row.conversation_id), row)

    def count(self, day: Any, number_id: int, agent_id: int, field: str) -> None:
        added = self.counts.setdefault((day, number_id, agent_id), {})
        added[field] = added.get(field, 0) + 1

    def save_ticket(self, ticket: Any, fields: list[str] | None = None) -> None:
        if ticket.pk is None:
            ticket.pk = self.next_ticket_id()
            ticket._state.adding = False
            ticket._state.db = "default"
            self.new_tickets.append(ticket.pk)
        elif ticket.pk not in self.tickets:
            raise RuntimeError(f"ticket {ticket.pk} was not created in this chunk")
        self.tickets[ticket.pk] = _copy(ticket)

    def flush_rows(self) -> None:
        """Tickets, then the rows that point at them."""
        from tickets.models import ConversationDay, ReportingEvent, Ticket

        if self.new_tickets:
            Ticket.objects.bulk_create([self.tickets[pk] for pk in self.new_tickets], batch_size=1000)
        if self.events:
            ReportingEvent.objects.bulk_create(self.events, batch_size=2000)
        if self.days:
            ConversationDay.objects.bulk_create(
                list(self.days.values()), batch_size=2000, ignore_conflicts=True
            )
        self.tickets, self.new_tickets, self.events, self.days, self.conversations = {}, [], [], {}, {}

    def flush_counts(self) -> None:
        """The daily counters every worker shares: last in the transaction and in key order (short row locks,
        no deadlocks between workers)."""
        from tickets.models import DailyVolume

        if not self.counts:
            return
        rows = sorted(self.counts.items())
        self.counts = {}
        from tickets.store import COUNTERS

        values = ", ".join(["(" + ", ".join(["%s"] * (3 + len(COUNTERS))) + ")"] * len(rows))
        params: list[Any] = []
        for (day, number_id, agent_id), added in rows:
            params += [day, number_id, agent_id, *(added.get(counter, 0) for counter in COUNTERS)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {DailyVolume._meta.db_table} AS v "  # noqa: S608
                f"(day, number_id, agent_id, {', '.join(COUNTERS)}) "
                f"VALUES {values} ON CONFLICT (day, number_id, agent_id) DO UPDATE SET "
                + ", ".join(f"{counter} = v.{counter} + excluded.{counter}" for counter in COUNTERS),
                params,
            )


CONVERSATION_FIELDS = [
    "status",
    "last_message_at",
    "last_message_preview",
    "last_inbound_at",
    "window_expires_at",
    "unread_count",
    "current_ticket",
]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


class Runner:
    """Replays plans in the current tenant schema (one process; several processes take disjoint customers).

    `exact=True` calls `do_receive_inbound` for every customer message and writes every outbound message with
    its conversation lock, as `do_queue_outbound` does: the reference, about 7x slower. The default keeps each
    conversation in memory, does what those two functions do to it (the same fields, the same order), calls
    the same `tickets.actions` hooks in a transaction per message and writes the message rows and the
    conversation row in bulk once per chunk of customers. bench/check_seed_modes.py checks both leave the
    same rows.
    """

    def __init__(self, number: Any, agents: list[Any], end: int, exact: bool = False) -> None:
        from tickets import actions as ticket_actions

        self.number = number
        self.agents = agents
        self.agents_by_id = {agent.pk: agent for agent in agents}
        self.end = _at(end)
        self.exact = exact
        self.rules = ticket_actions.support_rules()
        self.warn_before = timedelta(minutes=self.rules.settings.window_warning_minutes)
        self.messages = 0
        self.notes: list[Any] = []
        self.outbox: list[Any] = []
        self.ticket_times: dict[int, tuple[datetime, datetime]] = {}
        self.store = WriteBehind()

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """No inbox events (nobody watches history live); in the fast mode, the ticket actions' rows written
        behind, in bulk."""
        from conversations import events
        from tickets import store

        with events.suppressed():
            if self.exact:
                yield
            else:
                with store.using(self.store):
                    yield

    def run_chunk(self, plans: list[CustomerPlan]) -> None:
        from conversations.models import Contact, Conversation, Message, Note

        contacts = Contact.objects.bulk_create(
            [
                Contact(
                    number=self.number, wa_id=plan.wa_id, name=plan.name, created_at=_at(plan.events[0].at)
                )
                for plan in plans
            ]
        )
        conversations = Conversation.objects.bulk_create(
            [
                Conversation(number=self.number, contact=contact, created_at=contact.created_at)
                for contact in contacts
            ]
        )
        self.store.conversations = {conversation.pk: conversation for conversation in conversations}
        for plan, contact, conversation in zip(plans, contacts, conversations, strict=True):
            self.run_customer(plan, contact, conversation)
        with transaction.atomic():
            self.store.flush_rows()
            if self.outbox:
                Message.objects.bulk_create(self.outbox, batch_size=2000)
                self.outbox = []
            if not self.exact:
                Conversation.objects.bulk_update(conversations, CONVERSATION_FIELDS, batch_size=500)
            if self.notes:
                Note.objects.bulk_create(self.notes)
                self.notes = []
            self._fix_ticket_times()
            self.store.flush_counts()

    def _agent(self, event: Event, ticket: Any) -> Any:
        if event.who == -1 and ticket is not None and ticket.assignee_id in self.agents_by_id:
            return self.agents_by_id[ticket.assignee_id]
        return self.agents[event.pick % len(self.agents)]

    def run_customer(self, plan: CustomerPlan, contact: Any, conversation: Any) -> None:
        from conversations import actions as conversation_actions

        ticket: Any = None
        window_end: datetime | None = None
        previous: datetime | None = None
        replier: Any = None
        contacts = [{"profile": {"name": plan.name}, "wa_id": plan.wa_id}]
        for seq, event in enumerate(plan.events):
            at = _at(event.at)
            if ticket is not None and previous is not None:
                self._sweep(ticket, window_end, previous, at, inclusive=False)
            if event.kind == "in":
                message = {
                    "from": plan.wa_id,
                    "id": f"wamid.LOAD.{plan.index}.{seq}",
                    "timestamp": str(event.at),
                    "type": "text",
                    "text": {"body": event.text},
                }
                if self.exact:
                    stored = conversation_actions.do_receive_inbound(self.number, message, contacts)
                    assert stored is not None
                    ticket = stored.conversation.current_ticket
                else:
                    ticket = self._receive(conversation, contact, message, at)
                window_end = at + timedelta(hours=24)
                self._touch(ticket, at)
                self.messages += 1
            elif event.kind in ("out", "bot"):
                agent = self._agent(event, ticket) if event.kind == "out" else None
                if agent is not None:
                    replier = agent
                ticket = self._send(conversation, plan, seq, event, agent, at, ticket)
                self.messages += 1
            elif event.kind == "note":
                from conversations.models import Note

                author = self._agent(event, ticket)
                self.notes.append(
                    Note(
                        conversation_id=conversation.pk,
                        author_id=author.pk,
                        author_name=author.display_name,
                        text=event.text,
                        created_at=at,
                    )
                )
            elif event.kind in ("resolve", "priority") and ticket is not None:
                from tickets.actions import do_update_ticket

                # The agent who answered last resolves; a priority change is made by the assignee (or a colleague).
                actor = (
                    (replier or self._agent(event, ticket))
                    if event.kind == "resolve"
                    else self._agent(event, ticket)
                )
                before = (ticket.status, ticket.priority)
                if event.kind == "resolve":
                    ticket = do_update_ticket(ticket, actor, status="resolved", now=at)
                else:
                    ticket = do_update_ticket(ticket, actor, priority=event.priority, now=at)
                if (ticket.status, ticket.priority) != before:
                    self._touch(ticket, at)
            previous = at
        if ticket is not None and previous is not None:
            self._sweep(ticket, window_end, previous, self.end, inclusive=True)

    def _receive(self, conversation: Any, contact: Any, message: dict[str, Any], sent_at: datetime) -> Any:
        """do_receive_inbound for a known contact and conversation, with the message row written later."""
        from conversations import actions as conversation_actions
        from conversations.actions import describe_inbound
        from conversations.models import (
            Direction,
            Message,
            MessageStatus,
            SenderKind,
        )
        from tickets import actions as ticket_actions

        described = describe_inbound(message)
        stored = Message(
            conversation=conversation,
            direction=Direction.IN,
            type=described.type,
            text=described.text,
            content=message,
            status=MessageStatus.RECEIVED,
            wamid=message["id"],
            reply_to_wamid=described.reply_to_wamid,
            sender_kind=SenderKind.CUSTOMER,
            sender_name=contact.name,
            created_at=sent_at,
        )
        previous_window_end = conversation_actions.apply_inbound_to_conversation(conversation, stored)
        with transaction.atomic():
            ticket = ticket_actions.on_customer_message(conversation, stored, previous_window_end)
        self.outbox.append(stored)
        return ticket

    def _send(
        self,
        conversation: Any,
        plan: CustomerPlan,
        seq: int,
        event: Event,
        agent: Any,
        at: datetime,
        ticket: Any,
    ) -> Any:
        """What do_queue_outbound does, at a chosen moment, already delivered and read."""
        from conversations.actions import _preview
        from conversations.models import Conversation, Direction, Message, MessageStatus, SenderKind
        from tickets import actions as ticket_actions

        kind = SenderKind.AGENT if agent is not None else SenderKind.BOT
        if event.template:
            message_type, text = "template", "[template: follow_up]"
            content: dict[str, Any] = {"name": "follow_up", "language": {"code": "id"}}
        else:
            message_type, text, content = "text", event.text, {"body": event.text, "preview_url": False}
        fields = {
            "direction": Direction.OUT,
            "type": message_type,
            "text": text,
            "content": content,
            "status": MessageStatus.READ,
            "wamid": f"wamid.LOAD.{plan.index}.{seq}",
            "sender_kind": kind,
            "sender_user_id": agent.pk if agent else None,
            "sender_name": agent.display_name if agent else "",
            "created_at": at,
            "sent_at": at + timedelta(seconds=1),
            "delivered_at": at + timedelta(seconds=2),
            "read_at": at + timedelta(seconds=30),
        }
        waiting = ticket is not None and ticket.waiting_since is not None
        with transaction.atomic():
            if self.exact:
                locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
                message = Message.objects.create(conversation=locked, **fields)
            else:
                locked = conversation
                message = Message(conversation=locked, **fields)
                self.outbox.append(message)
            locked.last_message_at = at
            locked.last_message_preview = _preview(message)
            if kind == SenderKind.AGENT:
                locked.unread_count = 0
            if self.exact:
                locked.save()
            changed = ticket_actions.on_outbound_message(locked, message)
        if changed is not None:
            if waiting:
                self._touch(changed, at)
            return changed
        return ticket

    def _touch(self, ticket: Any, at: datetime) -> None:
        if ticket is not None:
            self.ticket_times[ticket.pk] = (ticket.opened_at, at)

    def _fix_ticket_times(self) -> None:
        """`created_at` / `updated_at` as they would have been live (the actions stamp the wall clock)."""
        if not self.ticket_times:
            return
        from tickets.models import Ticket

        rows = list(self.ticket_times.items())
        self.ticket_times = {}
        with connection.cursor() as cursor:
            for start in range(0, len(rows), 2000):
                part = rows[start : start + 2000]
                values = ", ".join(["(%s, %s::timestamptz, %s::timestamptz)"] * len(part))
                params: list[Any] = []
                for pk, (created, updated) in part:
                    params += [pk, created, updated]
                cursor.execute(
                    f"UPDATE {Ticket._meta.db_table} AS t SET created_at = v.created, updated_at = v.updated "  # noqa: S608
                    f"FROM (VALUES {values}) AS v(id, created, updated) WHERE t.id = v.id",
                    params,
                )

    # -- the deadline sweep, per ticket -------------------------------------------------------------------

    def _sweep(
        self, ticket: Any, window_end: datetime | None, after: datetime, before: datetime, inclusive: bool
    ) -> None:
        """Run the minute ticks of tickets.deadlines.raise_due_warnings that fall in (after, before) and have
        something due for this ticket. A tick between two of them changes nothing, so only these are run."""
        from tickets.models import TicketStatus

        if ticket.status not in (TicketStatus.OPEN, TicketStatus.PENDING):
            return
        due = [
            ticket.response_warn_at,
            ticket.response_due_at,
            ticket.resolution_warn_at,
            ticket.resolution_due_at,
        ]
        if window_end is not None:
            due += [window_end - self.warn_before, window_end]
        first_tick = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        ticks = sorted({max(_ceil_minute(moment), first_tick) for moment in due if moment is not None})
        for tick in ticks:
            if tick > before or (tick == before and not inclusive):
                break
            self._sweep_at(ticket, window_end, tick)

    def _sweep_at(self, ticket: Any, window_end: datetime | None, now: datetime) -> None:
        """tickets.deadlines.raise_due_warnings(now), for one ticket, without the live frames."""
        from tickets.models import TicketStatus

        if ticket.status not in (TicketStatus.OPEN, TicketStatus.PENDING):
            return
        with transaction.atomic():
            self._sweep_ticket(ticket, window_end, now)

    def _sweep_ticket(self, ticket: Any, window_end: datetime | None, now: datetime) -> None:
        from tickets import deadlines

        deadlines.sweep_ticket(self.rules, ticket, window_end, now)  # no notify: history has no live frames
