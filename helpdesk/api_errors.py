"""Every API error in one shape, `{"detail": <human text>, "code": <machine code>}`, and the OpenAPI schema
saying so for every status an operation can answer.

- `exception_handler` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) turns DRF's exceptions (validation, parse errors,
  401, 403, 404, 405, 415, 429, ...) into that shape. Field errors keep their fields:
  `{"detail": "status: ...", "code": "invalid", "fields": {"status": ["..."]}}`.
- `not_found` / `server_error` (handler404 / handler500 of the tenant URLs) answer in the same shape under
  /api/ when no route matched or something broke outside DRF.
- `HelpdeskAutoSchema` (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) adds the error responses every operation can
  give: 400 where it takes a body or query parameters, 401 and 403 where it needs a member, 404 where it
  addresses an object (or pages / picks a format), 415 where it takes a body. Statuses only some operations
  give (409 on replies outside the window, 429 on the token endpoint) are declared by those views with
  `error_responses(...)`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from psycopg_pool import PoolTimeout
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

RETRY_AFTER_SECONDS = 5

# The body of every API error. (Built inline: a serializer class cannot declare a field named `fields`.)
ERROR_SERIALIZER = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(help_text="What went wrong, for people."),
        "code": serializers.CharField(
            help_text="What went wrong, for programs (e.g. `invalid`, `not_found`)."
        ),
        "fields": serializers.DictField(
            child=serializers.JSONField(),
            required=False,
            help_text="Validation errors by field (lists of messages), when the request had fields.",
        ),
    },
)


ERROR_DESCRIPTIONS = {
    400: "The request is malformed or a value is invalid; nothing changed.",
    401: "No credentials, or credentials that are not valid.",
    403: "Not a member of this helpdesk, or the role may not do this.",
    404: "No such object in this helpdesk (or no such page or format).",
    409: "The change conflicts with the state of the object; nothing changed.",
    415: "The body is in a media type this operation does not take.",
    429: "Too many attempts: wait before trying again.",
}


def error_response(status: int) -> OpenApiResponse:
    return OpenApiResponse(ERROR_SERIALIZER, description=ERROR_DESCRIPTIONS.get(status, "An error."))


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """For `extend_schema(responses={200: ..., **error_responses(409)})`."""
    return {status: error_response(status) for status in statuses}


# ------------------------------------------------------------------ the exception handler


def _text(value: Any) -> str:
    """The first message in a (possibly nested) DRF error detail."""
    if isinstance(value, dict):
        for item in value.values():
            return _text(item)
        return ""
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    return str(value)


def _plain(value: Any) -> Any:
    """ErrorDetail strings as plain strings, a lone message as a one-item list (DRF's usual field shape)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value)


def _code(value: Any, default: str) -> str:
    if isinstance(value, dict):
        return _code(next(iter(value.values()), None), default)
    if isinstance(value, list):
        return _code(value[0], default) if value else default
    return str(getattr(value, "code", None) or default)


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        if isinstance(detail, dict) and "detail" in detail and set(detail) <= {"detail", "code"}:
            # ValidationError({"detail": ...}): a message about the whole request
            return {"detail": _text(detail["detail"]), "code": _code(detail["detail"], "invalid")}
        if isinstance(detail, dict) and detail:
            fields = {
                str(name): _plain(errors) if isinstance(errors, list | dict) else [str(errors)]
                for name, errors in detail.items()
            }
            summary = "; ".join(
                _text(errors) if name == api_settings.NON_FIELD_ERRORS_KEY else f"{name}: {_text(errors)}"
                for name, errors in fields.items()
            )
            return {"detail": summary, "code": "invalid", "fields": fields}
        return {"detail": _text(detail) or "Invalid input.", "code": _code(detail, "invalid")}
    return {"detail": _text(detail) or str(exc.default_detail), "code": _code(detail, str(exc.default_code))}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler (status, headers, rollback), with every body in the `{detail, code}` shape."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response  # not an API error: Django answers 500 and logs it
    response.data = error_body(exc)
    return response


# ------------------------------------------------------------------ errors Django answers itself


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: a URL that matches no route (`/api/v1/conversations/0.5/`) is a JSON error under /api/."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception or Http404())


def database_busy() -> bool:
    """Whether the exception being handled is a wait for a pooled database connection that ran out of time."""
    error: BaseException | None = sys.exc_info()[1]
    while error is not None:
        if isinstance(error, PoolTimeout):
            return True
        error = error.__cause__ or error.__context__
    return False


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 (tenant and public URLs): the error shape under /api/ (the traceback goes to the log, never
    to the client). A request that found every pooled database connection busy is answered 503 with
    Retry-After instead: nothing was done, and Meta (or any client) can send it again."""
    if database_busy():
        busy = JsonResponse({"detail": "Busy; retry shortly.", "code": "overloaded"}, status=503)
        busy["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return busy
    if _is_api(request):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return defaults.server_error(request)


# ------------------------------------------------------------------ the schema


class HelpdeskAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, documenting the error responses every operation can give."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        query = {p["name"] for p in parameters if p.get("in") == "query"}
        has_body = "requestBody" in operation
        statuses = []
        if has_body or query:
            statuses.append(400)
        if {} not in operation.get("security", [{}]):
            statuses += [401, 403]
        if any(p.get("in") == "path" for p in parameters) or query & {"page", "format"}:
            statuses.append(404)
        if has_body:
            statuses.append(415)
        responses = operation.setdefault("responses", {})
        for status in statuses:
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(error_response(status), str(status))
        operation["responses"] = dict(sorted(responses.items()))
        return operation
