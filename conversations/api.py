"""REST API of a tenant's inbox (/api/v1/). Thin: reads are querysets, every change is an action."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations import actions, labels, media, message_templates
from conversations.models import Conversation, ConversationStatus, Message, Note
from conversations.pagination import KeysetPagination, SortKey
from conversations.serializers import (
    CONVERSATION_VALUES,
    MESSAGE_VALUES,
    ConversationSerializer,
    MessageSerializer,
    NoteSerializer,
    ReplySerializer,
)
from helpdesk.api_errors import error_responses
from helpdesk.params import id_param


def _action_error(error: actions.ActionError) -> Response:
    if isinstance(error, message_templates.TemplateRefused):
        return Response(error.as_dict(), status=error.http_status)
    return Response({"detail": str(error), "code": error.code}, status=error.http_status)


class ConversationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Conversation]
):
    """Conversations of this tenant, most recent first. Filter with `?status=open|pending|resolved`: the status of
    the conversation's current ticket (a closed ticket counts as resolved), as the inbox tabs show it.
    `?ordering=window` lists only waiting customers whose 24-hour window is open, the one closing soonest first;
    `?label=<id>` only those with the label. PATCH `{"labels": [ids]}` labels one."""

    http_method_names = ["get", "post", "patch", "head", "options"]

    serializer_class = ConversationSerializer
    pagination_class = KeysetPagination
    # The list's pages are rows of these values, not model instances: a page is 50 rows of four tables, most of
    # whose other columns are times (SLA clocks, warnings) that would be parsed for nothing.
    row_values = CONVERSATION_VALUES

    @property
    def sort_key(self) -> SortKey:
        if self.request.query_params.get("ordering") == "window":
            return SortKey("window_expires_at", descending=False)
        return SortKey("last_message_at", descending=True)

    def get_queryset(self) -> QuerySet[Conversation]:
        queryset = Conversation.objects.select_related("contact", "number", "current_ticket")
        ordering = self.request.query_params.get("ordering", "recent")
        if ordering == "window":
            # Customers still waiting whose 24-hour window closes soonest first; closed windows last.
            now = timezone.now()
            queryset = queryset.filter(window_expires_at__gt=now, current_ticket__waiting_since__isnull=False)
            queryset = queryset.order_by("window_expires_at", "id")
        elif ordering == "recent":
            queryset = queryset.order_by("-last_message_at", "-id")
        else:
            raise ValidationError({"ordering": "Use `recent` (default) or `window` (window closes soonest)."})
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in ConversationStatus.values:
                raise ValidationError({"status": f"Use one of: {', '.join(ConversationStatus.values)}."})
            queryset = queryset.filter(status=wanted)
        label = id_param(self.request.query_params, "label", "A label id")
        if label is not None:
            queryset = queryset.filter(labels__contains=[label])
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=ConversationStatus.values),
            OpenApiParameter("ordering", OpenApiTypes.STR, enum=["recent", "window"]),
            OpenApiParameter("label", OpenApiTypes.INT, description="Only conversations with this label"),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"application/json": {"type": "object", "properties": {"labels": {"type": "array"}}}},
        responses={200: ConversationSerializer, **error_responses(400)},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Label the conversation: `{"labels": [label ids]}` (the whole set)."""
        data = request.data
        if not isinstance(data, dict) or set(data) != {"labels"}:
            raise ValidationError({"labels": 'Send {"labels": [label ids]}: the conversation\'s labels.'})
        try:
            conversation = labels.do_set_conversation_labels(self.get_object(), data["labels"])
        except actions.ActionError as error:
            return _action_error(error)
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(request=None, responses=ConversationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """The agent has seen the conversation: its unread count goes to zero."""
        conversation = actions.do_mark_conversation_read(self.get_object())
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        request={"application/json": {"type": "object", "properties": {"status": {"type": "string"}}}},
        responses=ConversationSerializer,
    )
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: Request, pk: str | None = None) -> Response:
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError({"detail": 'A JSON object: {"status": "open" | "pending" | "resolved"}.'})
        wanted = data.get("status", "")
        if not isinstance(wanted, str):
            raise ValidationError({"status": f"Use one of: {', '.join(ConversationStatus.values)}."})
        try:
            conversation = actions.do_set_conversation_status(
                self.get_object(),
                wanted,
                request.user,  # type: ignore[arg-type]
            )
        except actions.ActionError as error:
            return _action_error(error)
        return Response(ConversationSerializer(conversation).data)


class ConversationMessagesViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Message]):
    """Messages of one conversation, oldest first. `?after=<message id>` returns only later ones (by id);
    `?page=last` gives the most recent page."""

    serializer_class = MessageSerializer
    # A reply is JSON; a file is sent as multipart (`file`, `caption`).
    parser_classes = [JSONParser, MultiPartParser]

    def conversation(self) -> Conversation:
        return get_object_or_404(
            Conversation.objects.select_related("contact", "number"), pk=self.kwargs["conversation_pk"]
        )

    def get_queryset(self) -> QuerySet[Message]:
        # By the conversation's id: that the conversation exists is checked only when the page is empty (list).
        queryset = Message.objects.filter(conversation_id=self.kwargs["conversation_pk"])
        after = id_param(self.request.query_params, "after", "A message id")
        if after is not None:
            queryset = queryset.filter(pk__gt=after).order_by("pk")
        else:
            queryset = queryset.order_by("created_at", "pk")
        return queryset.values(*MESSAGE_VALUES)  # type: ignore[return-value]  # rows, not instances

    @extend_schema(parameters=[OpenApiParameter("after", OpenApiTypes.INT)])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return _list_of_conversation(self, request, *args, **kwargs)

    # The schema documents the JSON body; a file comes as multipart (described below), which the development
    # server (daphne) refuses with an empty 400 when malformed, before the API sees it.
    @extend_schema(
        request={"application/json": ReplySerializer},
        responses={201: MessageSerializer, **error_responses(400, 409)},
    )
    def create(self, request: Request, conversation_pk: str) -> Response:
        """Reply with free text (`{"text"}`; refused with 409 outside the 24-hour customer-service window), a file
        (multipart: `file` and an optional `caption`; checked against WhatsApp's types and sizes, 400
        `unsupported_file_type` / `file_too_large` otherwise), or send an approved template, in or out of the
        window: `{"template": {"name", "language", "components"}}`
        with Meta's parameter format. A template that is unknown, not approved, or whose variables do not fit
        is refused with 400 and a `code` (`template_unknown`, `template_not_approved`, `template_paused`,
        `template_disabled`, `template_parameters`, `invalid_template`) before anything is sent."""
        upload = request.FILES.get("file")
        if upload is not None:
            caption = request.data.get("caption", "") if isinstance(request.data, dict) else ""
            try:
                message = media.check_send_file(
                    self.conversation(),
                    request.user,  # type: ignore[arg-type]
                    upload,
                    caption if isinstance(caption, str) else "",
                )
            except actions.ActionError as error:
                return _action_error(error)
            return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)
        if isinstance(request.data, dict) and "template" in request.data:
            try:
                message = message_templates.check_send_template(
                    self.conversation(),
                    request.user,  # type: ignore[arg-type]
                    request.data["template"],
                )
            except actions.ActionError as error:
                return _action_error(error)
            return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)
        serializer = ReplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            message = actions.check_send_text_reply(
                self.conversation(),
                request.user,  # type: ignore[arg-type]
                serializer.validated_data["text"],
            )
        except actions.ActionError as error:
            return _action_error(error)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class MessageMediaView(APIView):
    """The bytes of a message's file (a customer's photo, voice note, video, document or sticker, or one an agent
    sent), to members of the tenant only (session or token). Served with the file's type; anything that is not
    an image, audio or video comes as an attachment, and nothing it holds can run in the helpdesk's pages."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **error_responses(404)})
    def get(self, request: Request, message_pk: int) -> FileResponse:
        message = get_object_or_404(Message.objects.only("pk", "media", "deleted_at"), pk=message_pk)
        stored = message.media or {}
        if message.deleted_at is not None or stored.get("status") != "ready" or not stored.get("path"):
            raise NotFound("This message has no file to download (yet).")
        mime = str(stored.get("mime_type") or "application/octet-stream")
        inline = mime.split("/")[0] in ("image", "audio", "video") and mime != "image/svg+xml"
        try:
            handle = default_storage.open(str(stored["path"]), "rb")
        except FileNotFoundError:
            raise NotFound("The file of this message is missing from the storage.") from None
        response = FileResponse(
            handle,
            content_type=mime,
            as_attachment=not inline,
            filename=str(stored.get("filename") or f"message-{message.pk}"),
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response["Cache-Control"] = "private, max-age=3600"
        return response


class ConversationNotesViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Note]):
    """Private notes on a conversation, oldest first: for colleagues only, never sent to the customer."""

    serializer_class = NoteSerializer

    def get_queryset(self) -> QuerySet[Note]:
        return Note.objects.filter(conversation_id=self.kwargs["conversation_pk"]).order_by(
            "created_at", "pk"
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return _list_of_conversation(self, request, *args, **kwargs)

    @extend_schema(request=NoteSerializer, responses={201: NoteSerializer})
    def create(self, request: Request, conversation_pk: str) -> Response:
        conversation = get_object_or_404(Conversation, pk=conversation_pk)
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            note = actions.check_add_note(
                conversation,
                request.user,  # type: ignore[arg-type]
                serializer.validated_data["text"],
            )
        except actions.ActionError as error:
            return _action_error(error)
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


def _list_of_conversation(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
    """A list of the conversation in the URL (messages, notes), read by the conversation's id without reading
    the conversation first: only an empty page or an error asks whether it exists, so that an unknown
    conversation is a 404 (before any other error), as when it was looked up first."""
    pk = kwargs["conversation_pk"]
    try:
        response = mixins.ListModelMixin.list(view, request, *args, **kwargs)  # type: ignore[arg-type]
    except (ValidationError, NotFound):
        _conversation_or_404(pk)
        raise
    if not response.data["results"]:
        _conversation_or_404(pk)
    return response


def _conversation_or_404(pk: Any) -> None:
    get_object_or_404(Conversation.objects.only("pk"), pk=pk)
