"""Files both ways, the Graph API faked at the HTTP level: a customer's photo is downloaded with the number's
token, checked against its sha256, kept, and served only to members; a failed download says why and the message
stays; an agent's file is checked against WhatsApp's types and sizes, uploaded once and sent by its id."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import responses
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from conversations.models import Message
from tests.conftest import (
    ACME,
    GLOBEX,
    GRAPH_URL,
    deliver_webhook,
    fresh_wa_id,
    issue_token,
    payload,
    retarget,
    tenant_client,
)

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64
DOWNLOAD_URL = "https://lookaside.test/whatsapp_business/attachments/?mid=1"


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def photo_webhook(
    media_id: str, data: bytes = PNG, wa_id: str | None = None, count: int = 1
) -> dict[str, Any]:
    p = retarget(payload("inbound_image.json"), wa_id=wa_id or fresh_wa_id())
    value = p["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    first["image"].update(id=media_id, mime_type="image/png", sha256=hashlib.sha256(data).hexdigest())
    for n in range(1, count):
        value["messages"].append(
            dict(first, id=f"{first['id']}-{n}", image=dict(first["image"], id=f"{media_id}-{n}"))
        )
    return p


def meta_has(graph: Any, media_id: str, data: bytes = PNG, url: str = DOWNLOAD_URL) -> None:
    graph.get(
        f"{GRAPH_URL}/{media_id}",
        json={
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": "image/png",
            "sha256": hashlib.sha256(data).hexdigest(),
            "file_size": len(data),
            "id": media_id,
        },
    )
    graph.get(url, body=data, content_type="image/png")


def stored(wamid: str) -> Message:
    with schema_context("acme"):
        return Message.objects.get(wamid=wamid)


def api(user: Any, spec: dict[str, str] = ACME) -> Any:
    return tenant_client(spec, issue_token(user))


# ------------------------------------------------------------------ inbound


def test_a_customers_photo_is_downloaded_checked_and_served_to_members_only(
    db, alice, bob, graph, django_capture_on_commit_callbacks
):
    meta_has(graph, "MEDIA-1")
    p = photo_webhook("MEDIA-1")

    deliver_webhook(django_capture_on_commit_callbacks, p)

    message = stored(p["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert (message.media["status"], message.media["size"], message.text) == (
        "ready",
        len(PNG),
        "Damaged box",
    )
    assert [call.request.headers["Authorization"] for call in graph.calls] == [f"Bearer {ACME['token']}"] * 2
    listed = api(alice).get(f"/api/v1/conversations/{message.conversation_id}/messages/").json()["results"]
    item = next(m for m in listed if m["id"] == message.pk)["media"]
    assert item == {
        "status": "ready",
        "url": f"/api/v1/messages/{message.pk}/media/",
        "mime_type": "image/png",
        "filename": None,
        "size": len(PNG),
        "caption": "Damaged box",
        "error": None,
    }
    served = api(alice).get(item["url"])
    assert (served.status_code, b"".join(served.streaming_content), served["Content-Type"]) == (
        200,
        PNG,
        "image/png",
    )
    assert served["X-Content-Type-Options"] == "nosniff"
    assert tenant_client(ACME).get(item["url"]).status_code in (401, 403)
    assert api(bob, GLOBEX).get(item["url"]).status_code == 404


def test_every_file_of_a_batch_is_downloaded(db, graph, django_capture_on_commit_callbacks):
    p = photo_webhook("MEDIA-B", count=3)
    for media_id in ("MEDIA-B", "MEDIA-B-1", "MEDIA-B-2"):
        meta_has(graph, media_id, url=f"{DOWNLOAD_URL}{media_id}")

    deliver_webhook(django_capture_on_commit_callbacks, p)

    with schema_context("acme"):
        states = [m.media["status"] for m in Message.objects.filter(media__media_id__startswith="MEDIA-B")]
    assert states == ["ready"] * 3


def test_a_file_that_does_not_match_its_checksum_is_tried_again_then_failed_and_the_message_stays(
    db, alice, graph, django_capture_on_commit_callbacks
):
    meta_has(graph, "MEDIA-BAD", data=PNG)
    p = photo_webhook("MEDIA-BAD", data=b"something else")  # the webhook's sha256 is of other bytes
    graph.replace(
        responses.GET,
        f"{GRAPH_URL}/MEDIA-BAD",
        json={"url": DOWNLOAD_URL, "mime_type": "image/png", "id": "MEDIA-BAD"},
    )

    deliver_webhook(django_capture_on_commit_callbacks, p)

    message = stored(p["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert (message.media["status"], message.media["attempts"]) == ("failed", 6)
    assert "checksum" in message.media["error"]
    item = api(alice).get(f"/api/v1/conversations/{message.conversation_id}/messages/").json()["results"][-1]
    assert (item["id"], item["media"]["status"], item["media"]["url"]) == (message.pk, "failed", None)
    assert item["media"]["error"]


def test_a_download_meta_refuses_fails_at_once_saying_why(db, graph, django_capture_on_commit_callbacks):
    graph.get(
        f"{GRAPH_URL}/MEDIA-GONE",
        json={"error": {"message": "(#100) Invalid parameter", "code": 100}},
        status=400,
    )
    p = photo_webhook("MEDIA-GONE")

    deliver_webhook(django_capture_on_commit_callbacks, p)

    message = stored(p["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert (message.media["status"], message.media["attempts"]) == ("failed", 1)
    assert "100" in message.media["error"]
    assert len(graph.calls) == 1


def test_a_download_that_cannot_reach_meta_is_tried_again(db, graph, django_capture_on_commit_callbacks):
    p = photo_webhook("MEDIA-LATER")  # nothing registered: every request fails like a network error

    deliver_webhook(django_capture_on_commit_callbacks, p)

    message = stored(p["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert (message.media["status"], message.media["attempts"]) == ("failed", 6)
    assert "reach" in message.media["error"]


# ------------------------------------------------------------------ outbound


@pytest.fixture
def open_conversation(db: None, acme_number: Any) -> Any:
    from tests.conftest import receive_text

    return receive_text(acme_number, fresh_wa_id(), "kirim fotonya", int(time.time())).conversation


def send_file(user: Any, conversation_id: int, upload: Any, **data: str) -> Any:
    return api(user).post(f"/api/v1/conversations/{conversation_id}/messages/", {"file": upload, **data})


def test_an_agents_photo_is_uploaded_once_and_sent_by_its_id_with_the_caption(
    db, alice, open_conversation, graph, django_capture_on_commit_callbacks
):
    graph.post(f"{GRAPH_URL}/{ACME['pnid']}/media", json={"id": "UPLOAD-1"})
    attempts = iter(
        [
            (400, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}}),
            (200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUTPHOTO"}]}),
        ]
    )
    graph.add_callback(
        responses.POST,
        f"{GRAPH_URL}/{ACME['pnid']}/messages",
        callback=lambda request: (lambda s, b: (s, {}, json.dumps(b)))(*next(attempts)),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = send_file(
            alice,
            open_conversation.pk,
            SimpleUploadedFile("produk.png", PNG, "image/png"),
            caption="ini fotonya",
        )

    assert response.status_code == 201, response.content
    assert (response.json()["type"], response.json()["text"], response.json()["media"]["status"]) == (
        "image",
        "ini fotonya",
        "ready",
    )
    uploads = [c for c in graph.calls if c.request.url.endswith("/media")]
    sends = [json.loads(c.request.body) for c in graph.calls if c.request.url.endswith("/messages")]
    assert len(uploads) == 1  # the retry after 130429 sent the same upload again, by id
    assert b"produk.png" in uploads[0].request.body
    assert PNG[:8] in uploads[0].request.body
    assert [s["image"] for s in sends] == [{"caption": "ini fotonya", "id": "UPLOAD-1"}] * 2
    with schema_context("acme"):
        message = Message.objects.get(pk=response.json()["id"])
    assert (message.status, message.wamid, message.media["media_id"]) == (
        "sent",
        "wamid.OUTPHOTO",
        "UPLOAD-1",
    )
    assert api(alice).get(f"/api/v1/messages/{message.pk}/media/").status_code == 200


def test_a_document_is_sent_with_its_file_name(
    db, alice, open_conversation, graph, django_capture_on_commit_callbacks
):
    graph.post(f"{GRAPH_URL}/{ACME['pnid']}/media", json={"id": "UPLOAD-PDF"})
    graph.post(f"{GRAPH_URL}/{ACME['pnid']}/messages", json={"messages": [{"id": "wamid.PDF"}]})

    with django_capture_on_commit_callbacks(execute=True):
        response = send_file(
            alice,
            open_conversation.pk,
            SimpleUploadedFile("invoice 7.pdf", b"%PDF-1.4 test", "application/pdf"),
        )

    assert response.status_code == 201, response.content
    sent = json.loads(graph.calls[-1].request.body)
    assert (sent["type"], sent["document"]) == ("document", {"filename": "invoice 7.pdf", "id": "UPLOAD-PDF"})
    served = api(alice).get(f"/api/v1/messages/{response.json()['id']}/media/")
    assert served["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize(
    ("upload", "data", "code"),
    [
        (("setup.exe", b"MZ" + b"\x00" * 64, "application/x-msdownload"), {}, "unsupported_file_type"),
        (("page.html", b"<script>alert(1)</script>", "text/html"), {}, "unsupported_file_type"),
        (("big.png", b"\x89PNG" + b"\x00" * (5 * 1024 * 1024), "image/png"), {}, "file_too_large"),
        (("empty.pdf", b"", "application/pdf"), {}, "invalid_file"),
        (("voice.ogg", b"OggS" + b"\x00" * 64, "audio/ogg"), {"caption": "listen"}, "invalid_file"),
        (("p.png", PNG, "image/png"), {"caption": "x" * 1025}, "invalid_file"),
    ],
    ids=["executable", "html", "too-large", "empty", "audio-caption", "caption-too-long"],
)
def test_a_file_whatsapp_would_refuse_is_refused_before_anything_is_stored_or_sent(
    db, alice, open_conversation, graph, settings, upload, data, code, django_capture_on_commit_callbacks
):
    from pathlib import Path

    with schema_context("acme"):
        before = Message.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = send_file(alice, open_conversation.pk, SimpleUploadedFile(*upload), **data)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert len(graph.calls) == 0
    with schema_context("acme"):
        assert Message.objects.count() == before
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.*"))


def test_a_file_into_a_closed_window_is_refused(db, alice, acme_number, graph):
    from tests.conftest import receive_text

    closed = receive_text(acme_number, fresh_wa_id(), "halo", int(time.time()) - 26 * 3600).conversation

    response = send_file(alice, closed.pk, SimpleUploadedFile("p.png", PNG, "image/png"))

    assert (response.status_code, response.json()["code"]) == (409, "window_closed")
    assert len(graph.calls) == 0


def test_a_checksum_written_in_base64_matches_too(db, graph, django_capture_on_commit_callbacks):
    import base64

    graph.get(
        f"{GRAPH_URL}/MEDIA-B64", json={"url": DOWNLOAD_URL, "mime_type": "image/png", "id": "MEDIA-B64"}
    )
    graph.get(DOWNLOAD_URL, body=PNG, content_type="image/png")
    p = photo_webhook("MEDIA-B64")
    p["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["sha256"] = base64.b64encode(
        hashlib.sha256(PNG).digest()
    ).decode()

    deliver_webhook(django_capture_on_commit_callbacks, p)

    assert stored(p["entry"][0]["changes"][0]["value"]["messages"][0]["id"]).media["status"] == "ready"
