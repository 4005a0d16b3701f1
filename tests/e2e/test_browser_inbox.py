"""The browser inbox against the live stack: headless Chromium signs in as alice, sees a customer's message
arrive without a reload, answers it with Enter, and watches the reply get its tick."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import sign_in_inbox

LIVE = 15_000  # ms: webhook -> Celery worker -> event -> websocket -> page


def body_of(send: dict[str, Any]) -> dict[str, Any]:
    body = send["body"]
    return body if isinstance(body, dict) else json.loads(body)


@pytest.mark.browser
def test_a_customer_message_appears_live_and_the_reply_gets_its_tick(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    wa_id = fresh_wa_id()
    text = f"Halo, pesanan saya belum sampai ({wa_id})"
    reply = f"Maaf atas keterlambatannya, kami cek sekarang ({wa_id})"

    # Given alice has the inbox open
    sign_in_inbox(page, base_url, "alice@acme.test")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # When a new customer writes
    response = live_stack.webhook(
        retarget(payload("inbound_text.json"), ACME, wa_id=wa_id, text=text), ACME["secret"]
    )
    assert response.status_code == 200, response.text

    # Then the conversation appears at the top of the list, unread, without a reload
    item = page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']")
    expect(item).to_be_visible(timeout=LIVE)
    expect(item.get_by_test_id("conversation-preview")).to_have_text(text)
    expect(item.get_by_test_id("unread-badge")).to_have_text("1")
    expect(page.get_by_test_id("conversation-item").first).to_have_attribute("data-wa-id", wa_id)

    # And, opened, the thread shows the message and the 24-hour window is open
    item.click()
    expect(page).to_have_url(re.compile(r"#c=\d+$"))
    inbound = page.locator("[data-testid=message][data-direction=in]")
    expect(inbound).to_have_count(1)
    expect(inbound.get_by_test_id("message-text")).to_have_text(text)
    expect(page.get_by_test_id("window-state")).to_have_attribute("data-state", "open")
    expect(item.get_by_test_id("unread-badge")).to_have_count(0)

    # When alice types a reply and presses Enter
    box = page.get_by_test_id("reply-box")
    expect(box).to_be_enabled()
    box.click()
    box.type(reply)
    box.press("Enter")

    # Then the bubble is there at once, is sent to WhatsApp exactly once, and shows the sent tick
    outbound = page.locator("[data-testid=message][data-direction=out]")
    expect(outbound).to_have_count(1)
    expect(outbound.get_by_test_id("message-text")).to_have_text(reply)
    expect(outbound.get_by_test_id("message-status")).to_have_attribute("data-status", "sent", timeout=LIVE)
    expect(box).to_have_value("")

    time.sleep(1.0)  # a duplicate send or bubble would show up by now
    sends = live_stack.graph.sends(to=wa_id)
    assert len(sends) == 1, sends
    assert body_of(sends[0])["type"] == "text"
    assert body_of(sends[0])["text"]["body"] == reply
    expect(outbound).to_have_count(1)
    expect(inbound).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True
