"""The platform operator's view: the same summary for every tenant, each computed in its own schema."""

from __future__ import annotations

from typing import Any

from django_tenants.utils import get_public_schema_name, schema_context

from helpdesk.tenancy.models import Tenant
from tickets import reports

COLUMNS = [
    ("tenant", "Tenant"),
    ("timezone", "Time zone"),
    ("first_response_seconds.median", "First response median (s)"),
    ("first_response_seconds.mean", "First response mean (s)"),
    ("first_response_seconds.p90", "First response p90 (s)"),
    ("first_response_seconds.count", "First responses"),
    ("response_seconds.median", "Response median (s)"),
    ("response_seconds.p90", "Response p90 (s)"),
    ("response_seconds.count", "Responses"),
    ("chat_volume.conversations", "Conversations"),
    ("chat_volume.tickets_opened", "Tickets opened"),
    ("chat_volume.messages_in", "Messages in"),
    ("chat_volume.messages_out", "Messages out"),
    ("resolved_tickets", "Resolved"),
    ("sla.met", "SLA met"),
    ("sla.breached", "SLA breached"),
    ("windows_expired_unanswered", "Windows expired unanswered"),
]


def tenant_summaries(start: str, end: str) -> list[dict[str, Any]]:
    """One summary per tenant for the local days `start`..`end` (each tenant in its own time zone)."""
    period = reports.Period.parse(start, end)
    rows = []
    for tenant in Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("schema_name"):
        with schema_context(tenant.schema_name):
            figures = reports.summary(period, tenant.timezone_name)
        rows.append({"tenant": tenant.schema_name, "name": tenant.name, **figures})
    return rows


def flat_value(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value
