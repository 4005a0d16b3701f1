"""The tenant's support settings as one document (time zone, reopen window, warnings, auto-assignment, the
language we write to customers in, the satisfaction question, business hours, holidays, SLA policies): read it, and change it only through `check_update_support_settings`.
New values apply to clocks started from then on; running clocks keep the deadlines they were given."""

from __future__ import annotations

import re
from datetime import date, time
from itertools import pairwise
from typing import Any
from zoneinfo import available_timezones

from django.db import transaction

from helpdesk.tenancy.access import current_schema
from helpdesk.tenancy.models import Tenant
from tickets import actions
from tickets.models import BusinessHours, CustomerLanguage, Holiday, Priority, SLAPolicy, SupportSettings

SCALARS = {
    "reopen_window_hours": (1, 24 * 30),
    "window_warning_minutes": (1, 24 * 60),
    "sla_warning_percent": (1, 99),
}


MAX_TARGET_SECONDS = 365 * 24 * 3600  # an SLA target of more than a year is a typo (and 2^31 overflows)
TIME_OF_DAY = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


class SettingsError(ValueError):
    pass


def _tenant() -> Tenant:
    return Tenant.objects.get(schema_name=current_schema())


def support_settings_data() -> dict[str, Any]:
    actions.ensure_defaults()
    current = SupportSettings.current()
    return {
        "timezone": _tenant().timezone_name,
        "reopen_window_hours": current.reopen_window_hours,
        "window_warning_minutes": current.window_warning_minutes,
        "sla_warning_percent": current.sla_warning_percent,
        "auto_assign": current.auto_assign,
        "customer_language": current.customer_language,
        "csat_enabled": current.csat_enabled,
        "business_hours": [
            {"weekday": h.weekday, "opens": h.opens.strftime("%H:%M"), "closes": h.closes.strftime("%H:%M")}
            for h in BusinessHours.objects.all()
        ],
        "holidays": [{"date": h.date.isoformat(), "name": h.name} for h in Holiday.objects.order_by("date")],
        "sla_policies": [
            {
                "priority": p.priority,
                "first_response_seconds": p.first_response_seconds,
                "next_response_seconds": p.next_response_seconds,
                "resolution_seconds": p.resolution_seconds,
            }
            for p in sorted(SLAPolicy.objects.all(), key=lambda p: Priority.values.index(p.priority))
        ],
    }


def _time(value: Any, label: str) -> time:
    """`HH:MM` exactly: no seconds, fractions or offsets (the database keeps a plain time of day)."""
    if isinstance(value, str) and TIME_OF_DAY.fullmatch(value):
        return time(int(value[:2]), int(value[3:]))
    raise SettingsError(f"{label}: {_shown(value)} is not a time of day (HH:MM, 00:00 to 23:59).")


def _shown(value: Any) -> str:
    """A rejected value, quoted for an error message, never longer than a line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, label: str, limit: int) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"{label}: text.")
    if "\x00" in value:
        raise SettingsError(f"{label}: text without NUL characters.")
    if len(value) > limit:
        raise SettingsError(f"{label}: at most {limit} characters.")
    return value


def _hours(rows: Any) -> list[BusinessHours]:
    if not isinstance(rows, list):
        raise SettingsError("business_hours: a list of {weekday, opens, closes}.")
    parsed: list[BusinessHours] = []
    for row in rows:
        weekday = row.get("weekday") if isinstance(row, dict) else None
        if not isinstance(weekday, int) or isinstance(weekday, bool) or weekday not in range(7):
            raise SettingsError("business_hours: each row needs a weekday 0 (Monday) to 6 (Sunday).")
        opens, closes = _time(row.get("opens"), "opens"), _time(row.get("closes"), "closes")
        if closes != time(0) and closes <= opens:
            raise SettingsError(
                f"business_hours: on weekday {row['weekday']} {opens:%H:%M} to {closes:%H:%M} "
                "ends before it starts (use 00:00 for midnight)."
            )
        parsed.append(BusinessHours(weekday=row["weekday"], opens=opens, closes=closes))
    by_day: dict[int, list[BusinessHours]] = {}
    for hours in parsed:
        by_day.setdefault(hours.weekday, []).append(hours)
    for weekday, intervals in by_day.items():
        intervals.sort(key=lambda h: h.opens)
        for earlier, later in pairwise(intervals):
            if earlier.closes == time(0) or later.opens < earlier.closes:
                raise SettingsError(f"business_hours: intervals on weekday {weekday} overlap.")
    return parsed


def _holidays(rows: Any) -> list[Holiday]:
    if not isinstance(rows, list):
        raise SettingsError("holidays: a list of {date, name}.")
    parsed: dict[date, Holiday] = {}
    for row in rows:
        value = row.get("date") if isinstance(row, dict) else row
        try:
            if not isinstance(value, str) or not DATE.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            raise SettingsError(f"holidays: {_shown(row)} has no valid date (YYYY-MM-DD).") from None
        name = _text(row.get("name", ""), "holidays: a name", 200) if isinstance(row, dict) else ""
        parsed[day] = Holiday(date=day, name=name)
    return list(parsed.values())


def _policies(rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list):
        raise SettingsError("sla_policies: a list of {priority, first_response_seconds, ...}.")
    parsed = []
    for row in rows:
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("priority"), str)
            or row["priority"] not in Priority.values
        ):
            raise SettingsError(f"sla_policies: priority must be one of {', '.join(Priority.values)}.")
        targets = {}
        for key in ("first_response_seconds", "next_response_seconds", "resolution_seconds"):
            value = row.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_TARGET_SECONDS
            ):
                raise SettingsError(
                    f"sla_policies: {key} is a positive number of seconds up to {MAX_TARGET_SECONDS} "
                    "(365 days), or null for no target."
                )
            targets[key] = value
        parsed.append({"priority": row["priority"], **targets})
    return parsed


def check_update_support_settings(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate every given section first, then apply them together; unknown keys are refused."""
    unknown = set(changes) - {
        "timezone",
        "auto_assign",
        "customer_language",
        "csat_enabled",
        "business_hours",
        "holidays",
        "sla_policies",
        *SCALARS,
    }
    if unknown:
        raise SettingsError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if "timezone" in changes and (
        not isinstance(changes["timezone"], str) or changes["timezone"] not in available_timezones()
    ):
        raise SettingsError(
            f"timezone: {_shown(changes['timezone'])} is not the name of an IANA time zone such as Asia/Jakarta."
        )
    for key, (low, high) in SCALARS.items():
        value = changes.get(key)
        if key in changes and (
            not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high
        ):
            raise SettingsError(f"{key}: a whole number from {low} to {high}.")
    for flag in ("auto_assign", "csat_enabled"):
        if flag in changes and not isinstance(changes[flag], bool):
            raise SettingsError(f"{flag}: true or false.")
    if "customer_language" in changes and changes["customer_language"] not in CustomerLanguage.values:
        raise SettingsError(f"customer_language: one of {', '.join(CustomerLanguage.values)}.")
    hours = _hours(changes["business_hours"]) if "business_hours" in changes else None
    holidays = _holidays(changes["holidays"]) if "holidays" in changes else None
    policies = _policies(changes["sla_policies"]) if "sla_policies" in changes else None
    with transaction.atomic():
        actions.ensure_defaults()
        if "timezone" in changes:
            Tenant.objects.filter(schema_name=current_schema()).update(timezone_name=changes["timezone"])
        scalars = {
            key: changes[key]
            for key in (*SCALARS, "auto_assign", "customer_language", "csat_enabled")
            if key in changes
        }
        if scalars:
            SupportSettings.objects.filter(pk=SupportSettings.current().pk).update(**scalars)
        if hours is not None:
            BusinessHours.objects.all().delete()
            BusinessHours.objects.bulk_create(hours)
        if holidays is not None:
            Holiday.objects.all().delete()
            Holiday.objects.bulk_create(holidays)
        for policy in policies or []:
            SLAPolicy.objects.update_or_create(priority=policy.pop("priority"), defaults=policy)
        transaction.on_commit(actions.forget_support_rules)
    actions.forget_support_rules()
    return support_settings_data()
