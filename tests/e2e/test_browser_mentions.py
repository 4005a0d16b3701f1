"""@mentions in the browser inbox against the live stack, in headless Chromium: an agent names a colleague in a
private note; the colleague is told at once (a count and a toast), finds it in their mentions and opens the
conversation from there."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import sign_in_inbox

LIVE = 15_000  # ms


@pytest.mark.browser
def test_a_colleague_named_in_a_note_is_told_live_and_opens_it(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    base_url = live_stack.base_url(ACME["domain"])
    wa_id = fresh_wa_id()
    assert (
        live_stack.webhook(
            retarget(payload("inbound_text.json"), ACME, wa_id=wa_id, text="halo?")
        ).status_code
        == 200
    )
    other = browser_page.context.browser.new_context(locale="en-US")
    sam = other.new_page()
    try:
        sign_in_inbox(sam, base_url, "sam@acme.test")
        sam.get_by_test_id("mentions-button").click()
        sam.get_by_test_id("mentions-button").click()  # opened and closed: the list is loaded
        before = sam.get_by_test_id("mention-item").count()

        # When alice writes a private note naming sam
        page = browser_page
        sign_in_inbox(page, base_url, "alice@acme.test")
        page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']").click()
        page.locator("body").press("n")
        page.get_by_test_id("reply-box").fill("@sam tolong cek pesanan ini")
        page.get_by_test_id("reply-box").press("Enter")

        # Then sam is told at once, and opens the conversation from his mentions
        expect(sam.get_by_test_id("mentions-count")).to_be_visible(timeout=LIVE)
        sam.get_by_test_id("mentions-button").click()
        mention = sam.get_by_test_id("mention-item").first
        expect(sam.get_by_test_id("mention-item")).to_have_count(before + 1)
        expect(mention).to_contain_text("Alice mentioned you")
        expect(mention).to_contain_text("@sam tolong cek pesanan ini")
        mention.click()
        expect(sam.get_by_test_id("thread-title")).to_be_visible()
        expect(sam).to_have_url(re.compile(r"#c=\d+$"))
        expect(sam.get_by_test_id("mentions-count")).to_be_hidden()
    finally:
        other.close()
