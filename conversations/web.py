"""The browser inbox. The page is rendered once; static/inbox/inbox.js then works through the REST API and
the /ws/inbox/ websocket, so working a conversation never reloads the page."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from conversations import simulator
from helpdesk.tenancy.access import current_tenant, membership_of
from helpdesk.tenancy.models import WhatsAppNumber
from tickets import actions as ticket_actions
from tickets.business_time import BusinessCalendar

View = Callable[..., HttpResponse]
# The business-hours schedule the inbox gets: waits that started up to two weeks ago, deadlines up to two months
# ahead (the longest default target, 72 business hours, is under two weeks).
SCHEDULE_DAYS_BEFORE = 14
SCHEDULE_DAYS_AFTER = 60


def member_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        membership = membership_of(request.user, current_tenant())  # type: ignore[arg-type]
        if membership is None:
            if request.user.is_authenticated:  # the styled 403 page (templates/403.html) says why
                raise PermissionDenied(_("You are not a member of this helpdesk."))
            return redirect_to_login(request.get_full_path())
        request.membership = membership  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


@ensure_csrf_cookie  # the page's fetch() POSTs read the token from the `csrftoken` cookie
@member_required
def inbox(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant()
    numbers = list(WhatsAppNumber.objects.filter(tenant=tenant).order_by("pk"))
    calendar = ticket_actions.support_rules().calendar
    context = {
        "tenant": tenant,
        "timezone_name": calendar.timezone,
        "membership": request.membership,  # type: ignore[attr-defined]
        "simulator_numbers": [n for n in numbers if n.simulator],
        "inbox_config": json.dumps(
            {
                "user": {"id": request.user.pk, "name": request.user.display_name},  # type: ignore[union-attr]
                "role": request.membership.role,  # type: ignore[attr-defined]
                "simulator": any(n.simulator for n in numbers),
                # Every time on the page is shown in the helpdesk's zone, as the reports do.
                "timezone": calendar.timezone,
                "business_hours": business_hours(calendar),
            }
        ),
        "inbox_strings": inbox_strings(),
    }
    return render(request, "inbox.html", context)


def business_hours(calendar: BusinessCalendar, now: datetime | None = None) -> list[list[int]]:
    """The business intervals around now as [opens, closes] in epoch milliseconds: the page counts the business
    time left to an SLA deadline itself, as the clock moves (a number in a frame would go stale)."""
    schedule = calendar.schedule(now or timezone.now(), SCHEDULE_DAYS_BEFORE, SCHEDULE_DAYS_AFTER)
    return [[int(opens.timestamp() * 1000), int(closes.timestamp() * 1000)] for opens, closes in schedule]


@require_POST
@member_required
def simulate_customer_message(request: HttpRequest) -> JsonResponse:
    """Simulator mode: a customer writes to one of this tenant's simulated numbers."""
    number = WhatsAppNumber.objects.filter(tenant=current_tenant(), simulator=True).order_by("pk").first()
    if number is None:
        return JsonResponse(
            {"detail": _("No number of this helpdesk is in simulator mode."), "code": "no_simulator"},
            status=400,
        )
    text = request.POST.get("text", "").strip()
    if not text:
        return JsonResponse({"detail": _("Write the customer's message."), "code": "required"}, status=400)
    wa_id = request.POST.get("wa_id", "").strip() or "628" + str(secrets.randbelow(10**9)).zfill(9)
    if not (wa_id.isascii() and wa_id.isdigit() and len(wa_id) <= 15):  # "²".isdigit() is true
        return JsonResponse(
            {"detail": _("The customer's number must be digits only."), "code": "invalid_number"}, status=400
        )
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
        "no_conversations_window": _("No customer is waiting for a reply with an open 24-hour window."),
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
        "sender_phone_app": _("WhatsApp Business app"),
        "sender_phone_app_title": _("Sent from the WhatsApp Business app on the business's phone"),
        # edits, deletions, reactions, history
        "edited": _("edited"),
        "edited_at": _("Edited %(time)s"),
        "message_deleted": _("This message was deleted"),
        "reaction_by_customer": _("The customer reacted"),
        "reaction_by_business": _("Reacted from the WhatsApp Business app"),
        "from_history": _("From the phone app's history"),
        "media_not_transferred": _("Media from the phone app's history (not transferred)"),
        "marketing_stopped": _("Marketing stopped"),
        "marketing_stopped_title": _("The customer stopped marketing messages in WhatsApp (%(time)s)"),
        # message types
        "media_image": _("Photo"),
        "media_video": _("Video"),
        "media_audio": _("Audio"),
        "media_voice": _("Voice message"),
        "media_document": _("Document"),
        "media_sticker": _("Sticker"),
        "media_unavailable": _("Media preview is not available"),
        "media_downloading": _("Downloading from WhatsApp…"),
        "no_labels": _("No labels yet: supervisors and admins make them (API /api/v1/labels/)."),
        "search_contact_match": _("Contact:"),
        "presence_viewing": _("%(name)s is here too"),
        "mention_toast": _("%(name)s mentioned you in a note"),
        "mention_from": _("%(name)s mentioned you"),
        "mentions_none": _("No mentions yet. Colleagues name you with @ in a private note."),
        "presence_typing": _("%(name)s is typing…"),
        "searching": _("Searching…"),
        "search_count": _("%(n)s found"),
        "search_count_capped": _("more than %(n)s found"),
        "search_more": _("More results"),
        "contact_number": _("Number"),
        "contact_username": _("Username"),
        "contact_bsuid": _("Business-scoped id"),
        "contact_marketing": _("Marketing messages"),
        "contact_marketing_resumed": _("Resumed"),
        "contact_opted_in": _("Opted in"),
        "contact_opted_out": _("Opted out"),
        "contact_remove_attribute": _("Remove %(key)s"),
        "contact_no_attributes": _("No attributes yet: add the customer's id, city, ..."),
        "canned_none": _("No canned response matches. Type a word of its name or text."),
        "media_failed": _("Could not be downloaded: %(reason)s"),
        "media_open": _("Open full size"),
        "media_download": _("Download"),
        "size_bytes": _("%(n)s bytes"),
        "size_kb": _("%(n)s KB"),
        "size_mb": _("%(n)s MB"),
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
        "tpl_header_var": _("Header {{%(name)s}}"),
        "tpl_body_var": _("Body {{%(name)s}}"),
        "tpl_link_var": _("Link of the button %(label)s"),
        "tpl_copy_code": _("Code to copy"),
        "tpl_media_link": _("Link to the %(kind)s"),
        "tpl_none": _("No approved template for this number yet"),
        "tpl_send": _("Send template"),
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
        "close": _("Close"),
        "conversation_ref": _("conversation #%(id)s"),
        # tickets
        "ticket_ref": _("Ticket #%(id)s"),
        "status_closed": _("Closed"),
        "priority_low": _("Low"),
        "priority_normal": _("Normal"),
        "priority_high": _("High"),
        "priority_urgent": _("Urgent"),
        "priority_title": _("Priority: %(priority)s"),
        "unassigned": _("Unassigned"),
        "assigned_to": _("Assigned to %(name)s"),
        "you_suffix": _("(you)"),
        "action_resolve_ticket_title": _("Mark the ticket resolved (E)"),
        "due_first_response": _("First response due %(at)s"),
        "due_next_response": _("Next response due %(at)s"),
        "due_resolution": _("Resolution due %(at)s"),
        "overdue_by": _("overdue by %(time)s"),
        "reopened_once": _("Reopened once"),
        "rated": _("Customer rated %(score)s / 5"),
        "reopened_times": _("Reopened %(n)s times"),
        "resolved_at": _("Resolved %(at)s"),
        "sla_overdue": _("SLA overdue"),
        "sla_left": _("SLA %(time)s"),
        "sla_due_title": _("Reply due %(at)s: %(time)s of business time left"),
        "sla_paused": _("Outside business hours: the SLA clock is paused."),
        "sla_overdue_title": _("Reply overdue by %(time)s (was due %(at)s)"),
        "in_business_time": _("%(time)s of business time left"),
        # availability
        "available": _("Available"),
        "away": _("Away"),
        "available_title": _(
            "Available: new conversations may be assigned to you automatically. Click to go away."
        ),
        "away_title": _(
            "Away: no new conversations are assigned to you automatically. Click to become available."
        ),
        # deadline warnings
        "kind_first_response": _("first response"),
        "kind_next_response": _("next response"),
        "kind_resolution": _("resolution"),
        "alert_sla_warning": _("SLA at risk"),
        "alert_sla_breached": _("SLA breached"),
        "alert_window_warning": _("Window closing"),
        "alert_window_expired": _("Window expired"),
        "toast_sla_warning": _("%(name)s: %(target)s due in %(time)s"),
        "toast_sla_breached": _("%(name)s: the %(target)s target was missed"),
        "toast_window_warning": _("%(name)s: the 24-hour window closes in %(time)s"),
        "toast_window_expired": _("%(name)s: the 24-hour window closed without a reply"),
        # private notes
        "private_note": _("Private note"),
        "private_note_by": _("Private note by %(name)s"),
        "note_label": _("Private note"),
        "reply_label": _("Reply"),
        "note_placeholder": _("Write a private note… only your team sees it"),
        "add_note": _("Add note"),
    }


def _duration_strings() -> dict[str, str]:
    return {
        "dur_s": _("%(s)s s"),
        "dur_m": _("%(m)s min"),
        "dur_m_s": _("%(m)s min %(s)s s"),
        "dur_h": _("%(h)s h"),
        "dur_h_m": _("%(h)s h %(m)s min"),
        "dur_d": _("%(d)s d"),
        "dur_d_h": _("%(d)s d %(h)s h"),
    }


def _common_page_strings() -> dict[str, str]:
    return {
        "loading": _("Loading…"),
        "error_network": _("Could not reach the server. Check your connection and try again."),
        "error_http": _("Something went wrong (HTTP %(status)s). Please try again."),
        "role_agent": _("Agent"),
        "role_supervisor": _("Supervisor"),
        "role_admin": _("Admin"),
        "what_is_this": _("What does this mean?"),
    }


def reports_strings() -> dict[str, str]:
    """Every text static/inbox/reports.js shows. The definitions follow docs/metrics.md."""
    return {
        **_common_page_strings(),
        **_duration_strings(),
        "timezone_note": _("Days and times are in %(tz)s, the helpdesk's time zone."),
        "basis_calendar": _("Calendar time: wall-clock time, nights and weekends included."),
        "basis_business": _(
            "Business time: only the time inside your business hours, holidays excluded (the time SLA targets use)."
        ),
        "all_agents": _("All agents"),
        "export_title": _("Download this table as CSV (the same filters)"),
        "median": _("median"),
        "mean": _("Mean"),
        "count": _("Count"),
        "met": _("Met"),
        "breached": _("Breached"),
        "met_share": _("met"),
        "sla_split": _("%(met)s met, %(breached)s breached"),
        "met_breached": _("%(met)s met · %(breached)s breached"),
        "n_measured": _("%(n)s measured"),
        "stats_help": _(
            "Median: half of the times were shorter. p90: 90% were shorter. Mean: the average. Count: how many "
            "were measured."
        ),
        "no_data": _("no data"),
        "no_times": _("No times measured in this period."),
        "no_volume": _("No messages in this period."),
        "no_agents": _("No members to show."),
        "chart_keys_help": _(
            "Chart. Use the left and right arrow keys to read the values of each day or week."
        ),
        "week_of": _("wk %(date)s"),
        "week_of_long": _("Week of %(date)s"),
        # headline figures and their definitions (docs/metrics.md)
        "metric_first_response": _("First response time"),
        "metric_response": _("Response time"),
        "metric_resolution": _("Resolution time"),
        "metric_sla": _("SLA targets"),
        "metric_chat_volume": _("Chat volume"),
        "metric_resolved_tickets": _("Resolved tickets"),
        "metric_windows_expired_unanswered": _("Windows expired unanswered"),
        "def_first_response": _(
            "From the customer's first message of a ticket (or after a reopen) to the first reply by a person. "
            "Counted on the day of the reply."
        ),
        "def_response": _(
            "Every wait: from the customer's first unanswered message to the next reply by a person. Bots, "
            "automations and notes do not count. Counted on the day of the reply."
        ),
        "def_resolution": _(
            "From the ticket's opening (or latest reopen) until it is marked resolved. Counted on the day of "
            "resolution."
        ),
        "def_sla": _(
            "Each target a ticket had (first response, next response, resolution; in business time) counts once: "
            "met on the day of the reply or resolution, breached on the day the deadline passed."
        ),
        "def_resolved_tickets": _(
            "Tickets marked resolved in the period, by the day of resolution; a ticket counts once per period."
        ),
        "def_windows_expired_unanswered": _(
            "WhatsApp 24-hour windows that closed while the customer was still waiting for a reply. Counted on "
            "the day the window closed."
        ),
        "def_conversations": _("Conversations with at least one customer message in the period."),
        "def_tickets_opened": _(
            "Tickets opened by a customer message in the period. Reopens are not new tickets."
        ),
        "def_messages_in": _("Customer messages, by their WhatsApp time."),
        "def_messages_out": _(
            "Messages we sent: agents, bots, automations and broadcasts, not notes. With an agent filter, that "
            "agent's replies."
        ),
        "def_agent_messages_out": _("Messages this agent sent (private notes not included)."),
        "volume_conversations": _("Conversations"),
        "volume_tickets_opened": _("Tickets opened"),
        "volume_messages_in": _("Messages in"),
        "volume_messages_out": _("Messages out"),
        # agents table
        "col_agent": _("Agent"),
        "col_first_response": _("First response"),
        "col_response": _("Response"),
        "col_resolution": _("Resolution"),
        "col_messages_out": _("Messages sent"),
        "col_resolved": _("Resolved"),
        "col_sla": _("SLA met"),
        "col_windows": _("Windows expired"),
        "col_csat": _("Satisfaction"),
        # satisfaction (tickets/satisfaction.py) and the label filter
        "metric_csat": _("Customer satisfaction"),
        "satisfied_share": _("satisfied"),
        "csat_average": _("Average"),
        "csat_responses": _("Ratings"),
        "csat_detail": _("%(average)s / 5 · %(n)s ratings"),
        "def_csat": _(
            "Answers to the satisfaction question asked when a ticket is resolved: the share of 4 and 5 ratings, "
            "by the day of the answer, for the agent who resolved the ticket."
        ),
        "all_labels": _("All labels"),
    }


def settings_strings() -> dict[str, str]:
    """Every text static/inbox/settings.js shows."""
    return {
        **_common_page_strings(),
        "closed_all_day": _("Closed"),
        "midnight": _("midnight"),
        "add_hours": _("Add hours"),
        "add_interval": _("Add interval"),
        "opens_on": _("%(day)s: opens at"),
        "closes_on": _("%(day)s: closes at"),
        "remove": _("Remove"),
        "remove_hours": _("Remove these hours on %(day)s"),
        "no_holidays": _("No holidays yet."),
        "holiday_date": _("Holiday date"),
        "holiday_name": _("Holiday name"),
        "holiday_name_placeholder": _("Name, e.g. Independence Day"),
        "remove_holiday": _("Remove this holiday"),
        "priority_low": _("Low"),
        "priority_normal": _("Normal"),
        "priority_high": _("High"),
        "priority_urgent": _("Urgent"),
        "target_first_response_seconds": _("First response"),
        "target_next_response_seconds": _("Next response"),
        "target_resolution_seconds": _("Resolution"),
        "target_label": _("%(target)s target for %(priority)s priority"),
        "unit_of": _("Unit of the %(label)s"),
        "unit_minutes": _("minutes"),
        "unit_hours": _("hours"),
        "no_target": _("No target"),
        "unsaved": _("Unsaved changes"),
        "saving": _("Saving…"),
        "saved_at": _("Saved at %(time)s"),
        "label_reopen": _("Reopen window"),
        "label_window_warning": _("24-hour window warning"),
        "label_sla_warning": _("SLA warning"),
        "error_range": _("%(label)s: a whole number from %(low)s to %(high)s."),
        "error_timezone": _("Choose a time zone."),
        "error_time": _("%(day)s: enter both times as HH:MM."),
        "error_hours_order": _(
            "%(day)s: %(opens)s to %(closes)s ends before it starts (use 00:00 for midnight)."
        ),
        "error_overlap": _("%(day)s: the intervals overlap."),
        "error_holiday_date": _("Each holiday needs a date."),
        "error_holiday_twice": _("%(date)s is listed twice."),
        "error_target": _(
            "%(target)s target for %(priority)s priority: a positive number, or empty for none."
        ),
        "error_forbidden": _("Not saved:"),
    }


def numbers_strings() -> dict[str, str]:
    """Every text static/inbox/numbers.js shows."""
    return {
        **_common_page_strings(),
        "add_title": _("Add a WhatsApp number"),
        "edit_title": _("Edit %(number)s"),
        "secret_kept": _("Saved — type a new one to replace it"),
        "verify_kept": _("Saved — type a new one to replace it"),
        "verify_generated": _("Generated when empty"),
        "error_required": _(
            "Fill in the phone number ID, account ID, display number, access token and app secret."
        ),
        "error_number_exists": _("This phone number ID is registered already."),
        "error_number_in_use": _("This number has conversations: removing it would lose their history."),
        "field_phone_number_id": _("Phone number ID"),
        "field_waba_id": _("WhatsApp Business Account ID"),
        "field_display_number": _("Display number"),
        "field_access_token": _("Access token"),
        "field_app_secret": _("App secret"),
        "field_verify_token": _("Verify token"),
        "field_simulator": _("Simulator mode"),
        "test_ok": _("Connected: Meta answered and the details below are current."),
        "test_failed": _("Meta refused (error %(code)s): %(message)s"),
        "confirm_verify_token": _(
            "Make a new verify token? Paste it into Meta's app settings: the old one stops working now."
        ),
        "verify_token_new": _("New verify token made. Paste it into Meta's app settings."),
        "confirm_remove": _("Remove %(number)s from the helpdesk?"),
        "copy": _("Copy"),
        "copied": _("Copied"),
        "copy_failed": _("Select and copy it by hand"),
        "raw_event": _("Raw event"),
        "no_history": _("Nothing has happened to this number yet."),
        "no_costs": _("No priced messages in the last 30 days."),
        "cost_day": _("Day"),
        "cost_category": _("Category"),
        "cost_billable": _("Billable"),
        "cost_free": _("Free"),
        "costs_hint": _(
            "Meta's pricing of each message, per day in %(tz)s; templates are billed when delivered."
        ),
        "never_tested": _("Not tested yet"),
        "connection_ok": _("Working (tested %(when)s)"),
        "connection_failed": _("Failed %(when)s — error %(code)s: %(message)s"),
        "name_unknown": _("Verified name not known yet: test the connection"),
        "quality_help": _(
            "Meta's quality rating of the number, from how customers received its messages in the last 7 days."
        ),
        "quality_green": _("Quality: high"),
        "quality_yellow": _("Quality: medium"),
        "quality_red": _("Quality: low"),
        "quality_unknown": _("Quality: not rated"),
        "simulator": _("Simulator"),
        "simulator_help": _(
            "Simulator mode: nothing reaches WhatsApp. Replies go to the built-in simulator, which answers with "
            "delivery ticks, and templates are approved by it."
        ),
        "messaging_limit": _("Messaging limit"),
        "throughput": _("Throughput"),
        "name_status": _("Display name"),
        "ids": _("IDs"),
        "connection": _("Connection"),
        "not_known": _("not known yet"),
        "meta_setup": _("In Meta's app settings"),
        "meta_setup_help": _(
            "WhatsApp > Configuration > Webhook: paste these two, then subscribe to the fields."
        ),
        "webhook_url": _("Callback URL"),
        "verify_token": _("Verify token"),
        "verify_unknown": _("(set before it was kept: make a new one to see it)"),
        "working": _("Working…"),
        "test_connection": _("Test connection"),
        "edit": _("Edit"),
        "new_verify_token": _("New verify token"),
        "remove": _("Remove"),
        "health_history": _("Health history"),
        "costs": _("Costs (30 days)"),
        "no_numbers": _("No number yet. Add one to receive and answer WhatsApp messages."),
    }


def templates_strings() -> dict[str, str]:
    """Every text static/inbox/templates.js shows."""
    return {
        **_common_page_strings(),
        "no_templates": _("No template here yet. Create one, or sync the ones you made in Meta's tools."),
        "new_title": _("New template"),
        "edit_title": _("Edit %(name)s (Meta reviews it again)"),
        "edit": _("Edit"),
        "confirm_delete": _("Delete the template %(name)s (%(language)s) here and at Meta?"),
        "delete": _("Delete"),
        "remove": _("Remove"),
        "synced": _("%(n)s templates read from Meta."),
        "sync_failed_for": _("Meta did not answer for %(numbers)s: their templates are as they were."),
        "submitted": _(
            "%(name)s was submitted. Meta usually reviews it within minutes; its state changes here."
        ),
        "error_template_exists": _("A template with this name and language exists already."),
        "example_header": _("Example for header {{%(name)s}}"),
        "example_body": _("Example for {{%(name)s}}"),
        "button_quick_reply": _("Quick reply"),
        "button_url": _("Link"),
        "button_phone_number": _("Call"),
        "button_copy_code": _("Copy code"),
        "button_label": _("Button label"),
        "button_url_example": _("Example of the link's end"),
        "button_phone": _("Phone number with country code"),
        "button_code_example": _("Example code"),
        "media_image": _("[Image]"),
        "media_video": _("[Video]"),
        "media_document": _("[Document]"),
        "preview_empty": _("The body appears here."),
        "check_clean": _("No problem found."),
        "finding_error": _("Blocks submission:"),
        "finding_warning": _("Warning:"),
        "category_marketing": _("Marketing"),
        "category_utility": _("Utility"),
        "category_authentication": _("Authentication"),
        "status_draft": _("Draft"),
        "status_pending": _("Pending review"),
        "status_approved": _("Approved"),
        "status_rejected": _("Rejected"),
        "status_paused": _("Paused"),
        "status_disabled": _("Disabled"),
        "status_flagged": _("Flagged"),
        "status_in_appeal": _("In appeal"),
        "status_limit_exceeded": _("Limit exceeded"),
        "status_locked": _("Locked"),
        "status_archived": _("Archived"),
        "status_pending_deletion": _("Pending deletion"),
        "status_deleted": _("Deleted"),
        "quality_green": _("High"),
        "quality_yellow": _("Medium"),
        "quality_red": _("Low"),
        "quality_unknown": _("Not rated"),
        "list_prohibited": _("Prohibited content (blocks submission)"),
        "list_promotional": _("Promotional words (a warning in utility templates)"),
        "list_opt_out": _("Opt-out hints (expected in marketing templates)"),
        "list_url_shorteners": _("Link shorteners (block submission)"),
        "built_in_count": _("plus %(n)s built in"),
        "word_lists_saved": _("Saved."),
    }


def broadcasts_strings() -> dict[str, str]:
    """Every text static/inbox/broadcasts.js shows."""
    return {
        **_common_page_strings(),
        "status_draft": _("Draft"),
        "status_scheduled": _("Scheduled"),
        "status_running": _("Sending"),
        "status_paused": _("Paused"),
        "status_completed": _("Completed"),
        "status_cancelled": _("Cancelled"),
        "reason_invalid_number": _("Not a valid number"),
        "reason_duplicate": _("Named twice"),
        "reason_opted_out": _("Opted out"),
        "reason_marketing_stopped": _("Stopped marketing in WhatsApp"),
        "reason_no_opt_in": _("No opt-in recorded"),
        "reason_frequency_cap": _("Had a broadcast recently (frequency cap)"),
        "recipient_queued": _("Waiting"),
        "recipient_skipped": _("Skipped"),
        "recipient_sending": _("Sending"),
        "recipient_sent": _("Sent"),
        "recipient_delivered": _("Delivered"),
        "recipient_read": _("Read"),
        "recipient_failed": _("Failed"),
        "recipient_replied": _("Replied"),
        "no_broadcasts": _("No broadcasts yet."),
        "no_templates": _("No approved template for this number yet: make one on the Templates page."),
        "variable": _("Variable %(n)s"),
        "variable_hint": _("Fixed text, or {{contact.name}}, {{contact.wa_id}}, {{contact.attributes.city}}"),
        "preview_title": _("Before sending"),
        "will_receive": _("%(n)s will receive it"),
        "skipped_title": _("Skipped, and why"),
        "nobody_skipped": _("Nobody is skipped."),
        "daily_limit": _("Daily limit: %(used)s used in the last 24 hours + %(n)s now, of %(limit)s"),
        "daily_limit_unknown": _("Daily limit: not known yet (refresh the number's health)"),
        "daily_limit_over": _("This would pass the daily limit: Meta will refuse the rest."),
        "cost": _("Estimated cost: %(amount)s USD (%(category)s, %(rate)s per message; %(basis)s)"),
        "start": _("Start sending"),
        "start_anyway": _("Start anyway at half pace"),
        "schedule": _("Schedule"),
        "pause": _("Pause"),
        "resume": _("Resume"),
        "cancel": _("Cancel broadcast"),
        "confirm_cancel": _("Cancel this broadcast? Whoever has not received it yet will not."),
        "progress": _("%(done)s of %(total)s handled"),
        "paused_because": _("Paused: %(reason)s"),
        "created": _("Draft saved: check who will receive it, then start."),
        "error_audience": _("Choose at least one label or type at least one number."),
        "import_done": _(
            "%(created)s added, %(updated)s updated, %(opted_in)s opted in, %(rejected)s rejected."
        ),
        "line": _("Line %(line)s"),
        "all_recipients": _("All"),
    }
