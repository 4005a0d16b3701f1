"""The browser inbox. The page is rendered once; static/inbox/inbox.js then works through the REST API and
the /ws/inbox/ websocket, so working a conversation never reloads the page."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

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


def inbox_strings() -> dict[str, str]:
    """Every text static/inbox/inbox.js shows, translated for the request's language. Placeholders are
    `%(name)s`, filled in by the script."""
    return {
        # connection indicator
        "conn_connecting": _("Connecting…"),
        "conn_live": _("Live"),
        "conn_reconnecting": _("Reconnecting…"),
        "conn_offline": _("Offline"),
        "conn_live_title": _("Connected: new messages and ticks appear as they happen."),
        "conn_reconnecting_title": _(
            "Connection lost. Reconnecting; nothing is missed meanwhile. Click to retry now."
        ),
        "conn_offline_title": _("This device is offline. The inbox catches up as soon as it is back online."),
        # times
        "time_now": _("now"),
        "time_minutes": _("%(n)sm"),
        "time_hours": _("%(n)sh"),
        "time_days": _("%(n)sd"),
        "today": _("Today"),
        "yesterday": _("Yesterday"),
        "duration_hm": _("%(h)s h %(m)s m"),
        "duration_m": _("%(m)s m"),
        "duration_hm_short": _("%(h)sh %(m)sm"),
        "duration_m_short": _("%(m)sm"),
        # the 24-hour customer service window
        "window_open": _("Window open · closes in %(time)s"),
        "window_soon": _("Window closing soon · closes in %(time)s"),
        "window_closed": _("Window closed — only an approved template can be sent"),
        "window_pill_closed": _("Window closed"),
        "window_pill_title": _("24-hour window: closes in %(time)s"),
        "window_pill_closed_title": _("24-hour window closed: only an approved template can be sent"),
        # conversation status
        "status_open": _("Open"),
        "status_pending": _("Pending"),
        "status_resolved": _("Resolved"),
        "action_resolve": _("Resolve"),
        "action_reopen": _("Reopen"),
        "action_pending": _("Mark pending"),
        "action_resolve_title": _("Mark this conversation resolved (E)"),
        # list and thread
        "loading": _("Loading…"),
        "load_more": _("Load more conversations"),
        "load_earlier": _("Load earlier messages"),
        "no_conversations": _("No conversations yet. They appear here as soon as a customer writes."),
        "no_conversations_filter": _("No conversations with this status."),
        "no_messages": _("No messages in this conversation yet."),
        "conversation_not_found": _("This conversation does not exist, or you cannot see it."),
        "new_messages": _("New messages"),
        "unknown_contact": _("Unknown contact"),
        "unread_title": _("%(n)s unread"),
        "reply_to": _("Reply to"),
        "reply_to_unknown": _("an earlier message"),
        # delivery ticks
        "tick_received": _("Received"),
        "tick_queued": _("Queued: waiting to be sent"),
        "tick_sent": _("Sent"),
        "tick_delivered": _("Delivered"),
        "tick_read": _("Read"),
        "tick_failed": _("Not delivered"),
        "failed_detail": _("Not delivered · error %(code)s: %(title)s"),
        "failed_detail_no_code": _("Not delivered: %(title)s"),
        "failed_unknown": _("Not delivered"),
        # senders
        "sender_bot": _("Bot"),
        "sender_automation": _("Automation"),
        "sender_broadcast": _("Broadcast"),
        # message types
        "media_image": _("Photo"),
        "media_video": _("Video"),
        "media_audio": _("Audio"),
        "media_voice": _("Voice message"),
        "media_document": _("Document"),
        "media_sticker": _("Sticker"),
        "media_unavailable": _("Media preview is not available yet"),
        "location": _("Location"),
        "open_in_maps": _("Open in Google Maps"),
        "contact_card": _("Contact card"),
        "reply_button": _("Tapped a button"),
        "reply_list": _("Chose from a list"),
        "reply_template_button": _("Tapped a template button"),
        "reply_form": _("Submitted a form"),
        "reacted": _("reacted %(emoji)s"),
        "reaction_removed": _("removed a reaction"),
        "reaction_to": _("to “%(text)s”"),
        "unsupported": _("Unsupported message type"),
        "unsupported_kind": _("Unsupported message type (%(kind)s)"),
        "type_fallback": _("%(type)s message"),
        "template_message": _("Template: %(name)s"),
        # composer
        "reply_placeholder": _("Write a reply… Enter sends, Shift+Enter adds a line"),
        "reply_closed_placeholder": _("Replies are off while the 24-hour window is closed"),
        "reply_closed_notice": _(
            "The 24-hour customer service window is closed. WhatsApp only accepts an approved template "
            "message until the customer writes again."
        ),
        "send": _("Send"),
        "sending": _("Sending…"),
        "char_count": _("%(n)s / %(max)s"),
        # errors
        "error_network": _("Could not reach the server. Check your connection and try again."),
        "error_http": _("Something went wrong (HTTP %(status)s). Please try again."),
        "error_window_closed": _(
            "The 24-hour customer service window is closed: WhatsApp only accepts an approved template "
            "message until the customer writes again."
        ),
        "error_session": _("Your session has ended. Sign in again to keep working."),
        "sign_in_again": _("Sign in again"),
        "retry": _("Retry"),
        # simulator
        "sim_sent": _("Delivered from +%(wa_id)s. It appears in the inbox in a moment."),
    }
