"""Public-domain endpoints: Meta's webhook (handshake and events) and the health check."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from conversations import webhooks
from helpdesk import crypto
from helpdesk.tenancy.models import WhatsAppNumber

log = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _handshake(request)
    result = webhooks.ingest(request.body, request.headers.get("X-Hub-Signature-256"))
    return JsonResponse({"detail": result.detail}, status=result.status)


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
    return JsonResponse({"status": "ok" if healthy else "degraded", **state}, status=200 if healthy else 503)
