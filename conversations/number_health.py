"""A number's standing with Meta: what the Graph API says of it (test connection, periodic refresh), what the
account webhooks said (the health history, in plain words), and the alerts an admin must not miss.

Runs in the tenant's schema: the history (AccountEvent) and the alerts (HealthAlert) are the tenant's; the number
itself is a row of the shared registry, updated here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from conversations import graph_api
from conversations.actions import dict_or_empty, list_or_empty
from conversations.events import record_event
from conversations.models import AccountEvent, Direction, HealthAlert, Message
from helpdesk.tenancy.access import current_schema, current_tenant
from helpdesk.tenancy.models import Membership, Role, WhatsAppNumber

log = logging.getLogger(__name__)

# Our own history rows (not a Meta webhook field): a change seen when the number was read from the Graph API.
NUMBER_STATE = "number_state"
QUALITIES = ("GREEN", "YELLOW", "RED", "UNKNOWN")
# How bad each quality is: a move up this scale is a drop, which raises an alert.
QUALITY_LEVEL = {"GREEN": 0, "UNKNOWN": 0, "YELLOW": 2, "RED": 3}
# Webhook fields about the account or number: each is kept in the history and triggers a refresh.
HEALTH_FIELDS = frozenset(
    {"account_update", "phone_number_quality_update", "business_capability_update", "account_alerts"}
)


def events_of(number: WhatsAppNumber) -> QuerySet[AccountEvent]:
    """The number's health history, newest first: its own events and those of its whole business account."""
    return AccountEvent.objects.filter(
        Q(number_id=number.pk) | Q(number__isnull=True, waba_id=number.waba_id)
    ).order_by("-received_at", "-pk")


def costs_of(number: WhatsAppNumber, days: int) -> dict[str, Any]:
    """Messages of the number Meta priced, per day (the tenant's time zone) and pricing category: how many
    were billable and how many free, from the `pricing` of the status webhooks."""
    tenant = current_tenant()
    zone = ZoneInfo(tenant.timezone_name if tenant else "UTC")
    since = timezone.now() - timedelta(days=days)
    rows = (
        Message.objects.filter(
            conversation__number_id=number.pk,
            direction=Direction.OUT,
            billable__isnull=False,
            created_at__gte=since,
        )
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "pricing_category")
        .annotate(charged=Count("pk", filter=Q(billable=True)), free=Count("pk", filter=Q(billable=False)))
        .order_by("-day", "pricing_category")
    )
    items = [
        {
            "day": row["day"].isoformat(),
            "category": row["pricing_category"],
            "billable": row["charged"],
            "free": row["free"],
        }
        for row in rows
    ]
    totals: dict[str, int] = {}
    for item in items:
        totals[item["category"]] = totals.get(item["category"], 0) + item["billable"]
    return {
        "number": number.pk,
        "days": days,
        "time_zone": zone.key,
        "rows": items,
        "billable_by_category": totals,
    }


# ------------------------------------------------------------------ reading the number from the Graph API


@dataclass
class Refresh:
    ok: bool
    error: dict[str, Any] | None
    number: WhatsAppNumber


def do_refresh_number(number: WhatsAppNumber) -> Refresh:
    """Read the number from the Graph API (no lock held meanwhile), then store what it says, each change in the
    history; a drop in quality raises an alert. A Graph error is stored as the connection's outcome."""
    try:
        data = graph_api.get_number(number)
        error = None
    except graph_api.GraphAPIError as exc:
        data = None
        error = {"code": exc.code, "message": exc.title + (f" ({exc.details})" if exc.details else "")}
    with transaction.atomic():
        locked = WhatsAppNumber.objects.select_for_update().get(pk=number.pk)
        locked.connection_ok = error is None
        locked.connection_error = error
        locked.connection_checked_at = timezone.now()
        if data is not None:
            _take_number_fields(locked, data)
        locked.save()
    return Refresh(ok=error is None, error=error, number=locked)


def _take_number_fields(number: WhatsAppNumber, data: dict[str, Any]) -> None:
    throughput = data.get("throughput")
    # Cut to the columns' sizes: an odd answer is stored as far as it fits, never refused by the database.
    seen = {
        "quality_rating": str(data.get("quality_rating") or "").upper(),
        "messaging_limit": str(data.get("whatsapp_business_manager_messaging_limit") or "")[:32],
        "throughput": str(throughput.get("level") or "")[:32] if isinstance(throughput, dict) else "",
        "name_status": str(data.get("name_status") or "")[:64],
        "verified_name": str(data.get("verified_name") or "")[:200],
    }
    if seen["quality_rating"] and seen["quality_rating"] not in QUALITIES:
        seen["quality_rating"] = "UNKNOWN"
    for field_name, new in seen.items():
        old = getattr(number, field_name)
        if not new or new == old:
            continue
        setattr(number, field_name, new)
        event = AccountEvent.objects.create(
            number=number,
            waba_id=number.waba_id,
            field=NUMBER_STATE,
            event=field_name.upper(),
            value={"old": old, "new": new},
        )
        if field_name == "quality_rating":
            _quality_changed(number, old, new, event)
    display = "".join(ch for ch in str(data.get("display_phone_number") or "") if ch.isdigit())
    if display and len(display) <= 32:
        number.display_number = display


def _quality_changed(number: WhatsAppNumber, old: str, new: str, event: AccountEvent) -> None:
    if QUALITY_LEVEL.get(new, 0) > QUALITY_LEVEL.get(old, 0):
        raise_alert(number, number.waba_id, "quality", QUALITY_LEVEL[new], event)
    elif QUALITY_LEVEL.get(new, 0) == 0:
        clear_alerts(number.waba_id, "quality", number)


# ------------------------------------------------------------------ account webhooks


def apply_health_webhook(event: AccountEvent, numbers: list[WhatsAppNumber]) -> None:
    """What an account webhook changes beyond the history: the number's limit and throughput, and alerts.
    `numbers` are the tenant's numbers the event is about (one, or every number of the account)."""
    value = event.value
    kind = str(value.get("event") or "")
    if event.field == "phone_number_quality_update":
        limit = value.get("max_daily_conversations_per_business") or value.get("current_limit")
        updates: dict[str, Any] = {}
        if limit:
            updates["messaging_limit"] = str(limit)[:32]
        if kind == "THROUGHPUT_UPGRADE":
            updates["throughput"] = "HIGH"
        if updates:
            WhatsAppNumber.objects.filter(pk__in=[n.pk for n in numbers]).update(**updates)
        if kind in ("DOWNGRADE", "FLAGGED"):  # legacy events (REFERENCE.md §2.6): a quality warning
            for number in numbers:
                raise_alert(number, event.waba_id, "quality", 2, event)
    elif event.field == "business_capability_update":
        limit = value.get("max_daily_conversations_per_business")
        if limit:
            WhatsAppNumber.objects.filter(waba_id=event.waba_id, pk__in=[n.pk for n in numbers]).update(
                messaging_limit=str(limit)[:32]
            )
    elif event.field == "account_update":
        named = numbers[0] if event.number_id and numbers else None
        if kind == "ACCOUNT_VIOLATION":
            raise_alert(named, event.waba_id, "violation", 3, event)
        elif kind == "ACCOUNT_RESTRICTION":
            raise_alert(named, event.waba_id, "restriction", 4, event)
        elif kind == "DISABLED_UPDATE":
            state = str((value.get("ban_info") or {}).get("waba_ban_state") or "")
            if state == "REINSTATE":
                clear_alerts(event.waba_id, "disable")
            elif state in ("SCHEDULE_FOR_DISABLE", "DISABLE"):
                raise_alert(named, event.waba_id, "disable", 5 if state == "DISABLE" else 4, event)
    if event.field in HEALTH_FIELDS:
        schema_name = current_schema()
        ids = [n.pk for n in numbers]
        transaction.on_commit(lambda: _refresh_later(schema_name, ids))


def _refresh_later(schema_name: str, number_ids: list[int]) -> None:
    from conversations.tasks import refresh_numbers

    refresh_numbers.delay(schema_name, number_ids)


# ------------------------------------------------------------------ alerts


def raise_alert(
    number: WhatsAppNumber | None, waba_id: str, kind: str, level: int, event: AccountEvent | None
) -> HealthAlert | None:
    """Raise (or raise again, higher) an alert: shown live to admins and supervisors and e-mailed to the admins.
    An open alert of the kind at this level or above is left as it is (acknowledged or not)."""
    current = (
        HealthAlert.objects.select_for_update()
        .filter(waba_id=waba_id, kind=kind, number=number, cleared_at__isnull=True)
        .order_by("-pk")
        .first()
    )
    if current is not None and current.level >= level:
        return None
    if current is None:
        current = HealthAlert(number=number, waba_id=waba_id, kind=kind)
    current.level = level
    current.event = event
    current.raised_at = timezone.now()
    current.acknowledged_at = None
    current.acknowledged_by_id = None
    current.save()
    record_event("health.alert", alert=alert_frame(current))
    from conversations import broadcasts  # broadcasts read the number's health: they build on this module

    broadcasts.pause_for_alert(current)
    schema_name = current_schema()
    alert_id = current.pk
    transaction.on_commit(lambda: _mail_later(schema_name, alert_id))
    return current


def clear_alerts(waba_id: str, kind: str, number: WhatsAppNumber | None = None) -> int:
    """The state is good again: the kind's open alerts go (for one number, or the whole account)."""
    alerts = HealthAlert.objects.filter(waba_id=waba_id, kind=kind, cleared_at__isnull=True)
    if number is not None:
        alerts = alerts.filter(number=number)
    ids = list(alerts.values_list("pk", flat=True))
    if ids:
        HealthAlert.objects.filter(pk__in=ids).update(cleared_at=timezone.now())
        record_event("health.cleared", alerts=ids)
    return len(ids)


def do_acknowledge_alert(alert: HealthAlert, user_id: int) -> HealthAlert:
    with transaction.atomic():
        locked = HealthAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.acknowledged_at is None:
            locked.acknowledged_at = timezone.now()
            locked.acknowledged_by_id = user_id
            locked.save(update_fields=["acknowledged_at", "acknowledged_by_id"])
            record_event("health.acknowledged", alerts=[locked.pk])
    return locked


def open_alerts() -> QuerySet[HealthAlert]:
    """Alerts a banner shows: not cleared, not acknowledged; worst first."""
    return (
        HealthAlert.objects.filter(cleared_at__isnull=True, acknowledged_at__isnull=True)
        .select_related("event", "number")
        .order_by("-level", "-raised_at")
    )


def alert_frame(alert: HealthAlert) -> dict[str, Any]:
    """What the live frame carries: which alert; its words are read in the reader's language (the API)."""
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "level": alert.level,
        "number": alert.number_id,
        "raised_at": alert.raised_at.isoformat(),
    }


def _mail_later(schema_name: str, alert_id: int) -> None:
    from conversations.tasks import mail_health_alert

    mail_health_alert.delay(schema_name, alert_id)


def mail_alert(alert: HealthAlert, tenant_id: int, tenant_name: str) -> int:
    """E-mail the tenant's active admins about an alert, in English and Indonesian; returns how many got it."""
    recipients = sorted(
        Membership.objects.filter(tenant_id=tenant_id, role=Role.ADMIN, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )
    if not recipients:
        return 0
    parts = []
    for language in ("en", "id"):
        with translation.override(language):
            parts.append(
                (_("WhatsApp number alert for %(tenant)s") % {"tenant": tenant_name}, alert_text(alert))
            )
    subject = parts[0][0]
    body = "\n\n".join(f"{title}\n{text}" for title, text in parts)
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)


def alert_text(alert: HealthAlert) -> str:
    number = f"+{alert.number.display_number}" if alert.number else _("Every number of the business account")
    what = summary(alert.event.field, alert.event.event, alert.event.value) if alert.event else alert.kind
    return _("%(number)s: %(what)s") % {"number": number, "what": what}


# ------------------------------------------------------------------ plain words


def _words(code: Any) -> str:
    """A Meta code as words: RESTRICTED_BIZ_INITIATED_MESSAGING -> "restricted biz initiated messaging"."""
    return str(code or "").replace("_", " ").lower().strip()


def limit_words(limit: Any) -> str:
    """A messaging limit as words: TIER_2K -> "2,000 customers a day"."""
    tiers = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1000, "TIER_2K": 2000, "TIER_10K": 10_000}
    tiers["TIER_100K"] = 100_000
    text = str(limit or "")
    if text in ("TIER_UNLIMITED", "UNLIMITED"):
        return _("unlimited customers a day")
    count = tiers.get(text) or (int(text) if text.isdigit() else None)
    if count is None:
        return _words(text) or _("not set")
    return _("%(count)s customers a day") % {"count": f"{count:,}"}


def quality_words(rating: Any) -> str:
    """A quality rating as WhatsApp Manager names it, with Meta's colour: YELLOW -> "medium (yellow)"."""
    words = {
        "GREEN": _("high (green)"),
        "YELLOW": _("medium (yellow)"),
        "RED": _("low (red)"),
    }
    return words.get(str(rating or "").upper(), _("not rated"))


def _restriction_words(code: str) -> str:
    known = {
        "RESTRICTED_BIZ_INITIATED_MESSAGING": _("messages the business starts (templates, broadcasts)"),
        "RESTRICTED_CUSTOMER_INITIATED_MESSAGING": _("replies to customers"),
        "RESTRICTED_ADD_PHONE_NUMBER_ACTION": _("adding phone numbers"),
    }
    return known.get(code, _words(code))


def _account_update(event: str, value: dict[str, Any]) -> str:
    if event == "ACCOUNT_VIOLATION":
        info = dict_or_empty(value.get("violation_info"))
        return _("Meta found a policy violation on the business account: %(type)s.") % {
            "type": _words(info.get("violation_type")) or _("not stated")
        }
    if event == "ACCOUNT_RESTRICTION":
        items = list_or_empty(value.get("restriction_info"))
        parts = []
        for item in [i for i in items if isinstance(i, dict)]:
            text = _restriction_words(str(item.get("restriction_type") or ""))
            if item.get("expiration"):
                text += " " + _("(until %(when)s)") % {"when": _when(item.get("expiration"))}
            parts.append(text)
        return _("Meta restricted the business account: %(what)s.") % {
            "what": "; ".join(parts) or _("not stated")
        }
    if event == "DISABLED_UPDATE":
        ban = dict_or_empty(value.get("ban_info"))
        state, date = str(ban.get("waba_ban_state") or ""), str(ban.get("waba_ban_date") or "")
        if state == "SCHEDULE_FOR_DISABLE":
            return _("Meta will disable the business account on %(date)s unless the problem is fixed.") % {
                "date": date or _("a date not stated")
            }
        if state == "DISABLE":
            return _("Meta disabled the business account (%(date)s): no message can be sent.") % {
                "date": date or _("date not stated")
            }
        if state == "REINSTATE":
            return _("Meta reinstated the business account.")
    if event == "ACCOUNT_DELETED":
        return _("The business account was deleted.")
    return _("Account update from Meta: %(event)s.") % {"event": _words(event)}


def _when(value: Any) -> str:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.get_current_timezone()).strftime(
            "%Y-%m-%d %H:%M"
        )
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)


def _template_status(value: dict[str, Any]) -> str:
    name = f"{value.get('message_template_name')} ({value.get('message_template_language')})"
    status = _words(value.get("event"))
    reason = str(value.get("reason") or "")
    text = _("Template %(name)s is now %(status)s.") % {"name": name, "status": status}
    if reason and reason != "NONE":
        text += " " + _("Reason: %(reason)s.") % {"reason": _words(reason)}
    other = dict_or_empty(value.get("other_info"))
    if other.get("title"):
        text += " " + _words(other["title"]).capitalize() + "."
    return text


def summary(field: str, event: str, value: Any) -> str:
    """One event in plain words, in the active language."""
    value = value if isinstance(value, dict) else {}
    if field == NUMBER_STATE:
        old, new = value.get("old") or _("none"), value.get("new")
        labels = {
            "QUALITY_RATING": _("Quality rating changed from %(old)s to %(new)s."),
            "MESSAGING_LIMIT": _("Messaging limit changed from %(old)s to %(new)s."),
            "THROUGHPUT": _("Throughput changed from %(old)s to %(new)s."),
            "NAME_STATUS": _("Display name status changed from %(old)s to %(new)s."),
            "VERIFIED_NAME": _("Verified name changed from %(old)s to %(new)s."),
        }
        if event == "MESSAGING_LIMIT":
            old, new = limit_words(old) if value.get("old") else old, limit_words(new)
        elif event == "QUALITY_RATING":
            old, new = quality_words(value.get("old")), quality_words(new)
        return labels.get(event, _("%(old)s changed to %(new)s.")) % {"old": old, "new": new}
    if field == "account_update":
        return _account_update(event, value)
    if field == "phone_number_quality_update":
        limit = limit_words(value.get("max_daily_conversations_per_business") or value.get("current_limit"))
        if event == "THROUGHPUT_UPGRADE":
            return _("The number's throughput was upgraded; messaging limit: %(limit)s.") % {"limit": limit}
        if event == "ONBOARDING":
            return _("The number was onboarded; messaging limit: %(limit)s.") % {"limit": limit}
        return _("Number update from Meta (%(event)s); messaging limit: %(limit)s.") % {
            "event": _words(event),
            "limit": limit,
        }
    if field == "business_capability_update":
        return _("Meta set the messaging limit of the business portfolio to %(limit)s.") % {
            "limit": limit_words(value.get("max_daily_conversations_per_business"))
        }
    if field == "account_alerts":
        return _("Alert from Meta: %(alert)s. %(description)s") % {
            "alert": _words(value.get("alert_type") or event),
            "description": str(value.get("alert_description") or ""),
        }
    if field == "message_template_status_update":
        return _template_status(value)
    if field == "message_template_quality_update":
        return _("Template %(name)s: quality changed from %(old)s to %(new)s.") % {
            "name": value.get("message_template_name"),
            "old": _words(value.get("previous_quality_score")) or _("unknown"),
            "new": _words(value.get("new_quality_score")) or _("unknown"),
        }
    if field == "template_category_update":
        if value.get("correct_category"):
            return _("Template %(name)s will be re-categorised as %(category)s within 24 hours.") % {
                "name": value.get("message_template_name"),
                "category": _words(value.get("correct_category")),
            }
        return _("Template %(name)s was re-categorised from %(old)s to %(new)s.") % {
            "name": value.get("message_template_name"),
            "old": _words(value.get("previous_category")),
            "new": _words(value.get("new_category")),
        }
    if field == "user_preferences":
        return _("A customer changed their marketing message preference.")
    if field == "messages.errors":
        errors = list_or_empty(value.get("errors"))
        titles = ", ".join(str(e.get("title") or e.get("code")) for e in errors if isinstance(e, dict))
        return _("Meta reported an error on the number: %(titles)s.") % {"titles": titles or _("not stated")}
    return _("%(field)s from Meta: %(event)s.") % {"field": _words(field), "event": _words(event) or "-"}
