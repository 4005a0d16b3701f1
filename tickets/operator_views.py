"""The platform operator's pages on the public domain (superusers only)."""

from __future__ import annotations

import csv
from datetime import timedelta

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from tickets.operator import COLUMNS, flat_value, tenant_summaries
from tickets.reports import ReportError


class OperatorLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = False

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        if not form.get_user().is_superuser:  # type: ignore[attr-defined]
            form.add_error(None, form.get_invalid_login_error())
            return self.form_invalid(form)
        return super().form_valid(form)

    def get_default_redirect_url(self) -> str:
        return "/operator/reports/"


def tenant_reports(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_authenticated and request.user.is_superuser):
        return redirect(f"/login/?next={request.path}")
    today = timezone.localdate()
    start = request.GET.get("from") or (today - timedelta(days=29)).isoformat()
    end = request.GET.get("to") or today.isoformat()
    error, rows = "", []
    try:
        rows = tenant_summaries(start, end)
    except ReportError as exc:
        error = str(exc)
    table = [[flat_value(row, key) for key, _ in COLUMNS] for row in rows]
    if request.GET.get("format") == "csv" and not error:
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="tenants-{start}-{end}.csv"'
        writer = csv.writer(response)
        writer.writerow([key for key, _ in COLUMNS])
        writer.writerows(table)
        return response
    shown = [
        ["—" if cell is None else f"{cell:.1f}" if isinstance(cell, float) else cell for cell in row]
        for row in table
    ]
    return render(
        request,
        "operator_reports.html",
        {
            "start": start,
            "end": end,
            "error": error,
            "headers": [label for _, label in COLUMNS],
            "table": shown,
        },
    )
