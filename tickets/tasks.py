"""Periodic work on tickets: warn before an SLA target or the 24-hour window passes, and record when it has."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import get_tenant_model, schema_context

from tickets import deadlines


@shared_task(ignore_result=True)
def check_deadlines() -> int:
    """Beat, every minute: every tenant's approaching and passed deadlines (warnings are live frames)."""
    raised = 0
    now = timezone.now()
    for tenant in get_tenant_model().objects.exclude(schema_name="public"):
        with schema_context(tenant.schema_name), transaction.atomic():
            raised += deadlines.raise_due_warnings(now)
    return raised
