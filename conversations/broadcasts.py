"""Broadcasts: one approved template to an audience, sent so that it cannot hurt the number.

- Every recipient is a row (`BroadcastRecipient`) before anything is sent, with the first reason it is skipped,
  in this order: invalid_number, duplicate (counted on the broadcast: the same number is one recipient),
  opted_out, marketing_stopped (Meta's preference), no_opt_in, frequency_cap. The preview computes the same.
- The runner (`run_slice`, a Celery task on the `broadcasts` queue) claims queued rows (SKIP LOCKED), reserves
  a send slot of the number's pace shared by every worker (conversations/pacing.py), keeps the outbound message
  first and then sends it, with `biz_opaque_callback_data` naming the row: a worker killed between Meta's answer
  and our bookkeeping leaves a `sending` row whose status webhook still finds it (`claim_of_status`), so the
  sweeper resends only rows Meta never saw (after `INTERRUPTED_GRACE`).
- It pauses itself, saying why: the number turned RED, was restricted or is to be disabled (number_health calls
  `do_pause_for_number`), its template was paused or disabled, or its failures passed the tenant's threshold.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from conversations import graph_api, message_templates, pacing, phones
from conversations.actions import ActionError, do_queue_outbound
from conversations.events import record_event
from conversations.models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    Contact,
    Conversation,
    ConversationStatus,
    Guardrails,
    HealthAlert,
    Label,
    MarketingPreference,
    Message,
    MessageStatus,
    MessageTemplate,
    PendingStatus,
    RecipientStatus,
    SenderKind,
)
from helpdesk.tenancy.access import current_schema, current_tenant
from helpdesk.tenancy.models import WhatsAppNumber

log = logging.getLogger(__name__)

REASONS = ("invalid_number", "duplicate", "opted_out", "marketing_stopped", "no_opt_in", "frequency_cap")
AUDIENCE_KEYS = ("labels", "contacts", "wa_ids")
MAX_AUDIENCE = 100_000
SLICE_SECONDS = 2.0  # a runner gives its worker back this often: replies never wait long behind a broadcast
CLAIM_BATCH = 20
INTERRUPTED_GRACE = timedelta(minutes=2)  # a `sending` row older than this, unseen by Meta, is sent again
THROTTLED = {
    130429: 2.0,
    131056: 6.0,
}  # Meta said too fast (per number / per recipient pair): back off, retry
PLACEHOLDER = re.compile(r"\{\{\s*contact\.(name|wa_id|attributes\.([\w.\- ]{1,64}))\s*\}\}")
PAUSING_ALERTS = {"violation", "disable"}


class BroadcastError(ActionError):
    def __init__(self, message: str, code: str = "invalid", http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


# ------------------------------------------------------------------ creating


def check_create_broadcast(user_id: int | None, data: Any) -> Broadcast:
    """A draft from `{"name", "number", "template": {"name", "language", "components"}, "audience",
    "scheduled_at"}`; refused with a `code` when anything does not fit (nothing is stored then)."""
    if not isinstance(data, dict):
        raise BroadcastError(_("A broadcast is a JSON object."))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BroadcastError(_("A broadcast needs a name of 1 to 200 characters."))
    number = _number(data.get("number"))
    spec = data.get("template")
    if not isinstance(spec, dict):
        raise BroadcastError(
            _('`template` is an object: {"name", "language", "components"}.'), "invalid_template"
        )
    template = message_templates.find_sendable(number.waba_id, spec.get("name"), spec.get("language"))
    components = spec.get("components") or []
    # The parameters fit the template (each recipient's own values are filled in when it is sent).
    message_templates.fill(template, _stand_ins(components))
    audience = _audience(data.get("audience"))
    scheduled_at = _moment(data.get("scheduled_at"))
    return Broadcast.objects.create(
        name=name.strip(),
        number=number,
        template_name=template.name,
        template_language=template.language,
        components=components,
        category=template.category,
        audience=audience,
        scheduled_at=scheduled_at,
        created_by_id=user_id,
    )


def _number(raw: Any) -> WhatsAppNumber:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise BroadcastError(_("`number` is the id of one of the helpdesk's numbers."))
    number = WhatsAppNumber.objects.filter(pk=raw, tenant=current_tenant()).first()
    if number is None:
        raise BroadcastError(_("`number` is the id of one of the helpdesk's numbers."))
    return number


def _ids(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise BroadcastError(_("`audience.%(key)s` is a list of ids.") % {"key": name})
    return list(dict.fromkeys(value))


def _audience(value: Any) -> dict[str, list[Any]]:
    if not isinstance(value, dict) or not any(value.get(key) for key in AUDIENCE_KEYS):
        raise BroadcastError(_("`audience` names labels, contacts or wa_ids (any one is enough)."))
    unknown = set(value) - set(AUDIENCE_KEYS)
    if unknown:
        raise BroadcastError(_("Unknown audience: %(keys)s.") % {"keys": ", ".join(sorted(unknown))})
    labels, contacts = _ids(value.get("labels", []), "labels"), _ids(value.get("contacts", []), "contacts")
    wa_ids = value.get("wa_ids", [])
    if not isinstance(wa_ids, list) or not all(
        isinstance(w, str | int) and not isinstance(w, bool) for w in wa_ids
    ):
        raise BroadcastError(_("`audience.wa_ids` is a list of phone numbers."))
    if len(wa_ids) + len(contacts) > MAX_AUDIENCE:
        raise BroadcastError(_("A broadcast reaches at most %(n)s people.") % {"n": MAX_AUDIENCE})
    missing = set(labels) - set(Label.objects.filter(pk__in=labels).values_list("pk", flat=True))
    if missing:
        raise BroadcastError(_("There is no label %(id)s.") % {"id": min(missing)}, "unknown_label")
    return {"labels": labels, "contacts": contacts, "wa_ids": [str(w)[:64] for w in wa_ids]}


def _moment(value: Any) -> datetime | None:
    """An ISO time; without an offset, in the helpdesk's time zone."""
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise BroadcastError(_("`scheduled_at` is a date and time, e.g. 2026-12-24T09:00."))
    if timezone.is_naive(parsed):
        tenant = current_tenant()
        parsed = parsed.replace(tzinfo=ZoneInfo(tenant.timezone_name if tenant else "UTC"))
    return parsed


def _stand_ins(components: Any) -> Any:
    return json.loads(PLACEHOLDER.sub("x", json.dumps(components))) if components else components


def personalize(components: Any, contact: Contact | None, wa_id: str) -> Any:
    """The template's parameters with {{contact.name}}, {{contact.wa_id}} and {{contact.attributes.KEY}} filled
    for one recipient (an unknown value is left empty)."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) == "name":
            return (contact.name if contact else "") or ""
        if match.group(1) == "wa_id":
            return wa_id
        return str(((contact.attributes or {}) if contact else {}).get(match.group(2).strip(), ""))

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return PLACEHOLDER.sub(value, item)
        if isinstance(item, list):
            return [walk(part) for part in item]
        if isinstance(item, dict):
            return {key: walk(part) for key, part in item.items()}
        return item

    return walk(components)


# ------------------------------------------------------------------ who gets it


@dataclass
class Plan:
    rows: list[BroadcastRecipient] = field(default_factory=list)
    duplicates: int = 0

    def skipped(self) -> dict[str, int]:
        counts = dict.fromkeys(REASONS, 0)
        for row in self.rows:
            if row.reason:
                counts[row.reason] += 1
        counts["duplicate"] += self.duplicates
        return counts


def plan(broadcast: Broadcast, now: datetime | None = None) -> Plan:
    """Every recipient of the audience with the first reason it is skipped (the preview and the start)."""
    now = now or timezone.now()
    audience = broadcast.audience or {}
    contacts = Contact.objects.filter(number=broadcast.number)
    picked: list[tuple[str, Contact | None]] = []
    if audience.get("labels"):
        picked += [(c.wa_id, c) for c in contacts.filter(labels__overlap=audience["labels"]).order_by("pk")]
    if audience.get("contacts"):
        picked += [(c.wa_id, c) for c in contacts.filter(pk__in=audience["contacts"]).order_by("pk")]
    given = [(str(raw), phones.wa_id_of(str(raw))) for raw in audience.get("wa_ids") or []]
    known = {c.wa_id: c for c in contacts.filter(wa_id__in=[w for _, w in given if w])}
    result = Plan()
    seen: set[str] = set()
    for raw, wa_id in given:
        picked.append((wa_id or "", known.get(wa_id or "")) if wa_id else (f"invalid:{raw}", None))
    rules = Guardrails.current()
    marketing = counts_as_marketing(broadcast)
    capped = _capped_contacts(broadcast, rules, now, marketing)
    for wa_id, contact in picked:
        if wa_id in seen:
            result.duplicates += 1
            continue
        seen.add(wa_id)
        reason = _reason(broadcast, wa_id, contact, capped, marketing)
        shown = wa_id.removeprefix("invalid:")
        result.rows.append(
            BroadcastRecipient(
                broadcast=broadcast,
                contact=contact,
                wa_id=shown[:256],
                status=RecipientStatus.SKIPPED if reason else RecipientStatus.QUEUED,
                reason=reason,
            )
        )
    return result


def counts_as_marketing(broadcast: Broadcast) -> bool:
    """The guardrails of marketing apply when Meta or the business ever called the template marketing: a
    re-categorisation away from marketing does not make a promotion welcome more often."""
    if broadcast.category == "MARKETING":
        return True
    return MessageTemplate.objects.filter(
        waba_id=broadcast.number.waba_id,
        name=broadcast.template_name,
        language=broadcast.template_language,
        previous_category="MARKETING",
    ).exists()


def _reason(
    broadcast: Broadcast, wa_id: str, contact: Contact | None, capped: set[int], marketing: bool
) -> str:
    if wa_id.startswith("invalid:") or not wa_id or (contact is None and phones.wa_id_of(wa_id) is None):
        return "invalid_number"
    if contact is not None and contact.opted_out_at is not None:
        return "opted_out"
    if marketing and contact is not None and contact.marketing == MarketingPreference.STOP:
        return "marketing_stopped"
    if contact is None or contact.opted_in_at is None:
        return "no_opt_in"
    if contact.pk in capped:
        return "frequency_cap"
    return ""


def _capped_contacts(broadcast: Broadcast, rules: Guardrails, now: datetime, marketing: bool) -> set[int]:
    """Contacts another broadcast reached within the frequency cap (marketing; utility too when asked)."""
    applies = marketing or (broadcast.category == "UTILITY" and rules.frequency_cap_utility)
    if not applies or rules.frequency_cap_days == 0:
        return set()
    since = now - timedelta(days=rules.frequency_cap_days)
    return set(
        BroadcastRecipient.objects.filter(sent_at__gte=since, contact__isnull=False)
        .exclude(broadcast=broadcast)
        .values_list("contact_id", flat=True)
    )


# ------------------------------------------------------------------ the preview

# Meta's per-message rates for recipients in Indonesia (+62), USD, as published for 2026; other countries differ,
# and Meta may change them each quarter: an estimate, said so.
RATES_USD = {"MARKETING": 0.0411, "UTILITY": 0.0250, "AUTHENTICATION": 0.0250}
TIER_LIMITS = {"TIER_250": 250, "TIER_1K": 1000, "TIER_2K": 2000, "TIER_10K": 10_000, "TIER_100K": 100_000}


def preview(broadcast: Broadcast) -> dict[str, Any]:
    """Who will get it, who is skipped and why, the share of the daily limit it uses, and what it costs."""
    planned = plan(broadcast)
    sending = sum(1 for row in planned.rows if not row.reason)
    return {
        "recipients": sending,
        "skipped": planned.skipped(),
        "daily_limit": daily_limit(broadcast.number, sending),
        "cost": cost(broadcast.category, sending),
    }


def daily_limit(number: WhatsAppNumber, sending: int) -> dict[str, Any]:
    """The portfolio's limit of people reached outside the window in a moving 24 hours, what the number's
    business-initiated messages used of it, and what this broadcast would."""
    tier = number.messaging_limit or ""
    limit = None if tier == "TIER_UNLIMITED" else TIER_LIMITS.get(tier)
    since = timezone.now() - timedelta(hours=24)
    used = (
        Message.objects.filter(
            conversation__number=number, direction="out", type="template", created_at__gte=since
        )
        .exclude(status=MessageStatus.FAILED)
        .values("conversation__contact_id")
        .distinct()
        .count()
    )
    return {
        "tier": tier or None,
        "limit": limit,
        "used_last_24h": used,
        "this_broadcast": sending,
        "share": None if not limit else round((used + sending) / limit, 4),
        "fits": True if limit is None else used + sending <= limit,
    }


def cost(category: str, sending: int) -> dict[str, Any]:
    rate = RATES_USD.get(category)
    return {
        "category": category or None,
        "currency": "USD",
        "per_message": rate,
        "estimate": None if rate is None else round(rate * sending, 2),
        "basis": "Meta's per-message rates for Indonesia (+62); delivered templates are charged",
    }


# ------------------------------------------------------------------ starting, pausing, cancelling

STARTABLE = (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)


def _blocking_alert(number: WhatsAppNumber) -> HealthAlert | None:
    """An open alert that forbids starting a broadcast on the number now: a restriction on business-initiated
    messages that has not expired, or a disable (scheduled or done). A violation pauses what runs when it comes
    (`pause_for_alert`); the admins decide after it, with the banner in front of them."""
    now = timezone.now().timestamp()
    for alert in HealthAlert.objects.filter(
        Q(number=number) | Q(number__isnull=True, waba_id=number.waba_id),
        cleared_at__isnull=True,
        kind__in=["restriction", "disable"],
    ).select_related("event"):
        if alert.kind == "disable":
            return alert
        items = (alert.event.value if alert.event else {}).get("restriction_info") or []
        for item in items if isinstance(items, list) else []:
            kind = str((item or {}).get("restriction_type") or "") if isinstance(item, dict) else ""
            expiration = item.get("expiration") if isinstance(item, dict) else None
            if "BIZ_INITIATED" in kind and not (isinstance(expiration, int | float) and expiration < now):
                return alert
    return None


def _alert_pauses(alert: HealthAlert) -> bool:
    if alert.kind in PAUSING_ALERTS or (alert.kind == "quality" and alert.level >= 3):
        return True
    if alert.kind == "restriction":
        value = alert.event.value if alert.event else {}
        kinds = [
            str((item or {}).get("restriction_type") or "") for item in value.get("restriction_info") or []
        ]
        return not kinds or any("BIZ_INITIATED" in kind for kind in kinds)
    return False


def check_start(broadcast: Broadcast, role: str, confirm: bool = False) -> Broadcast:
    """Start now (or at `scheduled_at`): refused when the template cannot be sent or the number's state forbids
    it; a YELLOW number needs an admin's explicit confirmation and runs at half pace."""
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status not in STARTABLE:
            raise BroadcastError(
                _("This broadcast is %(status)s: only a draft or a scheduled one starts.")
                % {"status": locked.status},
                "not_startable",
                409,
            )
        number = WhatsAppNumber.objects.get(pk=locked.number_id)
        template = message_templates.find_sendable(
            number.waba_id, locked.template_name, locked.template_language
        )
        blocking = _blocking_alert(number)
        if blocking is not None or number.quality_rating == "RED":
            raise BroadcastError(
                _("The number's standing with Meta forbids broadcasts now (%(why)s): see its health.")
                % {"why": blocking.kind if blocking else "quality RED"},
                "number_at_risk",
                409,
            )
        if number.quality_rating == "YELLOW":
            if not confirm or role != "admin":
                raise BroadcastError(
                    _(
                        "The number's quality is YELLOW: a broadcast now could lower it further. An admin may "
                        'start it anyway with {"confirm": true}; it then runs at half pace.'
                    ),
                    "confirmation_required",
                    409,
                )
            locked.half_pace = True
        locked.category = template.category
        if locked.scheduled_at and locked.scheduled_at > timezone.now():
            locked.status = BroadcastStatus.SCHEDULED
            locked.save()
            record_event("broadcast.updated", broadcast=broadcast_data(locked))
            return locked
        _materialize(locked)
    return locked


def _materialize(broadcast: Broadcast) -> None:
    """Every recipient a row (queued or skipped with its reason), then running; the runner starts after commit.
    Inside the caller's transaction, the broadcast locked."""
    planned = plan(broadcast)
    BroadcastRecipient.objects.bulk_create(planned.rows, batch_size=2000, ignore_conflicts=True)
    broadcast.duplicates = planned.duplicates
    broadcast.status = BroadcastStatus.RUNNING
    broadcast.started_at = broadcast.started_at or timezone.now()
    broadcast.paused_reason, broadcast.paused_code = "", ""
    broadcast.save()
    record_event("broadcast.updated", broadcast=broadcast_data(broadcast))
    _run_later(broadcast.pk)


def _run_later(broadcast_id: int) -> None:
    from conversations.tasks import run_broadcast

    schema_name = current_schema()
    transaction.on_commit(lambda: run_broadcast.delay(schema_name, broadcast_id))


def do_start_due(now: datetime | None = None) -> list[int]:
    """Scheduled broadcasts whose time has come (the beat, every 15 s): started, each in its own transaction."""
    started = []
    due = Broadcast.objects.filter(status=BroadcastStatus.SCHEDULED, scheduled_at__lte=now or timezone.now())
    for broadcast_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            broadcast = Broadcast.objects.select_for_update(skip_locked=True).filter(pk=broadcast_id).first()
            if broadcast is None or broadcast.status != BroadcastStatus.SCHEDULED:
                continue
            blocking = _blocking_alert(broadcast.number)
            if blocking is not None:
                _pause(
                    broadcast, "number_at_risk", _("The number's standing with Meta forbids broadcasts now.")
                )
                continue
            _materialize(broadcast)
            started.append(broadcast_id)
    return started


def _pause(broadcast: Broadcast, code: str, reason: str) -> None:
    broadcast.status = BroadcastStatus.PAUSED
    broadcast.paused_code, broadcast.paused_reason = code, reason
    broadcast.save(update_fields=["status", "paused_code", "paused_reason"])
    record_event("broadcast.updated", broadcast=broadcast_data(broadcast))


def do_pause(broadcast: Broadcast, code: str = "manual", reason: str = "") -> Broadcast:
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status not in (BroadcastStatus.RUNNING, BroadcastStatus.SCHEDULED):
            raise BroadcastError(_("Only a running or scheduled broadcast pauses."), "not_running", 409)
        _pause(locked, code, reason or _("Paused by a person."))
    return locked


def do_resume(broadcast: Broadcast, role: str, confirm: bool = False) -> Broadcast:
    """Resume a paused broadcast: the same checks as a start (the number's state may have changed)."""
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status != BroadcastStatus.PAUSED:
            raise BroadcastError(_("Only a paused broadcast resumes."), "not_paused", 409)
        if not locked.started_at:  # paused before its time came: scheduled again
            locked.status = BroadcastStatus.SCHEDULED
            locked.save(update_fields=["status"])
            return check_start(locked, role, confirm)
        locked.status = (
            BroadcastStatus.DRAFT
        )  # what check_start accepts; it materializes only the missing rows
        locked.save(update_fields=["status"])
        return check_start(locked, role, confirm)


def do_cancel(broadcast: Broadcast) -> Broadcast:
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status in (BroadcastStatus.COMPLETED, BroadcastStatus.CANCELLED):
            raise BroadcastError(_("This broadcast has ended already."), "ended", 409)
        locked.status = BroadcastStatus.CANCELLED
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        record_event("broadcast.updated", broadcast=broadcast_data(locked))
    return locked


def do_pause_for_number(numbers: Iterable[WhatsAppNumber], code: str, reason: str) -> int:
    """The number turned RED, was restricted, is to be disabled: every running and scheduled broadcast of it
    pauses at once (inside the caller's transaction). Returns how many."""
    paused = 0
    for broadcast in Broadcast.objects.select_for_update().filter(
        number__in=list(numbers), status__in=[BroadcastStatus.RUNNING, BroadcastStatus.SCHEDULED]
    ):
        _pause(broadcast, code, reason)
        paused += 1
    return paused


def pause_for_alert(alert: HealthAlert) -> int:
    """What number_health calls when it raises an alert."""
    if not _alert_pauses(alert):
        return 0
    numbers = (
        [alert.number]
        if alert.number is not None
        else list(WhatsAppNumber.objects.filter(waba_id=alert.waba_id, tenant__schema_name=current_schema()))
    )
    words = {
        "quality": _("The number's quality rating turned RED."),
        "restriction": _("Meta restricted the messages the business starts on this number."),
        "violation": _("Meta reported a policy violation on this account."),
        "disable": _("Meta is disabling this account."),
    }
    return do_pause_for_number(numbers, f"number_{alert.kind}", words.get(alert.kind, alert.kind))


def pause_for_template(template: MessageTemplate) -> int:
    """Meta paused or disabled the template: the broadcasts that send it stop."""
    paused = 0
    for broadcast in Broadcast.objects.select_for_update().filter(
        number__waba_id=template.waba_id,
        template_name=template.name,
        template_language=template.language,
        status__in=[BroadcastStatus.RUNNING, BroadcastStatus.SCHEDULED],
    ):
        _pause(
            broadcast,
            f"template_{template.status}",
            _("Meta %(status)s the template %(name)s.") % {"status": template.status, "name": template.name},
        )
        paused += 1
    return paused


# ------------------------------------------------------------------ sending

CLAIM = """UPDATE conversations_broadcastrecipient SET status = 'sending', claimed_at = now(), attempts = attempts + 1
WHERE id IN (
    SELECT id FROM conversations_broadcastrecipient
    WHERE broadcast_id = %s AND status = 'queued' AND (retry_at IS NULL OR retry_at <= now())
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
) RETURNING id"""


def run_slice(broadcast_id: int, seconds: float = SLICE_SECONDS) -> tuple[bool, bool]:
    """Send for about `seconds`: (more to do, anything sent). The task enqueues itself again while more."""
    deadline = timezone.now() + timedelta(seconds=seconds)
    sent = False
    while timezone.now() < deadline:
        broadcast = Broadcast.objects.select_related("number").get(pk=broadcast_id)
        if broadcast.status != BroadcastStatus.RUNNING:
            return False, sent
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CLAIM, [broadcast_id, CLAIM_BATCH])
            claimed = [row[0] for row in cursor.fetchall()]
        if not claimed:
            return _finish_if_done(broadcast), sent
        rate = broadcast.number.send_rate * (0.5 if broadcast.half_pace else 1.0)
        for recipient_id in sorted(claimed):
            if Broadcast.objects.filter(pk=broadcast_id, status=BroadcastStatus.RUNNING).exists():
                send_one(broadcast, recipient_id, rate)
                sent = True
            else:  # paused meanwhile: give the rest back untouched
                BroadcastRecipient.objects.filter(pk=recipient_id, status=RecipientStatus.SENDING).update(
                    status=RecipientStatus.QUEUED, claimed_at=None, attempts=F("attempts") - 1
                )
        _check_failures(broadcast_id)
    return True, sent


def recover_interrupted(broadcast_id: int) -> int:
    """Settle sends a dead worker left `sending`: Meta's status webhook for it (kept as a PendingStatus, found by
    its callback data) says it went, and gives its wamid; without one after the grace, it never reached Meta and
    is queued again. Returns how many were settled."""
    grace = timedelta(seconds=settings.BROADCAST_INTERRUPTED_GRACE_SECONDS)
    stale = BroadcastRecipient.objects.filter(
        broadcast_id=broadcast_id, status=RecipientStatus.SENDING, claimed_at__lt=timezone.now() - grace
    ).select_related("message")
    settled = 0
    for recipient in stale:
        message = recipient.message
        if message is not None and message.wamid:
            _sent(recipient.pk, message.pk, message.wamid)
        else:
            seen = PendingStatus.objects.filter(
                status__biz_opaque_callback_data=callback_of(recipient.pk)
            ).first()
            if seen is not None and message is not None:
                _sent(recipient.pk, message.pk, seen.wamid)
            else:
                if message is not None:
                    Message.objects.filter(pk=message.pk, wamid__isnull=True).delete()
                BroadcastRecipient.objects.filter(pk=recipient.pk, status=RecipientStatus.SENDING).update(
                    status=RecipientStatus.QUEUED, message=None, claimed_at=None
                )
        settled += 1
    return settled


def _finish_if_done(broadcast: Broadcast) -> bool:
    """Completed when nothing is queued or under way; else (rows waiting for a retry) more to do."""
    open_rows = BroadcastRecipient.objects.filter(
        broadcast=broadcast, status__in=[RecipientStatus.QUEUED, RecipientStatus.SENDING]
    )
    if open_rows.exists():
        return True
    with transaction.atomic():
        locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if locked.status == BroadcastStatus.RUNNING:
            locked.status = BroadcastStatus.COMPLETED
            locked.finished_at = timezone.now()
            locked.save(update_fields=["status", "finished_at"])
            record_event("broadcast.updated", broadcast=broadcast_data(locked))
    return False


def _conversation_of(broadcast: Broadcast, recipient: BroadcastRecipient) -> Conversation:
    """The recipient's conversation (made, locked), so that the broadcast shows in its thread."""
    from conversations.actions import _locked_conversation_of

    contact = (
        recipient.contact or Contact.objects.get_or_create(number=broadcast.number, wa_id=recipient.wa_id)[0]
    )
    conversation = _locked_conversation_of(contact, broadcast.number)
    if conversation.last_message_at is None and conversation.current_ticket_id is None:
        # New for the broadcast: nobody has anything to do in it until the customer answers.
        conversation.status = ConversationStatus.RESOLVED
        conversation.save(update_fields=["status"])
    return conversation


def send_one(broadcast: Broadcast, recipient_id: int, rate: float) -> None:
    """Keep the message, wait for the number's slot, send it, record the outcome."""
    recipient = BroadcastRecipient.objects.select_related("contact").get(pk=recipient_id)
    template = MessageTemplate.objects.filter(
        waba_id=broadcast.number.waba_id, name=broadcast.template_name, language=broadcast.template_language
    ).first()
    try:
        if template is None:
            raise message_templates.TemplateRefused(_("The template is gone."), "template_unknown")
        content, text = message_templates.fill(
            template, personalize(broadcast.components, recipient.contact, recipient.wa_id)
        )
    except message_templates.TemplateRefused as refused:
        _failed(recipient_id, None, str(refused))
        return
    with transaction.atomic():  # persist first: the message and its row, then the send
        conversation = _conversation_of(broadcast, recipient)
        message = do_queue_outbound(
            conversation,
            type="template",
            text=text,
            content=content,
            sender_kind=SenderKind.BROADCAST,
            send=False,  # sent here, paced, not by the reply queue
        )
        BroadcastRecipient.objects.filter(pk=recipient_id).update(message=message)
    pacing.wait_for_slot(broadcast.number_id, rate)
    try:
        wamid = graph_api.send_message(
            broadcast.number, recipient.wa_id, "template", content, callback=callback_of(recipient_id)
        )
    except graph_api.GraphAPIError as error:
        _after_error(broadcast, recipient, message, error)
        return
    _sent(recipient_id, message.pk, wamid)


def callback_of(recipient_id: int) -> str:
    """What Meta echoes on the message's status webhooks: the row it belongs to."""
    return f"broadcast-recipient:{recipient_id}"


def _sent(recipient_id: int, message_id: int, wamid: str) -> None:
    from conversations.actions import do_keep_wamid, do_mark_sent

    do_keep_wamid(message_id, wamid)
    do_mark_sent(message_id, wamid)
    now = timezone.now()
    # A status webhook may have overtaken us (delivered before we recorded the send): keep its status.
    BroadcastRecipient.objects.filter(pk=recipient_id, status=RecipientStatus.SENDING).update(
        status=RecipientStatus.SENT
    )
    BroadcastRecipient.objects.filter(pk=recipient_id, sent_at__isnull=True).update(sent_at=now)


def _failed(recipient_id: int, code: int | None, title: str) -> None:
    BroadcastRecipient.objects.filter(pk=recipient_id).update(
        status=RecipientStatus.FAILED, error_code=code, error_title=title[:512], failed_at=timezone.now()
    )


def _after_error(
    broadcast: Broadcast, recipient: BroadcastRecipient, message: Message, error: graph_api.GraphAPIError
) -> None:
    from conversations import consent
    from conversations.actions import do_mark_send_failed

    code = error.code
    if code in THROTTLED and recipient.attempts < 5:
        pacing.hold(broadcast.number_id, THROTTLED[code])
        Message.objects.filter(pk=message.pk).delete()  # never sent: the next attempt keeps a new one
        BroadcastRecipient.objects.filter(pk=recipient.pk).update(
            status=RecipientStatus.QUEUED,
            message=None,
            retry_at=timezone.now() + timedelta(seconds=THROTTLED[code]),
        )
        return
    if error.retryable and code not in (131049,) and recipient.attempts < 3:
        Message.objects.filter(pk=message.pk).delete()
        BroadcastRecipient.objects.filter(pk=recipient.pk).update(
            status=RecipientStatus.QUEUED,
            message=None,
            retry_at=timezone.now() + timedelta(seconds=10 * recipient.attempts),
        )
        return
    do_mark_send_failed(message.pk, code, error.title, error.details)
    _failed(recipient.pk, code, error.title)
    if code == 131050 and recipient.contact is not None:  # the customer stopped marketing messages
        consent.mark_opted_out(recipient.contact, timezone.now(), "error_131050", error.title)


def _check_failures(broadcast_id: int) -> None:
    """Pause when failures pass the tenant's share of what was sent (after the minimum)."""
    rules = Guardrails.current()
    counts = BroadcastRecipient.objects.filter(broadcast_id=broadcast_id).aggregate(
        failed=Count("pk", filter=Q(status=RecipientStatus.FAILED)),
        sent=Count("pk", filter=Q(sent_at__isnull=False) | Q(status=RecipientStatus.FAILED)),
    )
    if counts["sent"] < rules.failure_pause_after:
        return
    if counts["failed"] * 100 > rules.failure_pause_percent * counts["sent"]:
        with transaction.atomic():
            locked = Broadcast.objects.select_for_update().get(pk=broadcast_id)
            if locked.status == BroadcastStatus.RUNNING:
                _pause(
                    locked,
                    "failures",
                    _(
                        "%(failed)s of %(sent)s messages failed (more than %(share)s%%): paused to protect the number."
                    )
                    % {
                        "failed": counts["failed"],
                        "sent": counts["sent"],
                        "share": rules.failure_pause_percent,
                    },
                )


# ------------------------------------------------------------------ what happened after

FOLLOWED = {  # the message's status: the recipient's, and its time field
    MessageStatus.DELIVERED: (RecipientStatus.DELIVERED, "delivered_at"),
    MessageStatus.READ: (RecipientStatus.READ, "read_at"),
    MessageStatus.FAILED: (RecipientStatus.FAILED, "failed_at"),
}
REPLY_WINDOW = timedelta(hours=72)


def follow_status(message: Message) -> None:
    """A status webhook moved a broadcast's message: its recipient row follows (a reply stays the last word)."""
    followed = FOLLOWED.get(message.status)  # type: ignore[call-overload]
    if followed is None:
        return
    status, time_field = followed
    at = getattr(message, time_field) or timezone.now()
    changes: dict[str, Any] = {"status": status, time_field: at}
    if status == RecipientStatus.FAILED:
        changes.update(error_code=message.error_code, error_title=message.error_title)
    rows = BroadcastRecipient.objects.filter(message_id=message.pk)
    rows.exclude(status=RecipientStatus.REPLIED).update(**changes)
    if status != RecipientStatus.FAILED:  # delivered or read: it was sent, whatever our bookkeeping says yet
        rows.filter(sent_at__isnull=True).update(sent_at=message.sent_at or at)
    if message.error_code == 131050:  # the customer stopped marketing messages
        from conversations import consent

        contact = Contact.objects.filter(conversation__messages=message).first()
        if contact is not None:
            consent.mark_opted_out(contact, timezone.now(), "error_131050", message.error_title)


def note_replies(contact_ids: Iterable[int], at: datetime) -> int:
    """Customers wrote: a broadcast they received in the last 72 hours counts them as replied."""
    return BroadcastRecipient.objects.filter(
        contact_id__in=list(contact_ids), sent_at__gte=at - REPLY_WINDOW, replied_at__isnull=True
    ).update(status=RecipientStatus.REPLIED, replied_at=at)


# ------------------------------------------------------------------ reading

COUNTED = ("queued", "skipped", "sending", "sent", "delivered", "read", "failed", "replied")


def counts_of(broadcast: Broadcast) -> dict[str, Any]:
    rows = dict(
        BroadcastRecipient.objects.filter(broadcast=broadcast)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    counts: dict[str, Any] = {status: int(rows.get(status, 0)) for status in COUNTED}
    counts["total"] = sum(counts.values())
    counts["duplicates"] = broadcast.duplicates
    return counts


def broadcast_data(broadcast: Broadcast) -> dict[str, Any]:
    return {
        "id": broadcast.pk,
        "name": broadcast.name,
        "number": broadcast.number_id,
        "template": {
            "name": broadcast.template_name,
            "language": broadcast.template_language,
            "components": broadcast.components,
            "category": broadcast.category,
        },
        "audience": broadcast.audience,
        "status": broadcast.status,
        "paused_reason": broadcast.paused_reason or None,
        "paused_code": broadcast.paused_code or None,
        "scheduled_at": broadcast.scheduled_at.isoformat() if broadcast.scheduled_at else None,
        "started_at": broadcast.started_at.isoformat() if broadcast.started_at else None,
        "finished_at": broadcast.finished_at.isoformat() if broadcast.finished_at else None,
        "half_pace": broadcast.half_pace,
        "counts": counts_of(broadcast),
        "created_at": broadcast.created_at.isoformat(),
    }
