"""REST API of contacts, labels and canned responses (/api/v1/contacts/, /api/v1/labels/,
/api/v1/canned-responses/). Every member reads contacts and edits what agents keep about them (name, attributes,
labels); supervisors and admins manage the labels themselves and the team's canned responses."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import actions, canned_responses, contact_import, labels, search
from conversations.models import CannedResponse, Contact, Conversation, ConversationStatus, Label, Mention
from conversations.serializers import ContactSerializer, ConversationSerializer, MessageSerializer
from helpdesk.api_errors import error_responses
from helpdesk.params import id_param, is_id, page_size_param, parse_id
from helpdesk.tenancy.access import current_tenant
from helpdesk.tenancy.models import WhatsAppNumber
from helpdesk.tenancy.permissions import IsSupervisorOrAdmin, IsTenantMember


def _refused(error: labels.LabelError | canned_responses.CannedError) -> Response:
    return Response({"detail": str(error), "code": error.code}, status=error.http_status)


CONTACT_FILTERS = [
    OpenApiParameter("search", OpenApiTypes.STR),
    OpenApiParameter("label", OpenApiTypes.INT),
    OpenApiParameter(
        "attribute", OpenApiTypes.STR, many=True, description="`key:value`, exactly (repeat for several)"
    ),
]


class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Contact]):
    """The tenant's contacts, newest first. `?search=` finds part of a name, number, username or BSUID;
    `?label=<id>` keeps those with the label, `?attribute=city:Surabaya` those with that attribute. PATCH
    `{"name", "attributes": {key: text or null}, "labels": [ids]}` (attributes are merged; null removes one).
    Supervisors and admins import (`POST import/`, CSV) and export (`GET export/`)."""

    serializer_class = ContactSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_permissions(self) -> list[Any]:
        if self.action in ("import_csv", "export_csv"):
            return [IsSupervisorOrAdmin()]
        return [IsTenantMember()]

    def get_queryset(self) -> QuerySet[Contact]:
        queryset = Contact.objects.order_by("-created_at", "-pk")
        params = self.request.query_params
        search = params.get("search", "").strip()[:100]
        if search:
            digits = "".join(ch for ch in search if ch.isdigit())
            match = Q(name__icontains=search) | Q(username__icontains=search) | Q(user_id__icontains=search)
            if digits:
                match |= Q(wa_id__contains=digits)
            queryset = queryset.filter(match)
        label = id_param(params, "label", "A label id")
        if label is not None:
            queryset = queryset.filter(labels__contains=[label])
        for wanted in params.getlist("attribute"):
            key, colon, value = wanted.partition(":")
            if not colon or not key.strip():
                raise ValidationError({"attribute": "Write an attribute filter as key:value."})
            queryset = queryset.filter(attributes__contains={key.strip(): value.strip()})
        return queryset

    @extend_schema(parameters=CONTACT_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}, "number": {"type": "integer"}},
            }
        },
        responses={200: OpenApiTypes.OBJECT, **error_responses(400)},
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_csv(self, request: Request) -> Response:
        """Create or update contacts from a CSV file (`file`; columns `phone`, `name`, `labels` (`;` between),
        `opt_in_source`, any other column an attribute) for a number (`number`; the helpdesk's first when not named). Answers the report: `created`, `updated`, `opted_in`, `kept_opted_out`, `labels_created` and
        `rejected` rows, each with its `line`, `value`, `reason` and `detail`. A re-import updates; it never
        lifts an opt-out."""
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "Send the CSV file as multipart field `file`."})
        form = request.data if isinstance(request.data, dict) else {}
        number = _import_number(form.get("number") or request.query_params.get("number"))
        try:
            report = contact_import.do_import_contacts(number, upload.read(), upload.name or "")
        except contact_import.ImportRefused as error:
            return Response({"detail": str(error), "code": error.code}, status=status.HTTP_400_BAD_REQUEST)
        return Response(report.data())

    @extend_schema(parameters=CONTACT_FILTERS, responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], url_path="export")
    def export_csv(self, request: Request) -> StreamingHttpResponse:
        """The contacts (with the list's filters) as CSV: the import's columns, their consent and attributes."""
        rows = contact_import.export_rows(self.get_queryset().order_by("pk").iterator(chunk_size=2000))
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        return response

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: ContactSerializer, **error_responses(400)})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        if not isinstance(request.data, dict):
            return _refused(labels.LabelError("A JSON object of the fields to change."))
        try:
            contact = labels.do_update_contact(contact, request.data)
        except labels.LabelError as error:
            return _refused(error)
        return Response(ContactSerializer(contact).data)


def _import_number(raw: Any) -> WhatsAppNumber:
    """The number an import is for: the one named, or the helpdesk's first."""
    numbers = WhatsAppNumber.objects.filter(tenant=current_tenant()).order_by("pk")
    if raw not in (None, ""):
        wanted = raw if is_id(raw) else parse_id(str(raw))
        found = numbers.filter(pk=wanted).first() if wanted is not None else None
        if found is None:
            raise ValidationError({"number": "No such number in this helpdesk."})
        return found
    first = numbers.first()  # unnamed: the helpdesk's first number (its main one)
    if first is None:
        raise ValidationError({"number": "The helpdesk has no WhatsApp number yet."})
    return first


class LabelSerializer(serializers.ModelSerializer[Label]):
    class Meta:
        model = Label
        fields = ["id", "name", "color"]


class LabelViewSet(viewsets.ModelViewSet[Label]):
    """The tenant's labels (every member lists them; supervisors and admins create, rename, recolour, delete).
    Deleting a label takes it off every conversation and contact."""

    serializer_class = LabelSerializer
    pagination_class = None
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = Label.objects.order_by("name", "pk")

    def get_permissions(self) -> list[Any]:
        return [IsTenantMember() if self.action in ("list", "retrieve") else IsSupervisorOrAdmin()]

    @extend_schema(request=LabelSerializer, responses={201: LabelSerializer, **error_responses(400, 409)})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._save(None, request.data, status.HTTP_201_CREATED)

    @extend_schema(request=LabelSerializer, responses={200: LabelSerializer, **error_responses(400, 409)})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        label = self.get_object()
        return self._save(label, request.data, status.HTTP_200_OK)

    def _save(self, label: Label | None, data: Any, code: int) -> Response:
        if not isinstance(data, dict):
            return _refused(labels.LabelError('A JSON object: {"name", "color"}.'))
        try:
            label = labels.do_save_label(
                label,
                data.get("name", label.name if label else None),
                data.get("color", label.color if label else "#667085"),
            )
        except labels.LabelError as error:
            return _refused(error)
        return Response(LabelSerializer(label).data, status=code)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        labels.do_delete_label(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CannedResponseSerializer(serializers.ModelSerializer[CannedResponse]):
    class Meta:
        model = CannedResponse
        fields = ["id", "name", "text", "shared", "owner_id", "updated_at"]


class CannedResponseViewSet(viewsets.ModelViewSet[CannedResponse]):
    """Canned responses: the team's shared ones and your own (`?search=` in names and texts). Anyone keeps
    personal ones (`"shared": false`); supervisors and admins keep the shared ones. POST `{id}/fill/` with
    `{"conversation": id}` gives the text with {{contact.name}}, {{agent.name}} and {{ticket.id}} filled in."""

    serializer_class = CannedResponseSerializer
    queryset = CannedResponse.objects.none()  # for the schema: the real one is the user's (get_queryset)
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[CannedResponse]:
        queryset = canned_responses.visible_to(self.request.user)  # type: ignore[arg-type]
        search = self.request.query_params.get("search", "").strip()[:100]
        if search:
            queryset = queryset.filter(Q(name__icontains=search) | Q(text__icontains=search))
        return queryset

    def _role(self) -> str:
        return str(self.request.membership.role)  # type: ignore[attr-defined]

    @extend_schema(parameters=[OpenApiParameter("search", OpenApiTypes.STR)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=CannedResponseSerializer, responses={201: CannedResponseSerializer, **error_responses(400)}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            saved = canned_responses.do_save_canned(None, request.user, self._role(), request.data)  # type: ignore[arg-type]
        except canned_responses.CannedError as error:
            return _refused(error)
        return Response(CannedResponseSerializer(saved).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CannedResponseSerializer, responses={200: CannedResponseSerializer, **error_responses(400)}
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            saved = canned_responses.do_save_canned(
                self.get_object(),
                request.user,  # type: ignore[arg-type]
                self._role(),
                request.data,
            )
        except canned_responses.CannedError as error:
            return _refused(error)
        return Response(CannedResponseSerializer(saved).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            canned_responses.do_delete_canned(self.get_object(), request.user, self._role())  # type: ignore[arg-type]
        except canned_responses.CannedError as error:
            return _refused(error)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request={"application/json": {"type": "object", "properties": {"conversation": {"type": "integer"}}}},
        responses={
            200: {"type": "object", "properties": {"text": {"type": "string"}}},
            **error_responses(400),
        },
    )
    @action(detail=True, methods=["post"])
    def fill(self, request: Request, pk: str | None = None) -> Response:
        """The text as it will be sent in that conversation."""
        response = self.get_object()
        data = request.data if isinstance(request.data, dict) else {}
        conversation_id = data.get("conversation")
        if isinstance(conversation_id, bool) or not isinstance(conversation_id, int):
            raise ValidationError({"conversation": "A conversation id."})
        conversation = get_object_or_404(Conversation.objects.select_related("contact"), pk=conversation_id)
        return Response({"text": canned_responses.filled(response.text, conversation, request.user)})  # type: ignore[arg-type]


SEARCH_PAGE_SIZE = 20
SEARCH_MAX_PAGES = 25


class SearchView(APIView):
    """One search box: conversations whose contact's name, number or username holds `q`, or one of whose
        messages has its words (Indonesian and English word forms), newest first. Items: `conversation`, `message`
        (the matching message, or null when the contact matched), `match` and `highlights` ([start, end) in the
        message's text or the contact's name). Filters: `status`, `label`, `assignee`, `from`, `to` (dates in the
        helpdesk's time zone). Pages: `page` (at most 25), `page_size` (20 unless given). `count` counts the matches up
    to 1,000; `count_capped` says there are more."""

    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, required=True),
            OpenApiParameter("status", OpenApiTypes.STR, enum=ConversationStatus.values),
            OpenApiParameter("label", OpenApiTypes.INT),
            OpenApiParameter("assignee", OpenApiTypes.INT),
            OpenApiParameter("from", OpenApiTypes.DATE),
            OpenApiParameter("to", OpenApiTypes.DATE),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses={200: OpenApiTypes.OBJECT, **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        status_wanted = params.get("status") or None
        if status_wanted and status_wanted not in ConversationStatus.values:
            raise ValidationError({"status": f"Use one of: {', '.join(ConversationStatus.values)}."})
        tenant = current_tenant()
        filters = search.Filters(
            status=status_wanted,
            label=id_param(params, "label", "A label id"),
            assignee=id_param(params, "assignee", "A user id"),
            since=_date(params, "from"),
            until=_date(params, "to"),
            zone=tenant.timezone_name if tenant else "UTC",
        )
        page = id_param(params, "page", "A page number") or 1
        size = page_size_param(params) if params.get("page_size") else SEARCH_PAGE_SIZE
        if page > SEARCH_MAX_PAGES:
            raise ValidationError({"page": f"At most {SEARCH_MAX_PAGES} pages: narrow the search."})
        hits, total, capped = search.search(params.get("q", ""), filters, page * size)
        results = search.as_items(
            hits[(page - 1) * size :],
            ConversationSerializer().to_representation,
            MessageSerializer().to_representation,
        )
        more = page * size < total and page < SEARCH_MAX_PAGES
        return Response(
            {
                "count": total,
                "count_capped": capped,  # more than `count` matches: only the first are counted
                "next": _page_link(request, page + 1) if more else None,
                "previous": _page_link(request, page - 1) if page > 1 else None,
                "results": results,
            }
        )


def _date(params: Any, name: str) -> date | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: "A date: YYYY-MM-DD."}) from None


def _page_link(request: Request, page: int) -> str:
    query = request.query_params.copy()
    query["page"] = str(page)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


class MentionsView(APIView):
    """Your mentions: the private notes in which a colleague named you with @, newest first (`?unread=1`: only
    those not read yet). POST `{"ids": [...]}` (or `{}`: all) marks them read."""

    @extend_schema(
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        user_id = int(request.user.pk)  # type: ignore[union-attr, arg-type]
        mentions = Mention.objects.filter(user_id=user_id).select_related("note")
        if request.query_params.get("unread") in ("1", "true"):
            mentions = mentions.filter(read_at__isnull=True)
        rows = list(mentions.order_by("-created_at", "-pk")[:50])
        unread = Mention.objects.filter(user_id=user_id, read_at__isnull=True).count()
        return Response({"unread": unread, "results": [actions.mention_data(m, m.note) for m in rows]})

    @extend_schema(
        request={"application/json": {"type": "object", "properties": {"ids": {"type": "array"}}}},
        responses={200: OpenApiTypes.OBJECT, **error_responses(400)},
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else None
        ids = data.get("ids") if data is not None else None
        if data is None or (ids is not None and not (isinstance(ids, list) and all(is_id(i) for i in ids))):
            raise ValidationError({"ids": "A list of mention ids, or nothing for all of them."})
        marked = actions.do_mark_mentions_read(request.user, ids)  # type: ignore[arg-type]
        return Response({"marked": marked})
