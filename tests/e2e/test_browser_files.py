"""Files in the browser inbox against the live stack, in headless Chromium: a customer's photo, voice note and PDF
are downloaded by the worker and shown (the photo displayed, the voice note playable, the PDF with its name and a
download that works); the agent sends a photo by drag and drop and a PDF through the file picker, and sees them
sent."""

from __future__ import annotations

import hashlib
import re
import struct
import time
import zlib
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import sign_in_inbox

LIVE = 15_000  # ms


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG (the browser decodes it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OGG = b"OggS" + b"\x00" * 200


def inbound(
    wa_id: str, name: str, kind: str, media_id: str, data: bytes, mime: str, **extra: Any
) -> dict[str, Any]:
    p = retarget(payload(name), ACME, wa_id=wa_id)
    message = p["entry"][0]["changes"][0]["value"]["messages"][0]
    message[kind].update(id=media_id, mime_type=mime, sha256=hashlib.sha256(data).hexdigest(), **extra)
    return p


@pytest.mark.browser
def test_customers_files_are_shown_and_the_agent_sends_files_by_drop_and_picker(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    wa_id = fresh_wa_id()
    photo = png()
    tag = wa_id[-6:]
    live_stack.graph.media.update(
        {
            f"PHOTO{tag}": (photo, "image/png"),
            f"VOICE{tag}": (OGG, "audio/ogg"),
            f"PDF{tag}": (PDF, "application/pdf"),
        }
    )

    # Given alice has the inbox open, when a customer sends a photo, a voice note and a PDF
    sign_in_inbox(page, base_url, "alice@acme.test")
    for p in (
        inbound(
            wa_id, "inbound_image.json", "image", f"PHOTO{tag}", photo, "image/png", caption="bukti transfer"
        ),
        inbound(wa_id, "inbound_audio_voice.json", "audio", f"VOICE{tag}", OGG, "audio/ogg"),
        inbound(
            wa_id,
            "inbound_document.json",
            "document",
            f"PDF{tag}",
            PDF,
            "application/pdf",
            filename="invoice-1042.pdf",
        ),
    ):
        assert live_stack.webhook(p).status_code == 200
        time.sleep(0.2)  # in this order
    page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']").click()

    # Then each is shown once downloaded: the photo displayed, the voice note playable, the PDF by its name
    shown = page.locator("[data-testid=message-media][data-state=ready]")
    expect(shown).to_have_count(3, timeout=LIVE)
    image = page.locator("[data-testid=message-media][data-kind=image] img")
    expect(image).to_be_visible()
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 2", arg=image.element_handle())
    expect(page.get_by_text("bukti transfer")).to_be_visible()
    expect(page.locator("[data-testid=message-media][data-kind=audio] audio")).to_have_attribute(
        "src", re.compile(r"^/api/v1/messages/\d+/media/$")
    )
    document = page.locator("[data-testid=message-media][data-kind=document]")
    expect(document).to_contain_text("invoice-1042.pdf")
    href = document.get_attribute("href")
    fetched = page.evaluate(
        """async (url) => {
        const answer = await fetch(url, {credentials: "same-origin"});
        return {status: answer.status, type: answer.headers.get("content-type"), size: (await answer.arrayBuffer()).byteLength};
    }""",
        href,
    )
    assert fetched == {"status": 200, "type": "application/pdf", "size": len(PDF)}

    # When alice drops a photo on the conversation, with a caption typed in the reply box
    page.get_by_test_id("reply-box").fill("ini fotonya")
    page.evaluate(
        """([bytes]) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "produk.png", {type: "image/png"}));
        const target = document.querySelector("[data-testid=reply-box]");
        for (const kind of ["dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(kind, {dataTransfer: data, bubbles: true, cancelable: true}));
        }
    }""",
        [list(photo)],
    )

    # And picks a PDF with the file picker
    outbound = page.locator("[data-testid=message][data-direction=out]")
    expect(outbound).to_have_count(1, timeout=LIVE)
    page.get_by_test_id("attach-input").set_input_files(
        {"name": "penawaran.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )

    # Then both are in the thread, sent (ticks), uploaded and sent by id: the photo with its caption
    expect(outbound).to_have_count(2, timeout=LIVE)
    for index in (0, 1):
        expect(outbound.nth(index).get_by_test_id("message-status")).to_have_attribute(
            "data-status", "sent", timeout=LIVE
        )
    expect(outbound.nth(0)).to_contain_text("ini fotonya")
    expect(outbound.nth(1)).to_contain_text("penawaran.pdf")
    expect(page.get_by_test_id("reply-box")).to_have_value("")
    sends = [r["body"] for r in live_stack.graph.sends(to=wa_id)]
    assert [s["type"] for s in sends] == ["image", "document"], sends
    assert sends[0]["image"]["caption"] == "ini fotonya"
    assert str(sends[0]["image"]["id"]).startswith("UPLOAD")
    assert sends[1]["document"]["filename"] == "penawaran.pdf"
    uploads = [r for r in live_stack.graph.requests if r["method"] == "POST" and r["path"].endswith("/media")]
    assert len(uploads) == 2
