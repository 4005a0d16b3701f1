"""Public-domain endpoints: Meta's webhook (handshake and events) and the health check."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from conversations import webhooks
from helpdesk import crypto
from helpdesk.tenancy.models import WebhookEvent, WhatsAppNumber

log = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _handshake(request)
    result = webhooks.ingest(request.body, request.headers.get("X-Hub-Signature-256"))
    body = {"detail": result.detail, "code": result.code} if result.code else {"detail": result.detail}
    return JsonResponse(body, status=result.status)


def _handshake(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    if (
        request.GET.get("hub.mode") == "subscribe"
        and token
        and WhatsAppNumber.objects.filter(verify_token_digest__in=crypto.lookup_digests(token)).exists()
    ):
        return HttpResponse(challenge, content_type="text/plain")
    log.warning("webhook handshake with an unknown verify token refused")
    return HttpResponse("Verify token does not match.", status=403, content_type="text/plain")


def _check(name: str, probe: Callable[[], object]) -> str:
    """ "ok" or "error"; the reason goes to the log, never to the public answer."""
    try:
        probe()
    except Exception:
        log.exception("health check: %s is not reachable", name)
        return "error"
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """`{"status": "ok"|"degraded", "database": "ok"|"error", "redis": "ok"|"error"}`; 503 when degraded."""
    state = {"database": _check("database", _database), "redis": _check("redis", _redis)}
    healthy = all(value == "ok" for value in state.values())
    body: dict[str, object] = {"status": "ok" if healthy else "degraded", **state}
    if state["database"] == "ok":
        # For the operator: webhook events that failed every retry and wait for `replay_webhook_events`.
        body["parked_webhook_events"] = WebhookEvent.objects.filter(parked_at__isnull=False).count()
    return JsonResponse(body, status=200 if healthy else 503)


def parked_webhooks(request: HttpRequest) -> HttpResponse:
    """The operator's list of parked webhook events (public domain, superusers): tenant, field, error and
    first-seen time of every change that failed all its retries, with a replay after a fix."""
    if not (request.user.is_authenticated and request.user.is_superuser):
        return redirect(f"/login/?next={request.path}")
    message = ""
    if request.method == "POST":
        chosen = webhooks.parked_events()
        event_id = request.POST.get("event", "")
        if event_id:
            valid = event_id.isascii() and event_id.isdecimal() and len(event_id) < 18
            chosen = chosen.filter(pk=int(event_id)) if valid else chosen.none()
        applied, failed = webhooks.replay(chosen)
        message = _("Replayed: %(applied)d applied, %(failed)d failed again.") % {
            "applied": applied,
            "failed": failed,
        }
    rows = [
        {"event": event, "failure": failure}
        for event in webhooks.parked_events()[:500]
        for failure in (event.failures or [{"tenant": "", "field": "", "error": event.last_error}])
    ]
    return render(request, "operator_webhooks.html", {"rows": rows, "message": message})
