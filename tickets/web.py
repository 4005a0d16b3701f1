"""Browser pages for supervisors and admins: reports and support settings. Like the inbox, each page is
rendered once and works through the REST API (static/inbox/reports.js, static/inbox/settings.js)."""

from __future__ import annotations

import json

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie

from conversations.web import member_required, reports_strings, settings_strings
from helpdesk.tenancy.access import current_tenant
from helpdesk.tenancy.models import Role, WhatsAppNumber


def render_page(
    request: HttpRequest, template: str, allowed: tuple[str, ...], strings: dict[str, str]
) -> HttpResponse:
    """A page for the `allowed` roles (else the styled 403 page), configured for its script."""
    membership = request.membership  # type: ignore[attr-defined]
    if membership.role not in allowed:
        raise PermissionDenied(
            _("This page is for admins.")
            if allowed == (Role.ADMIN,)
            else _("This page is for supervisors and admins.")
        )  # templates/403.html
    tenant = current_tenant()
    numbers = [
        {"id": n.pk, "display_number": n.display_number}
        for n in WhatsAppNumber.objects.filter(tenant=tenant).order_by("pk")
    ]
    return render(
        request,
        template,
        {
            "tenant": tenant,
            "membership": membership,
            "page_config": json.dumps(
                {
                    "user": {"id": request.user.pk},
                    "role": membership.role,
                    "timezone": tenant.timezone_name if tenant else "UTC",
                    "numbers": numbers,
                }
            ),
            "page_strings": strings,
        },
    )


@ensure_csrf_cookie
@member_required
def reports_page(request: HttpRequest) -> HttpResponse:
    return render_page(request, "reports.html", (Role.SUPERVISOR, Role.ADMIN), reports_strings())


@ensure_csrf_cookie
@member_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """Admins change the settings; supervisors may look."""
    return render_page(request, "settings.html", (Role.SUPERVISOR, Role.ADMIN), settings_strings())
