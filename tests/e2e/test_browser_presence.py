"""Presence in the browser inbox against the live stack, in headless Chromium: two agents on the same customer see
each other there, and one sees when the other types, so that they do not both answer."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import sign_in_inbox

LIVE = 15_000  # ms


def open_inbox(page: Page, base_url: str, email: str, wa_id: str) -> None:
    sign_in_inbox(page, base_url, email)
    page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']").click()


@pytest.mark.browser
def test_two_agents_on_one_customer_see_each_other_and_who_is_typing(
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
        # Given alice and sam both open the customer's conversation
        open_inbox(browser_page, base_url, "alice@acme.test", wa_id)
        open_inbox(sam, base_url, "sam@acme.test", wa_id)

        # Then each sees the other there
        expect(sam.get_by_test_id("presence-agent")).to_have_text("Alice is here too", timeout=LIVE)
        expect(browser_page.get_by_test_id("presence-agent")).to_have_text("Sam is here too", timeout=LIVE)

        # When alice types a reply, sam sees her typing
        browser_page.get_by_test_id("reply-box").type("Baik, saya cek")
        expect(sam.get_by_test_id("presence-agent")).to_have_attribute("data-typing", "true", timeout=LIVE)
        expect(sam.get_by_test_id("presence-agent")).to_have_text("Alice is typing…")

        # When alice leaves (closes the page), sam no longer sees her
        browser_page.close()
        expect(sam.get_by_test_id("presence-agent")).to_have_count(0, timeout=LIVE)
    finally:
        other.close()
