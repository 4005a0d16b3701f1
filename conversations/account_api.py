"""REST API of a tenant's WhatsApp numbers, their health history and alerts, and message templates (/api/v1/).
Admins change; every member may list and read approved templates (to send them); supervisors see alerts."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db.models import ProtectedError, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import guardrails, message_templates, number_health, template_check
from conversations.models import AccountEvent, HealthAlert, MessageTemplate, TemplateStatus
from helpdesk.api_errors import error_responses
from helpdesk.params import id_param
from helpdesk.tenancy import actions as tenancy_actions
from helpdesk.tenancy.access import current_tenant
from helpdesk.tenancy.models import Role, Tenant, WhatsAppNumber
from helpdesk.tenancy.permissions import IsAdminOrReadOnly, IsSupervisorOrAdmin, IsTenantAdmin, IsTenantMember

WEBHOOK_PATH = "/webhooks/whatsapp/"


def webhook_url(request: Request) -> str:
    """Where Meta must post: the platform's public domain (Meta's webhook is served there, not per tenant)."""
    port = request.get_port()
    default = "443" if request.is_secure() else "80"
    host = settings.PUBLIC_DOMAIN + ("" if port == default else f":{port}")
    return f"{request.scheme}://{host}{WEBHOOK_PATH}"


class NumberSerializer(serializers.ModelSerializer[WhatsAppNumber]):
    """A number as admins see it: never its access token or app secret (write-only), its verify token so that
    it can be pasted into Meta's app settings."""

    quality = serializers.SerializerMethodField(help_text="green, yellow, red or unknown")
    connection = serializers.SerializerMethodField(
        help_text="The last test of the connection: {ok, error: {code, message} or null, checked_at}, or null"
    )
    webhook_url = serializers.SerializerMethodField()
    messaging_limit_words = serializers.SerializerMethodField(help_text="The messaging limit in plain words")
    send_rate = serializers.IntegerField(
        required=False,
        help_text="Broadcast messages per second at most (default 80; 20 for a number also in the WhatsApp "
        "Business app, which Meta holds to 20); admins change it",
    )
    access_token = serializers.CharField(write_only=True, trim_whitespace=True, max_length=4096)
    app_secret = serializers.CharField(write_only=True, trim_whitespace=True, max_length=512)
    verify_token = serializers.CharField(
        required=False, max_length=256, help_text="Generated when not given; regenerate with /verify-token/"
    )

    class Meta:
        model = WhatsAppNumber
        fields = [
            "id",
            "phone_number_id",
            "waba_id",
            "display_number",
            "verified_name",
            "name_status",
            "quality",
            "messaging_limit",
            "messaging_limit_words",
            "throughput",
            "send_rate",
            "coexistence",
            "simulator",
            "connection",
            "webhook_url",
            "verify_token",
            "access_token",
            "app_secret",
            "created_at",
        ]
        read_only_fields = [
            "verified_name",
            "name_status",
            "messaging_limit",
            "throughput",
            "coexistence",
            "created_at",
        ]
        extra_kwargs: ClassVar[dict[str, Any]] = {
            "phone_number_id": {"validators": []}
        }  # taken numbers: a clear error from the action

    def get_quality(self, number: WhatsAppNumber) -> str:
        return (number.quality_rating or "UNKNOWN").lower()

    def get_connection(self, number: WhatsAppNumber) -> dict[str, Any] | None:
        if number.connection_checked_at is None:
            return None
        return {
            "ok": bool(number.connection_ok),
            "error": number.connection_error,
            "checked_at": number.connection_checked_at.isoformat(),
        }

    def get_messaging_limit_words(self, number: WhatsAppNumber) -> str:
        return number_health.limit_words(number.messaging_limit) if number.messaging_limit else ""

    def get_webhook_url(self, number: WhatsAppNumber) -> str:
        request = self.context.get("request")
        return webhook_url(request) if request else WEBHOOK_PATH

    def to_representation(self, instance: WhatsAppNumber) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["verify_token"] = instance.verify_token or None  # None: set before it was kept; regenerate it
        return data


class NumberViewSet(viewsets.ModelViewSet[WhatsAppNumber]):
    """The tenant's WhatsApp numbers (admins only). Credentials are accepted, never returned."""

    serializer_class = NumberSerializer
    permission_classes = [IsTenantAdmin]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[WhatsAppNumber]:
        return WhatsAppNumber.objects.filter(tenant=current_tenant()).order_by("pk")

    def _item(self, number: WhatsAppNumber, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(number).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            number = tenancy_actions.do_add_number(_tenant(), new_only=True, **serializer.validated_data)
        except tenancy_actions.TenancyError as error:
            return Response({"detail": str(error), "code": error.code}, status=error.http_status)
        return self._item(number, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        number = self.get_object()
        serializer = self.get_serializer(number, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            number = tenancy_actions.do_update_number(number, **serializer.validated_data)
        except tenancy_actions.TenancyError as error:
            return Response({"detail": str(error), "code": error.code}, status=error.http_status)
        return self._item(number)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        number = self.get_object()
        try:
            tenancy_actions.do_remove_number(number)
        except ProtectedError:
            return Response(
                {
                    "detail": "This number has conversations: removing it would lose their history.",
                    "code": "number_in_use",
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ConnectionTest",
            {
                "ok": serializers.BooleanField(),
                "error": serializers.DictField(allow_null=True, help_text="{code, message}: Meta's error"),
                "number": NumberSerializer(),
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Read the number from the Graph API now: its name, quality, limit and throughput, or Meta's error."""
        refresh = number_health.do_refresh_number(self.get_object())
        return Response(
            {"ok": refresh.ok, "error": refresh.error, "number": self.get_serializer(refresh.number).data}
        )

    @extend_schema(request=None, responses=NumberSerializer)
    @action(detail=True, methods=["post"], url_path="verify-token")
    def verify_token(self, request: Request, pk: str | None = None) -> Response:
        """A new verify token (paste it into Meta's app settings); the old one stops working."""
        return self._item(tenancy_actions.do_regenerate_verify_token(self.get_object()))

    @extend_schema(
        responses=inline_serializer(
            "AccountEventItem",
            {
                "id": serializers.IntegerField(),
                "field": serializers.CharField(),
                "event": serializers.CharField(),
                "summary": serializers.CharField(help_text="Plain words, in the request's language"),
                "received_at": serializers.DateTimeField(),
                "payload": serializers.DictField(help_text="The event as Meta sent it"),
            },
            many=True,
        )
    )
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk: str | None = None) -> Response:
        """The number's health history, newest first: its own events and its business account's."""
        page = self.paginate_queryset(number_health.events_of(self.get_object()))  # type: ignore[arg-type]
        return self.get_paginated_response([event_item(event) for event in page or []])  # type: ignore[arg-type]

    @extend_schema(
        parameters=[OpenApiParameter("days", OpenApiTypes.INT, description="How many days back (default 30)")]
    )
    @action(detail=True, methods=["get"])
    def costs(self, request: Request, pk: str | None = None) -> Response:
        """Billable messages of the number per day and Meta pricing category (from the status webhooks)."""
        days = id_param(request.query_params, "days", "A number of days") or 30
        return Response(number_health.costs_of(self.get_object(), min(days, 366)))


def event_item(event: AccountEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "field": event.field,
        "event": event.event,
        "summary": number_health.summary(event.field, event.event, event.value),
        "received_at": event.received_at.isoformat(),
        "occurred_at": event.occurred_at.isoformat(),
        "number": event.number_id,
        "payload": event.value,
    }


class AlertSerializer(serializers.Serializer[HealthAlert]):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="quality, violation, restriction or disable")
    level = serializers.IntegerField(help_text="Higher is worse")
    number = serializers.IntegerField(
        source="number_id", allow_null=True, help_text="null: the whole account"
    )
    raised_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    summary = serializers.SerializerMethodField(help_text="Plain words, in the request's language")

    def get_summary(self, alert: HealthAlert) -> str:
        return number_health.alert_text(alert)


class AlertViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[HealthAlert]):
    """Open alerts about the numbers' standing with Meta (supervisors and admins), worst first: a quality drop,
    a restriction, a violation, a scheduled or done disable. Not paginated: there are a handful at most."""

    serializer_class = AlertSerializer
    permission_classes = [IsSupervisorOrAdmin]
    pagination_class = None

    def get_queryset(self) -> QuerySet[HealthAlert]:
        return number_health.open_alerts()

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Hide the banner; the alert comes back if the state worsens."""
        alert = get_object_or_404(HealthAlert, pk=pk)
        user_id: int = request.user.pk  # type: ignore[union-attr, assignment]
        return Response(AlertSerializer(number_health.do_acknowledge_alert(alert, user_id)).data)


# ------------------------------------------------------------------ templates


class TemplateSerializer(serializers.ModelSerializer[MessageTemplate]):
    number: serializers.PrimaryKeyRelatedField[WhatsAppNumber] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    reason = serializers.SerializerMethodField(help_text="Why the template is in its state, in plain words")
    reason_code = serializers.CharField(source="reason", read_only=True)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "language",
            "category",
            "status",
            "quality",
            "reason",
            "reason_code",
            "recommendation",
            "previous_category",
            "correct_category",
            "parameter_format",
            "components",
            "number",
            "waba_id",
            "meta_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_reason(self, template: MessageTemplate) -> str:
        return message_templates.reason_words(template)


class TemplateViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[MessageTemplate],
):
    """Message templates of the tenant's business accounts. Every member lists and reads approved templates;
    admins see all, create (= check, then submit to Meta), edit, delete and sync. Filter: `?status=&number=`."""

    serializer_class = TemplateSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_permissions(self) -> list[Any]:
        return [IsTenantMember() if self.action in ("list", "retrieve") else IsTenantAdmin()]

    def get_queryset(self) -> QuerySet[MessageTemplate]:
        wabas = WhatsAppNumber.objects.filter(tenant=current_tenant()).values("waba_id")
        queryset = MessageTemplate.objects.filter(waba_id__in=wabas).order_by("name", "language", "pk")
        if getattr(self.request, "membership", None) is None or self.request.membership.role != Role.ADMIN:  # type: ignore[attr-defined]
            queryset = queryset.filter(status=TemplateStatus.APPROVED)
        wanted = self.request.query_params.get("status")
        if wanted:
            queryset = queryset.filter(status=wanted.lower())
        number = id_param(self.request.query_params, "number", "A number id")
        if number is not None:
            queryset = queryset.filter(waba_id__in=WhatsAppNumber.objects.filter(pk=number).values("waba_id"))
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=TemplateStatus.values),
            OpenApiParameter("number", OpenApiTypes.INT),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={201: TemplateSerializer, **error_responses(400, 409)}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Check the template, then submit it to Meta for review. 400 with `findings` when the check blocks it
        (nothing reaches Meta), or with Meta's `error` when Meta refuses it."""
        draft = request.data
        if not isinstance(draft, dict):
            raise ValidationError({"detail": "A template is a JSON object."})
        number = _number_of(draft.get("number"))
        try:
            template = message_templates.do_submit_template(number, draft, request.user.pk)  # type: ignore[union-attr]
        except message_templates.TemplateRefused as refused:
            return Response(refused.as_dict(), status=refused.http_status)
        return Response(self.get_serializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: TemplateSerializer, **error_responses(400, 409)}
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Edit where Meta allows (approved, rejected or paused; an approved template keeps its category):
        `{"components": [...], "category"}`, checked like a new template; Meta reviews it again (`pending`)."""
        try:
            template = message_templates.do_edit_template(
                self.get_object(),
                request.data,
                request.user.pk,  # type: ignore[union-attr]
            )
        except message_templates.TemplateRefused as refused:
            return Response(refused.as_dict(), status=refused.http_status)
        return Response(self.get_serializer(template).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            message_templates.do_delete_template(self.get_object())
        except message_templates.TemplateRefused as refused:
            return Response(refused.as_dict(), status=refused.http_status)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "TemplateSync",
                {
                    "synced": serializers.IntegerField(help_text="Templates read from Meta"),
                    "errors": serializers.ListField(
                        child=serializers.DictField(),
                        help_text="[{number, code, message}]: accounts Meta refused",
                    ),
                },
            ),
            **error_responses(502),
        },
    )
    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        """Read every template of the tenant's business accounts from Meta now (every page). 502 when Meta
        answered for none of them; an account it refused keeps what it had."""
        numbers = list(WhatsAppNumber.objects.filter(tenant=_tenant()).order_by("pk"))
        result = message_templates.do_sync_templates(numbers)
        errors = [
            {"number": number.pk, "code": error.code, "message": error.title}
            for number, error in result.failed
        ]
        if errors and len(errors) == len({n.waba_id for n in numbers}):
            return Response(
                {
                    "detail": f"Meta did not answer the sync: {result.failed[0][1].title}",
                    "code": "meta_refused",
                    "error": {k: errors[0][k] for k in ("code", "message")},
                    "errors": errors,
                },
                status=status.HTTP_502_BAD_GATEWAY,
            )
        return Response({"synced": result.read, "errors": errors})


def _tenant() -> Tenant:
    tenant = current_tenant()
    assert tenant is not None  # the tenant URLs are served on a tenant's domain only
    return tenant


def _number_of(value: Any) -> WhatsAppNumber:
    """The tenant's number a template is for: by id, or the only one."""
    numbers = WhatsAppNumber.objects.filter(tenant=_tenant())
    if value is None:
        only = list(numbers[:2])
        if len(only) == 1:
            return only[0]
        raise ValidationError({"number": "Which number's business account: give `number` (a number id)."})
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationError({"number": "A number id."})
    number = numbers.filter(pk=int(value)).first()
    if number is None:
        raise ValidationError({"number": "This helpdesk has no such number."})
    return number


class TemplateCheckView(APIView):
    """The content check of a message template draft (the body a template is created with), without submitting
    it: `{"blocking": bool, "findings": [{"severity", "code", "message", "component"}]}`. Admins only."""

    permission_classes = [IsTenantAdmin]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            200: inline_serializer(
                "TemplateCheckResult",
                {
                    "blocking": serializers.BooleanField(
                        help_text="An error was found: the template would not be submitted."
                    ),
                    "findings": inline_serializer(
                        "TemplateFinding",
                        {
                            "severity": serializers.ChoiceField(choices=["error", "warning"]),
                            "code": serializers.CharField(),
                            "message": serializers.CharField(
                                help_text="The reason, in the request's language."
                            ),
                            "component": serializers.CharField(),
                        },
                        many=True,
                    ),
                },
            ),
            **error_responses(400),
        },
    )
    def post(self, request: Request) -> Response:
        findings = template_check.check_template(request.data, message_templates.policy_additions())
        return Response(
            {
                "blocking": template_check.is_blocking(findings),
                "findings": [finding.as_dict() for finding in findings],
            }
        )


class TemplateWordsView(APIView):
    """The word lists of the content check (admins): for each of `prohibited`, `promotional`, `opt_out` and
    `url_shorteners`, the built-in phrases and the tenant's own. PUT `{list: [phrase, ...]}` replaces the tenant's
    phrases of the lists it names."""

    permission_classes = [IsTenantAdmin]

    def _lists(self, own: dict[str, list[str]]) -> dict[str, Any]:
        built_in = template_check.built_in_lists()
        return {
            name: {"built_in": built_in[name], "own": own.get(name, [])} for name in template_check.WORD_LISTS
        }

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(self._lists(message_templates.policy_additions()))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, **error_responses(400)})
    def put(self, request: Request) -> Response:
        try:
            own = message_templates.do_set_policy_words(request.data)
        except message_templates.TemplateRefused as refused:
            return Response(refused.as_dict(), status=refused.http_status)
        return Response(self._lists(own))


class GuardrailsView(APIView):
    """The guardrails of business-initiated messages: `opt_out_keywords` and `opt_in_keywords` (a customer
    message that is exactly one of them, trimmed, in any case, opts out or back in), `frequency_cap_days` (at most
    one marketing broadcast per contact in that many days; 0: no cap), `frequency_cap_utility` (utility templates
    capped too), `failure_pause_percent` and `failure_pause_after` (a running broadcast pauses itself when its
    failures pass that share of what it sent, after that many). Admins change them with PATCH; every member reads
    them."""

    permission_classes = [IsAdminOrReadOnly]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(guardrails.guardrails_data())

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, **error_responses(400)})
    def patch(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"detail": "A JSON object of guardrails."})
        try:
            return Response(guardrails.check_update_guardrails(dict(request.data)))
        except guardrails.GuardrailsError as error:
            return Response({"detail": str(error), "code": error.code}, status=status.HTTP_400_BAD_REQUEST)
