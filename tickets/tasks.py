"""Periodic work on tickets: warn before an SLA target or the 24-hour window passes, and record when it has;
seal the measured intervals of days that have ended (tickets/intervals.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from celery import shared_task
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from tickets import deadlines, intervals


@shared_task(ignore_result=True)
def check_deadlines() -> int:
    """Beat, every minute: every tenant's approaching and passed deadlines (warnings are live frames)."""
    raised = 0
    now = timezone.now()
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            raised += deadlines.raise_due_warnings(now)
    return raised


@shared_task(ignore_result=True)
def seal_report_days() -> int:
    """Beat, hourly: seal every tenant's ended days whose seal is missing or out of date."""
    sealed = 0
    now = timezone.now()
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name):
            sealed += len(intervals.seal_closed_days(now.astimezone(ZoneInfo(tenant.timezone_name)).date()))
    return sealed
