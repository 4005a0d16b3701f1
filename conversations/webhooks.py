"""Meta's webhooks: verify and store on arrival (`ingest`), then apply (`process_pending_events`).

The request path does only what must happen before the 200: check the body's shape, find the numbers, check
the signature in constant time, insert the raw event. Everything else runs in a Celery worker.

Applying is isolated: every change of an event is applied on its own, and every item of a change (a message,
a status) in its own transaction, so one bad item, change, event or tenant never stops the others. A change
that fails is recorded on its event with its error and retried with backoff (only that change); after the last
attempt the event is parked for the operator (`/operator/webhooks/`, `replay_webhook_events`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations import actions, events, inbound_batch, message_templates, number_health
from conversations.models import AccountEvent
from helpdesk.tenancy.models import WebhookEvent, WhatsAppNumber
from tickets import store as ticket_store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Retries of a failed change: 30 s, 2 min, 10 min, 1 h; then the event is parked.
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1))
CLAIM_FOR = timedelta(minutes=5)


@dataclass(frozen=True)
class IngestResult:
    status: int
    detail: str
    event_id: int | None = None
    code: str = ""


# ------------------------------------------------------------------ the envelope


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a list; anything else (a missing key, a number, a string) has none."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def envelope_problem(payload: Any) -> str | None:
    """What is wrong with the structure every webhook shares (`entry[].changes[]`), or None. Only the
    envelope is strict: odd values inside a change are the processor's to skip, item by item."""
    if not isinstance(payload, dict):
        return "The body must be a JSON object."
    entries = payload.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        return "`entry` must be a list of objects."
    for entry in entries:
        changes = entry.get("changes", [])
        if not isinstance(changes, list) or not all(isinstance(change, dict) for change in changes):
            return "`entry[].changes` must be a list of objects."
    return None


def parse_body(body: bytes) -> Any:
    """JSON, or ValueError. Deep nesting (100,000 `[`) is refused as invalid, not as a crash."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError as error:
        raise ValueError(str(error)) from None


def _metadata_pnid(change: dict[str, Any]) -> str:
    value = change.get("value")
    metadata = value.get("metadata") if isinstance(value, dict) else None
    pnid = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    return str(pnid) if isinstance(pnid, str | int) and not isinstance(pnid, bool) and pnid != "" else ""


def _entry_id(entry: dict[str, Any]) -> str:
    value = entry.get("id")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _ids_in(payload: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Phone-number ids named in `metadata`, and the WABA ids of entries with a change that names no number.

    Every change that `_plan` routes by WABA id must make that WABA's numbers sign the request: otherwise a
    change without `metadata`, riding in an entry beside a change signed for one tenant's number, would land
    in whichever tenant owns the entry's WABA id."""
    phone_number_ids: set[str] = set()
    waba_ids: set[str] = set()
    for entry in _dicts(payload.get("entry")):
        numbers_here = {pnid for change in _dicts(entry.get("changes")) if (pnid := _metadata_pnid(change))}
        routed_by_waba = any(not _metadata_pnid(change) for change in _dicts(entry.get("changes")))
        phone_number_ids |= numbers_here
        if (routed_by_waba or not numbers_here) and _entry_id(entry):
            waba_ids.add(_entry_id(entry))
    return phone_number_ids, waba_ids


def numbers_for(phone_number_ids: set[str], waba_ids: set[str]) -> list[WhatsAppNumber]:
    if not phone_number_ids and not waba_ids:
        return []
    query = Q(phone_number_id__in=phone_number_ids) | Q(waba_id__in=waba_ids)
    return list(WhatsAppNumber.objects.filter(query).select_related("tenant"))


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def ingest(body: bytes, signature_header: str | None) -> IngestResult:
    """Verify and durably store one webhook POST. Nothing is stored unless the shape is right, every number it
    names is ours and the signature matches the app secret of each of them."""
    try:
        payload = parse_body(body)
    except ValueError:
        log.warning("webhook body is not JSON (%d bytes) - refused", len(body))
        return IngestResult(400, "The body is not valid JSON.", code="invalid_json")
    problem = envelope_problem(payload)
    if problem:
        log.warning("webhook body refused: %s", problem)
        return IngestResult(400, problem, code="invalid_shape")
    phone_number_ids, waba_ids = _ids_in(payload)
    signers = signers_for(phone_number_ids, waba_ids)
    if not signers:
        log.warning(
            "webhook for unknown numbers %s / accounts %s ignored", sorted(phone_number_ids), sorted(waba_ids)
        )
        return IngestResult(200, "No registered number; ignored.")
    if not all(signature_matches(secret, body, signature_header) for secret in set(signers.values())):
        log.warning(
            "webhook with a missing or wrong signature refused (numbers %s)", sorted(phone_number_ids)
        )
        return IngestResult(403, "Invalid or missing X-Hub-Signature-256.", code="invalid_signature")
    unknown = phone_number_ids - signers.keys()
    if unknown:
        log.warning("webhook names unknown phone number ids %s; their changes are skipped", sorted(unknown))
    event = WebhookEvent.objects.create(body=body.decode("utf-8"))  # one statement: committed on its own
    transaction.on_commit(_enqueue_processing)  # at once, or when the caller's transaction commits
    return IngestResult(200, "Stored.", event.pk)


# The app secrets of the numbers a webhook names, kept by each process for a few seconds: the lookup (and the
# secret's decryption) was a fifth of a webhook's cost. A number added is found at once (an unknown id is
# looked up every time); a secret changed or a number removed is seen by other processes within
# SIGNERS_CACHE_SECONDS (this process forgets at once), and the applier resolves numbers afresh anyway.
SIGNERS_CACHE_SECONDS = 5.0
_signers: dict[tuple[frozenset[str], frozenset[str]], tuple[float, dict[str, str]]] = {}


def signers_for(phone_number_ids: set[str], waba_ids: set[str]) -> dict[str, str]:
    """App secret by phone-number id of every registered number these ids name (empty: none is ours)."""
    key = (frozenset(phone_number_ids), frozenset(waba_ids))
    now = time.monotonic()
    cached = _signers.get(key)
    if cached and cached[0] > now:
        return cached[1]
    signers = {
        number.phone_number_id: number.app_secret for number in numbers_for(phone_number_ids, waba_ids)
    }
    if signers:
        if len(_signers) >= 10_000:
            _signers.clear()
        _signers[key] = (now + SIGNERS_CACHE_SECONDS, signers)
    return signers


def forget_signers(**_: Any) -> None:
    """A number was saved or removed: this process looks its secret up again (conversations.apps)."""
    _signers.clear()


# While this key exists a processing task is queued or running: a burst of webhooks wakes one task, which
# works in batches until nothing is left, instead of queueing a task per webhook. It expires by itself, should
# a worker die holding it (a running task renews it); the beat sweep picks up anything left meanwhile.
WAKE_KEY = "helpdesk:webhooks:wake"
WAKE_EXPIRES_SECONDS = 60
# Every stored webhook also leaves a token here (one at most): the running task waits on it between batches
# (BLPOP) for `WEBHOOK_APPLIER_LINGER_SECONDS`, so under steady traffic a batch starts as soon as the previous
# one ends, without a Celery round trip per wake-up.
WAKE_LIST = "helpdesk:webhooks:arrived"
# A task gives up the key after this long even under steady traffic (the next webhook wakes a fresh one), so a
# worker slot is never held for good.
MAX_TASK_SECONDS = 300.0


def _redis() -> redis.Redis:
    global _redis_client
    if _redis_client is None:
        # Long enough for the applier's wait on the token list (BLPOP) to end by itself.
        timeout = 5 + settings.WEBHOOK_APPLIER_LINGER_SECONDS
        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout)
    return _redis_client


_redis_client: redis.Redis | None = None


def _enqueue_processing() -> None:
    from conversations.tasks import process_webhook_events

    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.set(WAKE_KEY, "1", nx=True, ex=WAKE_EXPIRES_SECONDS)
        pipe.rpush(WAKE_LIST, "1")
        pipe.ltrim(WAKE_LIST, -1, -1)
        if pipe.execute()[0]:
            process_webhook_events.delay()
    except Exception:  # the event is stored; the periodic sweep picks it up
        log.exception("could not enqueue webhook processing")


def process_until_done(limit: int = 200, linger: float | None = None) -> int:
    """The woken task: apply due events in batches until none is left, wait up to `linger` seconds for more
    (default WEBHOOK_APPLIER_LINGER_SECONDS), then give up the wake key so that the next webhook wakes a new
    task. Looking once more after giving up the key closes the gap: an event stored after that look sets the key
    again and queues a task of its own."""
    if linger is None:
        linger = settings.WEBHOOK_APPLIER_LINGER_SECONDS
    stop_at = time.monotonic() + MAX_TASK_SECONDS
    total = 0
    try:
        total += drain(limit)
        while linger > 0 and time.monotonic() < stop_at and _more_arrived(linger):
            total += drain(limit)
    finally:  # even when this task fails, the next webhook wakes another
        _clear_wake_key()
    return total + drain(limit)


def drain(limit: int = 200) -> int:
    """Apply due events in batches until a batch comes back short. Returns how many events were claimed."""
    total = 0
    while (processed := process_pending_events(limit)) == limit:  # a full batch: more may wait
        total += processed
    return total + processed


def _more_arrived(wait_seconds: float) -> bool:
    """Whether a webhook was stored since the last look, waiting up to `wait_seconds`; renews the wake key."""
    try:
        arrived = _redis().blpop([WAKE_LIST], timeout=wait_seconds) is not None
        if arrived:
            _redis().expire(WAKE_KEY, WAKE_EXPIRES_SECONDS)
        return arrived
    except Exception:
        log.exception("could not wait for webhooks (the next one wakes a new task)")
        return False


def _clear_wake_key() -> None:
    try:
        _redis().delete(WAKE_KEY)
    except Exception:
        log.exception("could not clear the webhook wake key (it expires by itself)")


# ------------------------------------------------------------------ processing


@dataclass(frozen=True)
class ChangeWork:
    """One change of an event, for one tenant: applied on its own, recorded on its event if it fails."""

    key: str  # "<entry index>.<change index>", stable across retries
    schema_name: str
    number: WhatsAppNumber | None
    waba_id: str
    field: str
    value: dict[str, Any]
    entry_time: Any


def without_nul(value: Any) -> Any:
    """The payload without NUL characters, which PostgreSQL text and jsonb cannot hold (the raw body keeps
    them)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    return value


def _plan(payload: Any, numbers: list[WhatsAppNumber]) -> list[ChangeWork]:
    """Every change of one event, routed to the tenant of its number (by phone-number id, else WABA id)."""
    by_pnid = {number.phone_number_id: number for number in numbers}
    by_waba: dict[str, list[WhatsAppNumber]] = {}
    for registered in numbers:
        by_waba.setdefault(registered.waba_id, []).append(registered)
    work: list[ChangeWork] = []
    for entry_index, entry in enumerate(_dicts(payload.get("entry"))):
        waba_id = _entry_id(entry)
        for change_index, change in enumerate(_dicts(entry.get("changes"))):
            key = f"{entry_index}.{change_index}"
            field = change.get("field")
            value = change.get("value")
            if not isinstance(field, str) or not field:
                log.warning("change %s without `field` skipped: %.300s", key, change)
                continue
            if not isinstance(value, dict):
                log.warning("change %s (%s) without a `value` object skipped", key, field)
                continue
            pnid = _metadata_pnid(change)
            number = by_pnid.get(pnid) if pnid else None
            owners = [number] if number else ([] if pnid else by_waba.get(waba_id, []))
            if not owners:
                log.warning("change %s for unknown number %r / account %r skipped", key, pnid, waba_id)
                continue
            for schema_name in sorted({owner.tenant.schema_name for owner in owners}):
                work.append(ChangeWork(key, schema_name, number, waba_id, field, value, entry.get("time")))
    return work


def _claim(limit: int) -> list[WebhookEvent]:
    """Take up to `limit` due events for this worker (other workers skip them until the claim runs out): one
    UPDATE, committed on its own.

    The pending index keeps an entry for every applied event until VACUUM comes by, and a bitmap scan (the
    planner's choice for "a few rows") visits them all on every claim: 4 ms and growing under load. An index
    scan marks the dead entries as it passes them, so the next claim skips them: 0.2 ms."""
    now = timezone.now()
    table = WebhookEvent._meta.db_table
    columns = ", ".join(
        connection.ops.quote_name(str(field.column)) for field in WebhookEvent._meta.concrete_fields
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        claimed = list(
            WebhookEvent.objects.raw(
                f"UPDATE {table} SET claimed_until = %s WHERE id IN ("  # noqa: S608 (the model's own names)
                f"  SELECT id FROM {table} WHERE processed_at IS NULL AND parked_at IS NULL"
                "   AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
                "   AND (claimed_until IS NULL OR claimed_until < %s)"
                "   ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
                f") RETURNING {columns}",
                [now + CLAIM_FOR, now, now, limit],
            )
        )
    return sorted(claimed, key=lambda event: event.pk)


def _load(event: WebhookEvent) -> Any:
    """The stored body as JSON without NULs; None if it cannot be read (recorded as the event's failure)."""
    try:
        return without_nul(parse_body(event.body.encode()))
    except ValueError:
        return None


def _numbers_of(payloads: list[Any]) -> list[WhatsAppNumber]:
    """One lookup for every number and account the payloads name."""
    pnids: set[str] = set()
    wabas: set[str] = set()
    for payload in payloads:
        if isinstance(payload, dict):
            pnids |= _ids_in(payload)[0]
            wabas |= {_entry_id(entry) for entry in _dicts(payload.get("entry")) if _entry_id(entry)}
    return numbers_for(pnids, wabas)


def process_pending_events(limit: int = 200) -> int:
    """Claim up to `limit` due events and apply them: each tenant's changes in one batch (`apply_batch`).
    Returns how many events were claimed."""
    events = _claim(limit)
    if not events:
        return 0
    payloads = {event.pk: _load(event) for event in events}
    numbers = _numbers_of(list(payloads.values()))
    failures: dict[int, list[dict[str, Any]]] = {}
    by_tenant: dict[str, list[tuple[WebhookEvent, ChangeWork]]] = {}
    for event in events:
        work, failures[event.pk] = _work_of(event, payloads[event.pk], numbers)
        for change in work:
            by_tenant.setdefault(change.schema_name, []).append((event, change))
    for schema_name in sorted(by_tenant):
        for (event, change), error in apply_batch(schema_name, by_tenant[schema_name]):
            failures[event.pk].append(_failure(change.key, change.schema_name, change.field, error))
    _record_outcomes(events, failures)
    return len(events)


def process_event(event: WebhookEvent, payload: Any, numbers: list[WhatsAppNumber]) -> list[dict[str, Any]]:
    """Apply one event's changes (on a retry: only those that failed before) and record the outcome."""
    work, failures = _work_of(event, payload, numbers)
    for change in work:
        for (_, failed), error in apply_batch(change.schema_name, [(event, change)]):
            failures.append(_failure(failed.key, failed.schema_name, failed.field, error))
    _record_outcomes([event], {event.pk: failures})
    return failures


def _work_of(
    event: WebhookEvent, payload: Any, numbers: list[WhatsAppNumber]
) -> tuple[list[ChangeWork], list[dict[str, Any]]]:
    """The changes of an event still to apply (on a retry: only those that failed before), and the failures of
    an event that cannot be planned at all."""
    if envelope_problem(payload):
        return [], [_failure("*", "", "", "The stored body is not a webhook envelope.")]
    try:
        work = _plan(payload, numbers)
    except Exception as exc:  # a shape nobody foresaw: this event waits for a fix, the others go on
        log.exception("planning webhook event %s failed", event.pk)
        return [], [_failure("*", "", "", f"{type(exc).__name__}: {exc}")]
    if event.failures:
        retry_only = {failure.get("key") for failure in event.failures}
        work = [change for change in work if change.key in retry_only]
    return work, []


def _failure(key: str, tenant: str, field: str, error: str) -> dict[str, Any]:
    return {"key": key, "tenant": tenant, "field": field, "error": error[:2000]}


def _record_outcomes(events: list[WebhookEvent], failures: dict[int, list[dict[str, Any]]]) -> None:
    """Mark the events applied (one statement for all that succeeded at the same attempt), or record their
    failures for a retry with backoff, parking those out of attempts."""
    now = timezone.now()
    applied: dict[int, list[int]] = {}  # attempts so far -> events
    for event in events:
        if failures.get(event.pk):
            _record_failure(event, failures[event.pk], now)
        else:
            applied.setdefault(event.attempts, []).append(event.pk)
    for attempts, ids in applied.items():
        WebhookEvent.objects.filter(pk__in=ids).update(
            processed_at=now, attempts=attempts + 1, claimed_until=None, failures=[], last_error=""
        )


def _record_failure(event: WebhookEvent, failures: list[dict[str, Any]], now: datetime) -> None:
    first_seen = {failure.get("key"): failure.get("first_seen") for failure in event.failures}
    for failure in failures:
        failure["first_seen"] = first_seen.get(failure["key"]) or now.isoformat()
    attempts = event.attempts + 1
    parked = attempts >= MAX_ATTEMPTS
    WebhookEvent.objects.filter(pk=event.pk).update(
        attempts=attempts,
        claimed_until=None,
        failures=failures,
        last_error="; ".join(f"{f['tenant'] or '?'} {f['field'] or '?'}: {f['error']}" for f in failures)[
            :4000
        ],
        first_failed_at=event.first_failed_at or now,
        next_attempt_at=None if parked else now + RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1],
        parked_at=now if parked else None,
    )
    log.warning(
        "webhook event %s: %d change(s) failed (attempt %d)%s",
        event.pk,
        len(failures),
        attempts,
        "; parked for the operator" if parked else "",
    )


Batch = list[tuple[WebhookEvent, ChangeWork]]


def apply_batch(schema_name: str, batch: Batch) -> list[tuple[tuple[WebhookEvent, ChangeWork], str]]:
    """Apply one tenant's changes, in order, in one transaction: every item in a savepoint of its own (a bad
    item rolls back alone and is reported), counters and inbox events written once at the end. One applier
    per tenant at a time (an advisory lock), so batches never wait on each other's rows. Should the batch
    itself fail (a deadlock, a lost connection), every change is applied again item by item in transactions
    of its own, as if there were no batch. Returns the changes that failed, with their errors."""
    failed: list[tuple[tuple[WebhookEvent, ChangeWork], str]] = []
    with schema_context(schema_name):
        try:
            with transaction.atomic():
                _lock_applier(schema_name)
                with (
                    events.buffered() as event_buffer,
                    ticket_store.using(ticket_store.BatchStore()) as counts,
                ):
                    buffers = Buffers(event_buffer, counts)
                    handled = Handled(
                        _apply_plain_messages(schema_name, batch, buffers),
                        _apply_statuses(schema_name, batch, buffers),
                    )
                    for item in batch:
                        error = apply_change(item[1], item[0].received_at, buffers, handled)
                        if error:
                            failed.append((item, error))
                    counts.flush()  # the lock order: counters after every conversation, events last
                    event_buffer.flush()
            return failed
        except Exception:
            log.exception(
                "webhook batch of %d changes in %s failed; applying them one by one", len(batch), schema_name
            )
        failed = []
        for item in batch:
            try:
                error = apply_change(item[1], item[0].received_at)
            except Exception as exc:  # a shape nobody foresaw: recorded on its event like any failure
                log.exception("webhook change %s in %s failed", item[1].key, schema_name)
                error = f"{type(exc).__name__}: {exc}"
            if error:
                failed.append((item, error))
    return failed


@dataclass(frozen=True)
class Buffers:
    """What a batch writes at its end: its inbox events and its counts."""

    events: events.EventBuffer
    counts: ticket_store.BatchStore

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A savepoint whose buffered events and counts go with it when it rolls back."""
        checkpoint = (self.events.checkpoint(), self.counts.checkpoint())
        try:
            with transaction.atomic():
                yield
        except BaseException:
            self.events.rollback_to(checkpoint[0])
            self.counts.rollback_to(checkpoint[1])
            raise


@dataclass(frozen=True)
class Handled:
    """What the batch's bulk steps applied: messages by wamid, statuses by the identity (`id()`) of their
    object in the parsed payload (a status has no id of its own)."""

    wamids: set[str] = field(default_factory=set)
    statuses: set[int] = field(default_factory=set)


def _apply_plain_messages(schema_name: str, batch: Batch, buffers: Buffers) -> set[str]:
    """The batch's plain customer messages, all at once (conversations.inbound_batch), in a savepoint of their
    own. Returns the wamids it took care of; should it fail, none: they are then applied one by one."""
    plain = [
        inbound_batch.Inbound(change.number, message, contacts, event.received_at)
        for event, change in batch
        if change.field == "messages" and change.number is not None
        for contacts in [_dicts(change.value.get("contacts"))]
        for message in _dicts(change.value.get("messages"))
        if inbound_batch.is_plain(message, contacts)
    ]
    if not plain:
        return set()
    try:
        with buffers.savepoint():
            later = inbound_batch.do_receive_inbound_batch(plain)
    except Exception:
        log.exception(
            "%d messages in %s could not be stored at once; one by one instead", len(plain), schema_name
        )
        return set()
    return {actions._id(item.message.get("id")) for item in plain} - {
        actions._id(item.message.get("id")) for item in later
    }


def _apply_statuses(schema_name: str, batch: Batch, buffers: Buffers) -> set[int]:
    """The batch's delivery statuses, all at once, in a savepoint of their own. Returns the ids (`id()`) of
    the status objects it applied; should it fail, none: they are then applied one by one."""
    statuses = [
        (status, event.received_at)
        for event, change in batch
        if change.field == "messages" and change.number is not None
        for status in _dicts(change.value.get("statuses"))
    ]
    if not statuses:
        return set()
    try:
        with buffers.savepoint():
            later = inbound_batch.do_apply_statuses(statuses)
    except Exception:
        log.exception(
            "%d statuses in %s could not be applied at once; one by one instead", len(statuses), schema_name
        )
        return set()
    return {id(status) for status, _ in statuses} - {id(status) for status, _ in later}


def _lock_applier(schema_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [schema_name + ".webhook_apply"])


def apply_change(
    change: ChangeWork,
    received_at: datetime,
    batch: Buffers | None = None,
    handled: Handled | None = None,
) -> str | None:
    """Apply one change in the current tenant's schema, every item in a transaction of its own (inside a
    batch: a savepoint of its own, whose buffered events and counts go with it on a rollback), so that one bad
    item never loses the others; what is in `handled` was applied by the batch's bulk steps.
    Returns the error of the items that failed, or None."""
    errors: list[str] = []
    handled = handled or Handled()

    def attempt(what: str, apply: Any, *args: Any) -> None:
        try:
            with batch.savepoint() if batch else transaction.atomic():
                apply(*args)
        except Exception as exc:
            log.exception("webhook %s in %s failed", what, change.schema_name)
            errors.append(f"{what}: {type(exc).__name__}: {exc}")

    value = change.value
    context = actions.Receipt(number=change.number, received_at=received_at)
    if change.field == "messages" and change.number is not None:
        contacts = _dicts(value.get("contacts"))
        messages = value.get("messages")
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict) and actions._id(message.get("id")) in handled.wamids:
                continue
            if isinstance(message, dict):
                attempt("message", actions.do_receive_inbound, change.number, message, contacts, received_at)
            else:
                log.warning("message item that is not an object skipped: %.200r", message)
        for status in _dicts(value.get("statuses")):
            if id(status) not in handled.statuses:
                attempt("status", actions.do_apply_status, status, received_at)
        if value.get("errors"):
            attempt("errors", _record_account_event, change, "messages.errors")
    elif change.field == "smb_message_echoes" and change.number is not None:
        for echo in _dicts(value.get("message_echoes")):
            attempt("echo", actions.do_receive_echo, context, echo)
    elif change.field == "history" and change.number is not None:
        for chunk in _dicts(value.get("history")):
            for thread in _dicts(chunk.get("threads")):
                attempt("history thread", actions.do_import_history_thread, context, thread)
    elif change.field == "user_preferences":
        for preference in _dicts(value.get("user_preferences")):
            attempt("user preference", actions.do_set_marketing_preference, context, preference)
        attempt("account event", _record_account_event, change, change.field)  # the raw record
    else:
        attempt("account event", _apply_account_change, change)
    return "; ".join(errors) if errors else None


def _record_account_event(
    change: ChangeWork, field_name: str, number: WhatsAppNumber | None = None
) -> AccountEvent | None:
    value = change.value
    occurred = actions.timestamp_or_none(change.entry_time) or actions.timestamp_or_none(
        value.get("timestamp")
    )
    return actions.do_record_account_event(
        number or change.number,
        change.waba_id,
        field_name,
        value,
        occurred_at=occurred or timezone.now(),
        digest_source=[field_name, change.waba_id, change.entry_time, value],
    )


def _apply_account_change(change: ChangeWork) -> None:
    """An account-level change: kept in the health history once (a redelivery changes nothing more), then
    what it means for the number (limits, alerts) or the template it names."""
    numbers = (
        [change.number]
        if change.number
        else list(
            WhatsAppNumber.objects.filter(tenant__schema_name=change.schema_name, waba_id=change.waba_id)
        )
    )
    # A number-level event without metadata names its number by display number.
    display = "".join(ch for ch in str(change.value.get("display_phone_number") or "") if ch.isdigit())
    named = [n for n in numbers if n.display_number == display] if display else []
    number = named[0] if len(named) == 1 else None
    event = _record_account_event(change, change.field, number)
    if event is None:
        return
    if change.field in message_templates.TEMPLATE_FIELDS:
        message_templates.apply_template_webhook(change.field, change.waba_id, change.value, numbers)
    elif change.field in number_health.HEALTH_FIELDS:
        number_health.apply_health_webhook(event, [number] if number else numbers)


# ------------------------------------------------------------------ the operator's view


def parked_events(tenant: str | None = None, since: datetime | None = None) -> Any:
    """Parked events, oldest first; `tenant` keeps those with a failure in that tenant."""
    events = WebhookEvent.objects.filter(parked_at__isnull=False).order_by("pk")
    if tenant:
        events = events.filter(failures__contains=[{"tenant": tenant}])
    if since:
        events = events.filter(received_at__gte=since)
    return events


def replay(events: Any) -> tuple[int, int]:
    """Un-park `events` and apply them now (a failure starts a new round of retries). Returns (applied,
    failed again)."""
    ids = list(events.values_list("pk", flat=True))
    WebhookEvent.objects.filter(pk__in=ids).update(
        parked_at=None, attempts=0, next_attempt_at=None, claimed_until=None
    )
    applied = failed = 0
    for event in WebhookEvent.objects.filter(pk__in=ids).order_by("pk"):
        payload = _load(event)
        if process_event(event, payload, _numbers_of([payload])):
            failed += 1
        else:
            applied += 1
    return applied, failed
