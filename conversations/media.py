"""Photos, voice notes, videos, documents and stickers, both ways.

Inbound: the message is stored at once with `media = {"status": "pending", ...}` (nothing waits for Meta); after
commit a Celery task asks Meta for a fresh URL (`GET /{media-id}`: a URL lives 5 minutes), downloads it with the
number's token, checks its sha256 and keeps the file in Django's storage (`ready`), retrying a failed download
with backoff and saying why when it gives up (`failed`). The message is never lost for it.

Outbound: the agent's file is checked against WhatsApp's types and sizes, kept in storage, and queued like a
reply; the send task uploads it once (`POST /{phone-number-id}/media`, the id kept for a retry) and sends it by id.

Files are served only through `GET /api/v1/messages/{id}/media/`, to members of the tenant (session or token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils.translation import gettext as _

from conversations import graph_api
from conversations.actions import ActionError, WindowClosed, dict_or_empty, do_queue_outbound
from conversations.events import record_event
from conversations.models import Conversation, Message, SenderKind
from conversations.serializers import message_data
from helpdesk.tenancy.access import current_schema
from helpdesk.tenancy.models import User

log = logging.getLogger(__name__)

MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})
MAX_DOWNLOAD_ATTEMPTS = 6
CLAIM_SECONDS = 120
MAX_INBOUND_BYTES = 100 * 1024 * 1024  # WhatsApp's largest (a document)


@dataclass(frozen=True)
class Kind:
    """What WhatsApp accepts of one kind of media an agent sends (Meta's supported media types)."""

    types: frozenset[str]
    max_bytes: int
    caption: bool


MB = 1024 * 1024
OUTBOUND = {
    "image": Kind(frozenset({"image/jpeg", "image/png"}), 5 * MB, True),
    "video": Kind(frozenset({"video/mp4", "video/3gpp"}), 16 * MB, True),
    "audio": Kind(
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MB, False
    ),
    "document": Kind(
        frozenset(
            {
                "application/pdf",
                "text/plain",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MB,
        True,
    ),
}
MAX_CAPTION = 1024


class MediaRefused(ActionError):
    def __init__(self, message: str, code: str = "invalid_file") -> None:
        super().__init__(message)
        self.code = code


class StorageUnavailable(ActionError):
    code = "storage_unavailable"
    http_status = 503


# ------------------------------------------------------------------ inbound


def inbound_media(message: dict[str, Any]) -> dict[str, Any] | None:
    """The `media` of a customer's message as it is stored: pending, with what Meta told of the file."""
    kind = message.get("type")
    part = dict_or_empty(message.get(kind)) if isinstance(kind, str) else {}
    if kind not in MEDIA_KINDS or not isinstance(part.get("id"), str | int):
        return None
    return {
        "status": "pending",
        "media_id": str(part["id"])[:256],
        "mime_type": str(part.get("mime_type") or "")[:255],
        "sha256": str(part.get("sha256") or "")[:128],
        "filename": str(part.get("filename") or "")[:255],
        "caption": str(part.get("caption") or "")[:MAX_CAPTION],
        "voice": bool(part.get("voice")),
        "attempts": 0,
    }


def download_later(message_ids: list[int]) -> None:
    """After the transaction that stored these messages commits: a download task each."""
    if not message_ids:
        return
    schema_name = current_schema()

    def enqueue() -> None:
        from conversations.tasks import download_media

        for message_id in message_ids:
            download_media.delay(schema_name, message_id)

    transaction.on_commit(enqueue)


CLAIM = """UPDATE conversations_message
SET media = media || jsonb_build_object('claimed_until', %s::float, 'attempts', COALESCE((media->>'attempts')::int, 0) + 1)
WHERE id = %s AND media->>'status' = 'pending'
  AND COALESCE((media->>'claimed_until')::float, 0) < %s::float
RETURNING media"""


def _claim(message_id: int) -> dict[str, Any] | None:
    """Take the download (one worker at a time; a worker that died loses it after CLAIM_SECONDS)."""
    now = time.time()
    with connection.cursor() as cursor:
        cursor.execute(CLAIM, [now + CLAIM_SECONDS, message_id, now])
        row = cursor.fetchone()
    if row is None:
        return None
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])  # Django leaves jsonb as text


@dataclass
class Outcome:
    done: bool  # ready, failed for good, or nothing to do
    retry_in: float = 0.0


def do_download(message_id: int) -> Outcome:
    """One attempt at downloading a customer's file; a later attempt is for the caller to schedule."""
    media = _claim(message_id)
    if media is None:
        return Outcome(done=True)
    message = Message.objects.select_related("conversation__number").get(pk=message_id)
    number = message.conversation.number
    attempts = int(media.get("attempts") or 1)
    try:
        described = graph_api.get_media(number, str(media["media_id"]))
        data = graph_api.download_media(number, str(described.get("url") or ""), MAX_INBOUND_BYTES)
    except graph_api.GraphAPIError as error:
        final = not error.retryable or attempts >= MAX_DOWNLOAD_ATTEMPTS
        _finish(message_id, {"status": "failed" if final else "pending", "error": str(error)}, notify=final)
        return Outcome(done=final, retry_in=0.0 if final else _backoff(attempts))
    digest = hashlib.sha256(data).hexdigest()
    expected = [str(value) for value in (described.get("sha256"), media.get("sha256")) if value]
    if expected and not any(_same_digest(digest, value) for value in expected):
        final = attempts >= MAX_DOWNLOAD_ATTEMPTS
        mismatch = _("The file from WhatsApp did not match its checksum.")
        _finish(message_id, {"status": "failed" if final else "pending", "error": mismatch}, notify=final)
        return Outcome(done=final, retry_in=0.0 if final else _backoff(attempts))
    mime = str(described.get("mime_type") or media.get("mime_type") or "application/octet-stream")
    try:
        path = default_storage.save(
            _path_for(message, mime, str(media.get("filename") or "")), ContentFile(data)
        )
    except Exception as error:  # the storage: a bucket's network, credentials or permissions, a full disk
        log.warning("storing the file of message %s failed: %s", message_id, error)
        final = attempts >= MAX_DOWNLOAD_ATTEMPTS
        unstored = _("The file could not be stored.")
        _finish(message_id, {"status": "failed" if final else "pending", "error": unstored}, notify=final)
        return Outcome(done=final, retry_in=0.0 if final else _backoff(attempts))
    _finish(
        message_id,
        {
            "status": "ready",
            "path": path,
            "size": len(data),
            "mime_type": mime,
            "sha256": digest,
            "error": "",
        },
        notify=True,
    )
    return Outcome(done=True)


def _same_digest(hex_digest: str, given: str) -> bool:
    """Meta writes a sha256 in hex (the media endpoint) or in base64 (some webhooks): either matches."""
    if given.lower() == hex_digest:
        return True
    try:
        return base64.b64decode(given, validate=True).hex() == hex_digest
    except ValueError:
        return False


def _backoff(attempt: int) -> float:
    return float(min(10 * 2 ** (attempt - 1), 600))


def _path_for(message: Message, mime: str, filename: str) -> str:
    extension = (mimetypes.guess_extension(mime.split(";")[0].strip()) or "") if mime else ""
    if not extension and "." in filename:
        extension = "." + filename.rsplit(".", 1)[1][:10]
    return (
        f"media/{current_schema()}/{message.created_at:%Y/%m}/{message.pk}-{secrets.token_hex(8)}{extension}"
    )


def _finish(message_id: int, changes: dict[str, Any], notify: bool) -> None:
    """Store the attempt's outcome (and release the claim); push it to the inbox when it changes what is shown."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.media = {**(message.media or {}), **changes, "claimed_until": 0}
        message.save(update_fields=["media"])
        if notify:
            record_event("message.updated", message=message_data(message))


# ------------------------------------------------------------------ outbound


def kind_of(mime: str) -> str | None:
    return next((kind for kind, rule in OUTBOUND.items() if mime in rule.types), None)


def check_send_file(
    conversation: Conversation, user: User, upload: UploadedFile, caption: str = ""
) -> Message:
    """An agent's file, checked against WhatsApp's types and sizes before anything is stored or sent, then
    queued like a reply (inside the customer-service window only, as free text is)."""
    mime = (upload.content_type or "").split(";")[0].strip().lower()
    if mime in ("", "application/octet-stream"):
        mime = (mimetypes.guess_type(upload.name or "")[0] or "").lower()
    kind = kind_of(mime)
    if kind is None:
        raise MediaRefused(
            _(
                "WhatsApp does not support this file type (%(type)s). Send a JPEG or PNG photo, an MP4 video, "
                "an AAC, AMR, MP3, M4A or OGG audio, or a PDF, Word, Excel, PowerPoint or text document."
            )
            % {"type": mime or _("unknown")},
            "unsupported_file_type",
        )
    rule = OUTBOUND[kind]
    size = upload.size or 0
    if size == 0:
        raise MediaRefused(_("The file is empty."))
    if size > rule.max_bytes:
        raise MediaRefused(
            _("WhatsApp takes a %(kind)s of at most %(limit)s MB; this file has %(size).1f MB.")
            % {"kind": kind, "limit": rule.max_bytes // MB, "size": size / MB},
            "file_too_large",
        )
    caption = caption.strip()
    if caption and not rule.caption:
        raise MediaRefused(_("WhatsApp sends audio without a caption."))
    if len(caption) > MAX_CAPTION:
        raise MediaRefused(_("A caption holds at most %(limit)s characters.") % {"limit": MAX_CAPTION})
    if not conversation.window_is_open():
        raise WindowClosed(
            _("The 24-hour customer service window is closed: WhatsApp only accepts an approved template.")
        )
    filename = (upload.name or f"file{mimetypes.guess_extension(mime) or ''}").replace("/", "_")[-200:]
    try:
        path = default_storage.save(
            f"media/{current_schema()}/outbound/{secrets.token_hex(12)}-{filename}", upload
        )
    except Exception as error:  # the storage is down or refuses us: nothing was queued, the agent may retry
        log.warning("storing an agent's file failed: %s", error)
        raise StorageUnavailable(
            _("The file could not be stored just now; nothing was sent. Try again.")
        ) from error
    media = {
        "status": "ready",
        "path": path,
        "mime_type": mime,
        "filename": filename,
        "size": size,
        "caption": caption,
        "media_id": None,
    }
    content: dict[str, Any] = {"caption": caption} if caption else {}
    if kind == "document":
        content["filename"] = filename
    return do_queue_outbound(
        conversation,
        type=kind,
        text=caption or filename,
        content=content,
        sender_kind=SenderKind.AGENT,
        sender=user,
        media=media,
    )


def content_to_send(message: Message) -> dict[str, Any]:
    """The message's WhatsApp object for the send: an outbound file is uploaded once, and sent by its id."""
    media = message.media or {}
    if message.type not in OUTBOUND or not media.get("path"):
        return message.content
    media_id = media.get("media_id")
    if not media_id:
        number = message.conversation.number
        try:
            with default_storage.open(str(media["path"]), "rb") as handle:
                data = handle.read()
        except Exception as error:  # the storage, not Meta: retried like a network error
            raise graph_api.GraphAPIError(
                code=None, title="The file could not be read from storage", details=str(error), retryable=True
            ) from error
        media_id = graph_api.upload_media(
            number, data, str(media.get("mime_type")), str(media.get("filename"))
        )
        with transaction.atomic():
            locked = Message.objects.select_for_update().get(pk=message.pk)
            locked.media = {**(locked.media or {}), "media_id": media_id}
            locked.save(update_fields=["media"])
    return {**message.content, "id": media_id}
