"""Login throttling (django-axes): who an attempt is for, where it comes from, and the answer to a locked-out
attempt. Configured in settings (AXES_*: LOGIN_FAILURE_LIMIT failures for an account or from an address lock
both for LOGIN_COOLOFF_MINUTES). Applies to the tenant and operator login pages and the API token endpoint:
every sign-in goes through django.contrib.auth.authenticate with the request."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account an attempt is for, spelled as the login looks it up (emails are stored lower-case)."""
    value = (credentials or {}).get("username")
    if value is None:
        value = request.POST.get("username")
    return value.strip().lower() if isinstance(value, str) else None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the connection's, or (behind PROXY_COUNT proxies of our own) the address the
    outermost of them saw. Addresses a client writes into X-Forwarded-For itself are never trusted."""
    proxies = settings.PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    remote = request.META.get("REMOTE_ADDR")
    return str(remote) if remote else None


def cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = max(1, math.ceil(cooloff_seconds() / 60))
    return ngettext(
        "Too many failed sign-in attempts. Please wait %(minutes)d minute and try again.",
        "Too many failed sign-in attempts. Please wait %(minutes)d minutes and try again.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """429 for an attempt during the cooling-off period: the API's error shape with Retry-After, or the login
    page again with the reason."""
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": lockout_message(), "code": "too_many_attempts"}, status=429)
    else:
        response = render(
            request,
            "registration/login.html",
            {
                "form": AuthenticationForm(request, initial={"username": request.POST.get("username", "")}),
                "lockout_message": lockout_message(),
                "next": request.POST.get("next", ""),
            },
            status=429,
        )
    response["Retry-After"] = str(cooloff_seconds())
    return response
