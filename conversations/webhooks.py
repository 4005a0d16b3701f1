"""Meta's webhooks: verify and store on arrival (`ingest`), then apply in batches (`process_pending_events`).

The request path does only what must happen before the 200: parse, find the numbers, check the signature
in constant time, insert the raw event. Everything else runs in a Celery worker, batch by batch, in the
schema of the tenant that owns each number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from conversations import actions
from conversations.models import AccountEvent
from helpdesk.tenancy.models import WebhookEvent, WhatsAppNumber

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class IngestResult:
    status: int
    detail: str
    event_id: int | None = None


def _ids_in(payload: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Phone-number ids named in `metadata`, and the WABA ids of entries with a change that names no number.

    Every change that `_plan` routes by WABA id must make that WABA's numbers sign the request: otherwise a
    change without `metadata`, riding in an entry beside a change signed for one tenant's number, would land
    in whichever tenant owns the entry's WABA id."""
    phone_number_ids: set[str] = set()
    waba_ids: set[str] = set()
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        numbers_here: set[str] = set()
        routed_by_waba = False
        for change in entry.get("changes") or []:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                continue
            metadata = change["value"].get("metadata")
            pnid = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if pnid:
                numbers_here.add(str(pnid))
            else:
                routed_by_waba = True
        phone_number_ids |= numbers_here
        if (routed_by_waba or not numbers_here) and entry.get("id"):
            waba_ids.add(str(entry["id"]))
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
    """Verify and durably store one webhook POST. Nothing is stored unless every number it names is ours
    and the signature matches the app secret of each of them."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        log.warning("webhook body is not JSON (%d bytes) - refused", len(body))
        return IngestResult(400, "The body is not valid JSON.")
    if not isinstance(payload, dict):
        log.warning("webhook body is JSON but not an object - refused")
        return IngestResult(400, "The body must be a JSON object.")
    phone_number_ids, waba_ids = _ids_in(payload)
    numbers = numbers_for(phone_number_ids, waba_ids)
    if not numbers:
        log.warning(
            "webhook for unknown numbers %s / accounts %s ignored", sorted(phone_number_ids), sorted(waba_ids)
        )
        return IngestResult(200, "No registered number; ignored.")
    secrets = {number.app_secret for number in numbers}
    if not all(signature_matches(secret, body, signature_header) for secret in secrets):
        log.warning(
            "webhook with a missing or wrong signature refused (numbers %s)", sorted(phone_number_ids)
        )
        return IngestResult(403, "Invalid or missing X-Hub-Signature-256.")
    unknown = phone_number_ids - {number.phone_number_id for number in numbers}
    if unknown:
        log.warning("webhook names unknown phone number ids %s; their changes are skipped", sorted(unknown))
    with transaction.atomic():
        event = WebhookEvent.objects.create(body=body.decode("utf-8"))
        transaction.on_commit(_enqueue_processing)
    return IngestResult(200, "Stored.", event.pk)


def _enqueue_processing() -> None:
    from conversations.tasks import process_webhook_events

    try:
        process_webhook_events.delay()
    except Exception:  # the event is stored; the periodic sweep picks it up
        log.exception("could not enqueue webhook processing")


# ------------------------------------------------------------------ processing


@dataclass
class TenantWork:
    """The changes of a batch that belong to one tenant, applied together in its schema."""

    schema_name: str
    event_ids: set[int] = field(default_factory=set)
    changes: list[tuple[WhatsAppNumber | None, str, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list
    )


def _plan(events: list[WebhookEvent]) -> dict[str, TenantWork]:
    """Split every entry / change of every event by tenant (routing by phone-number id, else WABA id)."""
    parsed = {event.pk: json.loads(event.body) for event in events}
    all_pnids: set[str] = set()
    all_wabas: set[str] = set()
    for payload in parsed.values():
        pnids, wabas = _ids_in(payload)
        all_pnids |= pnids
        all_wabas |= wabas
        all_wabas |= {str(entry.get("id")) for entry in payload.get("entry") or [] if isinstance(entry, dict)}
    numbers = numbers_for(all_pnids, all_wabas)
    by_pnid = {number.phone_number_id: number for number in numbers}
    by_waba: dict[str, list[WhatsAppNumber]] = defaultdict(list)
    for registered in numbers:
        by_waba[registered.waba_id].append(registered)
    plan: dict[str, TenantWork] = {}
    for event_id, payload in parsed.items():
        for entry in payload.get("entry") or []:
            if not isinstance(entry, dict):
                continue
            for change in entry.get("changes") or []:
                if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                    continue
                value = change["value"]
                pnid = str((value.get("metadata") or {}).get("phone_number_id") or "")
                number: WhatsAppNumber | None = by_pnid.get(pnid) if pnid else None
                account_numbers = (
                    [number] if number else ([] if pnid else by_waba.get(str(entry.get("id")), []))
                )
                if not account_numbers:
                    log.warning("change for unknown number %r / account %r skipped", pnid, entry.get("id"))
                    continue
                tenants_seen: set[str] = set()
                for owner in account_numbers:
                    schema = owner.tenant.schema_name
                    if schema in tenants_seen:
                        continue
                    tenants_seen.add(schema)
                    work = plan.setdefault(schema, TenantWork(schema))
                    work.event_ids.add(event_id)
                    work.changes.append((number, str(entry.get("id") or ""), change, entry))
    return plan


def _apply_change(
    number: WhatsAppNumber | None, waba_id: str, change: dict[str, Any], entry: dict[str, Any]
) -> None:
    value: dict[str, Any] = change["value"]
    field_name = str(change.get("field") or "")
    if field_name == "messages" and number is not None:
        contacts = [c for c in value.get("contacts") or [] if isinstance(c, dict)]
        for message in value.get("messages") or []:
            if isinstance(message, dict):
                actions.do_receive_inbound(number, message, contacts)
        for status in value.get("statuses") or []:
            if isinstance(status, dict):
                actions.do_apply_status(status)
        if value.get("errors"):
            _record_account_event(number, waba_id, "messages.errors", value, entry)
        return
    _record_account_event(number, waba_id, field_name, value, entry)


def _record_account_event(
    number: WhatsAppNumber | None, waba_id: str, field_name: str, value: dict[str, Any], entry: dict[str, Any]
) -> None:
    occurred = entry.get("time") or value.get("timestamp")
    AccountEvent.objects.create(
        number=number,
        waba_id=waba_id,
        field=field_name,
        event=str(value.get("event") or value.get("alert_type") or "")[:64],
        value=value,
        occurred_at=actions.from_unix(occurred) if occurred else timezone.now(),
    )
    log.info("account event %s %s for %s", field_name, value.get("event", ""), waba_id)


def process_pending_events(limit: int = 200) -> int:
    """Claim up to `limit` stored events, apply them tenant by tenant, and mark them processed.

    Concurrent workers skip each other's claimed rows. Tenants are handled in a fixed order (their inbox-event
    locks are then always taken in the same order). If a tenant's changes fail, its events are retried one by
    one so that one bad event cannot hold back the others; a failing event is kept with its error.
    """
    with transaction.atomic():
        events = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
            .order_by("pk")[:limit]
        )
        if not events:
            return 0
        failed: dict[int, str] = {}
        plan = _plan(events)
        for schema in sorted(plan):
            work = plan[schema]
            if _apply_tenant_work(work.schema_name, work.changes):
                continue
            for event_id in sorted(work.event_ids):
                single = [c for c in _plan([e for e in events if e.pk == event_id]).get(schema, work).changes]
                error = _apply_tenant_work(schema, single, return_error=True)
                if isinstance(error, str):
                    failed[event_id] = error
        now = timezone.now()
        done = [event.pk for event in events if event.pk not in failed]
        WebhookEvent.objects.filter(pk__in=done).update(processed_at=now, attempts=1, last_error="")
        for event in events:
            if event.pk in failed:
                event.attempts += 1
                event.last_error = failed[event.pk][:4000]
                event.save(update_fields=["attempts", "last_error"])
    return len(events)


def _apply_tenant_work(schema: str, changes: list[Any], return_error: bool = False) -> bool | str:
    try:
        with schema_context(schema), transaction.atomic():
            for number, waba_id, change, entry in changes:
                _apply_change(number, waba_id, change, entry)
    except Exception as exc:
        log.exception("webhook changes for %s failed", schema)
        return f"{type(exc).__name__}: {exc}" if return_error else False
    return True
