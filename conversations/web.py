"""The browser inbox. The page is rendered once; static/inbox/inbox.js then works through the REST API and
the /ws/inbox/ websocket, so working a conversation never reloads the page."""

from __future__ import annotations

import json
import secrets
from functools import wraps
from typing import Any, Callable

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from conversations import simulator
from helpdesk.tenancy.access import current_tenant, membership_of
from helpdesk.tenancy.models import WhatsAppNumber

View = Callable[..., HttpResponse]


def member_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = membership_of(request.user, current_tenant())  # type: ignore[arg-type]
        if membership is None:
            if request.user.is_authenticated:
                return HttpResponse(_("You are not a member of this helpdesk."), status=403)
            return redirect_to_login(request.get_full_path())
        request.membership = membership  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


@ensure_csrf_cookie  # the page's fetch() POSTs read the token from the `csrftoken` cookie
@member_required
def inbox(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant()
    numbers = list(WhatsAppNumber.objects.filter(tenant=tenant).order_by("pk"))
    context = {
        "tenant": tenant,
        "membership": request.membership,  # type: ignore[attr-defined]
        "simulator_numbers": [n for n in numbers if n.simulator],
        "inbox_config": json.dumps({
            "user": {"id": request.user.pk, "name": request.user.display_name},  # type: ignore[union-attr]
            "simulator": any(n.simulator for n in numbers),
        }),
        "inbox_strings": inbox_strings(),
    }
    return render(request, "inbox.html", context)


@require_POST
@member_required
def simulate_customer_message(request: HttpRequest) -> JsonResponse:
    """Simulator mode: a customer writes to one of this tenant's simulated numbers."""
    number = WhatsAppNumber.objects.filter(tenant=current_tenant(), simulator=True).order_by("pk").first()
    if number is None:
        return JsonResponse({"detail": _("No number of this helpdesk is in simulator mode.")}, status=400)
    text = request.POST.get("text", "").strip()
    if not text:
        return JsonResponse({"detail": _("Write the customer's message.")}, status=400)
    wa_id = request.POST.get("wa_id", "").strip() or "628" + str(secrets.randbelow(10**9)).zfill(9)
    if not wa_id.isdigit():
        return JsonResponse({"detail": _("The customer's number must be digits only.")}, status=400)
    name = request.POST.get("name", "").strip() or _("Simulated customer")
    result = simulator.deliver_signed(number, simulator.inbound_payload(number, wa_id, name, text))
    return JsonResponse({"detail": result.detail, "wa_id": wa_id}, status=result.status)
