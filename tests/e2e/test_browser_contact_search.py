"""The contact panel and the search in the browser inbox against the live stack, in headless Chromium: an agent
renames a customer and keeps an attribute (another agent's list shows the new name live), and finds an old
conversation by a word of a message, the word marked."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import sign_in_inbox

LIVE = 15_000  # ms


@pytest.mark.browser
def test_an_agent_edits_the_contact_and_finds_an_old_message(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    wa_id, word = fresh_wa_id(), "resi" + fresh_wa_id()[-5:]
    old = retarget(
        payload("inbound_text.json"),
        ACME,
        wa_id=wa_id,
        text=f"Nomor {word} JNE saya belum update",
        ts=int(time.time()) - 3 * 86400,
    )
    assert live_stack.webhook(old).status_code == 200
    recent = retarget(payload("inbound_text.json"), ACME, wa_id=fresh_wa_id(), text="halo, ada promo?")
    assert live_stack.webhook(recent).status_code == 200

    # Given alice in the inbox, and sam watching the list in his own browser
    sign_in_inbox(page, base_url, "alice@acme.test")
    watcher = page.context.browser.new_context(locale="en-US")
    sam = watcher.new_page()
    sign_in_inbox(sam, base_url, "sam@acme.test")

    # When alice searches a word of the old message
    page.get_by_test_id("search-box").fill(word)
    hit = page.locator("[data-testid=search-result]")
    expect(hit).to_have_count(1, timeout=LIVE)
    expect(hit.locator("mark")).to_have_text(word)
    expect(hit).to_have_attribute("data-match", "message")

    # And opens it: the thread is the old conversation
    hit.click()
    expect(page.locator("[data-testid=message][data-direction=in]")).to_contain_text(word)

    # When she opens the contact panel, renames the customer and keeps an attribute
    page.get_by_test_id("contact-toggle").click()
    expect(page.get_by_test_id("contact-number")).to_have_text("+" + wa_id)
    name = page.get_by_test_id("contact-name")
    name.fill("Rina (Surabaya)")
    name.press("Enter")
    page.get_by_test_id("attribute-key").fill("customer_id")
    page.get_by_test_id("attribute-value").fill("C-1042")
    page.get_by_test_id("attribute-add").click()

    # Then the panel and the thread show them, and sam's list shows the new name live
    attribute = page.locator("[data-testid=contact-attribute][data-key=customer_id]")
    expect(attribute).to_contain_text("C-1042")
    expect(page.get_by_test_id("thread-title")).to_have_text("Rina (Surabaya)")
    expect(
        sam.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}'] [data-testid=conversation-name]")
    ).to_have_text("Rina (Surabaya)", timeout=LIVE)
    expect(page.locator("[data-testid=contact-ticket]")).to_have_count(1)

    # And after a reload they are still there
    page.reload()
    page.get_by_test_id("contact-toggle").click()
    expect(page.get_by_test_id("contact-name")).to_have_value("Rina (Surabaya)")
    expect(page.locator("[data-testid=contact-attribute][data-key=customer_id]")).to_contain_text("C-1042")
    watcher.close()
