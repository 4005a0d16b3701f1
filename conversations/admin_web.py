"""Browser pages for tenant admins: WhatsApp numbers and message templates; for supervisors and admins,
broadcasts and the contacts' import. Like the other pages, each is
rendered once and works through the REST API (static/inbox/numbers.js, static/inbox/templates.js)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie

from conversations.web import broadcasts_strings, member_required, numbers_strings, templates_strings
from helpdesk.tenancy.models import Role
from tickets.web import render_page


@ensure_csrf_cookie
@member_required
def numbers_page(request: HttpRequest) -> HttpResponse:
    return render_page(request, "numbers.html", (Role.ADMIN,), numbers_strings())


@ensure_csrf_cookie
@member_required
def templates_page(request: HttpRequest) -> HttpResponse:
    return render_page(request, "templates.html", (Role.ADMIN,), templates_strings())


@ensure_csrf_cookie
@member_required
def broadcasts_page(request: HttpRequest) -> HttpResponse:
    return render_page(request, "broadcasts.html", (Role.SUPERVISOR, Role.ADMIN), broadcasts_strings())
