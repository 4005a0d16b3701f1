"""REST API for tickets, reports, support settings and the agent's own availability."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.params import id_param, parse_id
from helpdesk.tenancy import permissions
from helpdesk.tenancy.access import current_tenant
from helpdesk.tenancy.models import Membership
from helpdesk.tenancy.permissions import IsAdminOrReadOnly
from tickets import actions, reports, support_settings
from tickets.models import Priority, Ticket, TicketStatus
from tickets.serializers import TicketSerializer, TicketUpdateSerializer


def _error(error: actions.TicketError) -> Response:
    return Response({"detail": str(error), "code": error.code}, status=error.http_status)


class IsSupervisorOrAdmin(permissions.IsSupervisorOrAdmin):
    message = "Reports are for supervisors and admins."


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Ticket]):
    """Tickets, newest first. Filters: `status`, `priority`, `assignee` (a user id, `me` or `none`)."""

    serializer_class = TicketSerializer

    def get_queryset(self) -> QuerySet[Ticket]:
        queryset = Ticket.objects.select_related("assignee").order_by("-opened_at", "-id")
        params = self.request.query_params
        for field, allowed in (("status", TicketStatus.values), ("priority", Priority.values)):
            value = params.get(field)
            if value:
                if value not in allowed:
                    raise ValidationError({field: f"Use one of: {', '.join(allowed)}."})
                queryset = queryset.filter(**{field: value})
        assignee = params.get("assignee")
        if assignee:
            if assignee == "me":
                queryset = queryset.filter(assignee_id=self.request.user.pk)
            elif assignee == "none":
                queryset = queryset.filter(assignee__isnull=True)
            elif (assignee_id := parse_id(assignee)) is not None:
                queryset = queryset.filter(assignee_id=assignee_id)
            else:
                raise ValidationError({"assignee": "A user id, `me` or `none`."})
        conversation = id_param(params, "conversation", "A conversation id")
        if conversation is not None:
            queryset = queryset.filter(conversation_id=conversation)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=TicketStatus.values),
            OpenApiParameter("priority", OpenApiTypes.STR, enum=Priority.values),
            OpenApiParameter("assignee", OpenApiTypes.STR, description="user id, `me` or `none`"),
            OpenApiParameter("conversation", OpenApiTypes.INT),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=TicketUpdateSerializer, responses=TicketSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        data = TicketUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes: dict[str, Any] = {
            key: data.validated_data[key] for key in ("status", "priority") if key in data.validated_data
        }
        if "assignee" in data.validated_data:
            changes["assignee_id"] = data.validated_data["assignee"]
        try:
            ticket = actions.check_update_ticket(self.get_object(), request.user, **changes)  # type: ignore[arg-type]
        except actions.TicketError as error:
            return _error(error)
        return Response(TicketSerializer(Ticket.objects.select_related("assignee").get(pk=ticket.pk)).data)


# ------------------------------------------------------------------ reports


class CSVRenderer(BaseRenderer):
    """`?format=csv`: the report's rows flattened (nested figures become `first_response_seconds.median`)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        rows = data.get("results") if isinstance(data, dict) and "results" in data else [data]
        if isinstance(data, dict) and "detail" in data and "code" in data:  # an error: its text and code
            rows = [{"detail": data["detail"], "code": data["code"]}]
        flat = [_flatten(row) for row in rows or []]
        columns: list[str] = []
        for row in flat:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)
        return buffer.getvalue().encode()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


REPORT_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="first day (tenant time zone)"),
    OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="last day, included"),
    OpenApiParameter("agent", OpenApiTypes.INT),
    OpenApiParameter("number", OpenApiTypes.INT),
    OpenApiParameter(
        "label", OpenApiTypes.INT, description="only conversations that carry this label (a label id)"
    ),
    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
]


class ReportView(APIView):
    permission_classes = [IsSupervisorOrAdmin]
    renderer_classes = [JSONRenderer, CSVRenderer]

    def period(self, request: Request) -> reports.Period:
        params = request.query_params
        try:
            return reports.Period.parse(
                params.get("from"),
                params.get("to"),
                params.get("agent"),
                params.get("number"),
                params.get("label"),
            )
        except reports.ReportError as error:
            raise ValidationError({"detail": str(error)}) from None

    def timezone_name(self) -> str:
        tenant = current_tenant()
        return tenant.timezone_name if tenant else "UTC"

    def respond(self, request: Request, figures: dict[str, Any], name: str) -> Response:
        response = Response(figures)
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = (
                f'attachment; filename="{name}-{figures["from"]}-{figures["to"]}.csv"'
            )
        return response


class SummaryReportView(ReportView):
    @extend_schema(parameters=REPORT_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """Headline figures of a period (docs/metrics.md)."""
        return self.respond(request, reports.summary(self.period(request), self.timezone_name()), "summary")


class TimeseriesReportView(ReportView):
    @extend_schema(
        parameters=[*REPORT_PARAMETERS, OpenApiParameter("interval", OpenApiTypes.STR, enum=["day", "week"])],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The same figures per day or per week (weeks start on Monday)."""
        try:
            figures = reports.timeseries(
                self.period(request), request.query_params.get("interval", "day"), self.timezone_name()
            )
        except reports.ReportError as error:
            raise ValidationError({"detail": str(error)}) from None
        return self.respond(request, figures, "timeseries")


class AgentsReportView(ReportView):
    @extend_schema(parameters=REPORT_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        """One row per member of the helpdesk."""
        tenant = current_tenant()
        members = [
            {"id": m.user_id, "name": m.user.display_name, "email": m.user.email, "role": m.role}
            for m in Membership.objects.select_related("user").filter(tenant=tenant).order_by("user__email")
        ]
        return self.respond(
            request, reports.agents(self.period(request), members, self.timezone_name()), "agents"
        )


# ------------------------------------------------------------------ me


class AvailabilityView(APIView):
    """The signed-in member: role and availability for automatic assignment (`PATCH {"available": bool}`)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        membership = request.membership  # type: ignore[attr-defined]
        return Response(_me(membership))

    @extend_schema(
        request={"application/json": {"type": "object", "properties": {"available": {"type": "boolean"}}}},
        responses=OpenApiTypes.OBJECT,
    )
    def patch(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": 'A JSON object: {"available": true | false}.'})
        available = request.data.get("available")
        if not isinstance(available, bool):
            raise ValidationError({"available": "true or false."})
        membership = actions.do_set_availability(request.user, available)  # type: ignore[arg-type]
        return Response(_me(membership))


def _me(membership: Membership) -> dict[str, Any]:
    return {
        "id": membership.user_id,
        "email": membership.user.email,
        "name": membership.user.display_name,
        "role": membership.role,
        "available": membership.is_available,
    }


class MembersView(APIView):
    """Members of the helpdesk (for assignment pickers and report filters)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        members = (
            Membership.objects.select_related("user").filter(tenant=current_tenant()).order_by("user__email")
        )
        return Response({"results": [_me(m) for m in members]})


class SupportSettingsView(APIView):
    """The tenant's time zone, business hours, holidays, SLA policies and support settings. Admins change them
    with PATCH (any subset of the sections); everyone in the helpdesk may read them."""

    permission_classes = [IsAdminOrReadOnly]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(support_settings.support_settings_data())

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def patch(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "A JSON object of settings."})
        try:
            return Response(support_settings.check_update_support_settings(dict(request.data)))
        except support_settings.SettingsError as error:
            return Response({"detail": str(error), "code": "invalid"}, status=400)
