"""REST API of broadcasts (/api/v1/broadcasts/), for supervisors and admins: create, preview, start, pause,
resume, cancel, and the recipients with what happened to each. The work is in conversations/broadcasts.py."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from conversations import broadcasts, message_templates
from conversations.actions import ActionError
from conversations.models import Broadcast, BroadcastRecipient, RecipientStatus
from helpdesk.api_errors import error_responses
from helpdesk.tenancy.permissions import IsSupervisorOrAdmin


def _refused(error: ActionError) -> Response:
    body: dict[str, Any] = {"detail": str(error), "code": error.code}
    if isinstance(error, message_templates.TemplateRefused):
        body = error.as_dict()
    return Response(body, status=getattr(error, "http_status", 400))


class BroadcastSerializer(serializers.Serializer[Broadcast]):
    """A broadcast item (conversations.broadcasts.broadcast_data): state, template, audience and counts."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    number = serializers.IntegerField(read_only=True)
    template = serializers.DictField(read_only=True, help_text="{name, language, components, category}")
    audience = serializers.DictField(read_only=True, help_text="{labels, contacts, wa_ids}")
    status = serializers.CharField(
        read_only=True, help_text="draft, scheduled, running, paused, completed, cancelled"
    )
    paused_reason = serializers.CharField(read_only=True, allow_null=True)
    paused_code = serializers.CharField(read_only=True, allow_null=True)
    scheduled_at = serializers.DateTimeField(read_only=True, allow_null=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    half_pace = serializers.BooleanField(read_only=True)
    counts = serializers.DictField(read_only=True, help_text="recipients per status, total, duplicates")
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance: Broadcast) -> dict[str, Any]:
        return broadcasts.broadcast_data(instance)


class RecipientSerializer(serializers.ModelSerializer[BroadcastRecipient]):
    class Meta:
        model = BroadcastRecipient
        fields = [
            "id",
            "contact",
            "wa_id",
            "status",
            "reason",
            "error_code",
            "error_title",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "replied_at",
        ]

    def to_representation(self, instance: BroadcastRecipient) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["reason"] = data["reason"] or None
        return data


class BroadcastViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Broadcast]):
    """Broadcasts, newest first. POST `{"name", "number", "template": {"name", "language", "components"},
    "audience": {"labels": [ids], "contacts": [ids], "wa_ids": [...]}, "scheduled_at"}` makes a draft;
    `preview/` says who is skipped and why, the daily limit and the cost; `start/` (`{"confirm": true}` when the
    number is YELLOW, admins only), `pause/`, `resume/`, `cancel/`; `recipients/?status=`."""

    permission_classes = [IsSupervisorOrAdmin]
    serializer_class = BroadcastSerializer
    queryset = Broadcast.objects.order_by("-created_at", "-pk")

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: BroadcastSerializer, **error_responses(400)})
    def create(self, request: Request) -> Response:
        try:
            created = broadcasts.check_create_broadcast(request.user.pk, request.data)
        except ActionError as error:
            return _refused(error)
        return Response(broadcasts.broadcast_data(created), status=status.HTTP_201_CREATED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        return Response(broadcasts.preview(self.get_object()))

    def _role(self) -> str:
        return str(self.request.membership.role)  # type: ignore[attr-defined]

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: BroadcastSerializer, **error_responses(409)})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        confirm = isinstance(request.data, dict) and request.data.get("confirm") is True
        return self._change(lambda b: broadcasts.check_start(b, self._role(), confirm))

    @extend_schema(request=None, responses={200: BroadcastSerializer, **error_responses(409)})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._change(lambda b: broadcasts.do_pause(b))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: BroadcastSerializer, **error_responses(409)})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        confirm = isinstance(request.data, dict) and request.data.get("confirm") is True
        return self._change(lambda b: broadcasts.do_resume(b, self._role(), confirm))

    @extend_schema(request=None, responses={200: BroadcastSerializer, **error_responses(409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return self._change(lambda b: broadcasts.do_cancel(b))

    def _change(self, change: Any) -> Response:
        try:
            changed = change(self.get_object())
        except ActionError as error:
            return _refused(error)
        return Response(broadcasts.broadcast_data(changed))

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=RecipientStatus.values)],
        responses=RecipientSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def recipients(self, request: Request, pk: str | None = None) -> Response:
        rows: QuerySet[BroadcastRecipient] = BroadcastRecipient.objects.filter(broadcast=self.get_object())
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in RecipientStatus.values:
                raise ValidationError({"status": f"Use one of: {', '.join(RecipientStatus.values)}."})
            rows = rows.filter(status=wanted)
        page = self.paginator.paginate_queryset(rows.order_by("pk"), request, view=self)  # type: ignore[union-attr]
        return self.get_paginated_response(RecipientSerializer(page, many=True).data)
