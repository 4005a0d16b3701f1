"""The satisfaction question against the live stack, in headless Chromium: an agent resolves an answered ticket in
the inbox, the question goes out through the (fake) Graph API as a list and shows in the thread, the customer's
tap comes back by webhook and shows on the ticket without reopening it; a supervisor reads the rating in the
reports, filtered by the conversation's label; an admin turns the question off in the settings."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import Api, sign_in, sign_in_inbox

LIVE = 15_000  # ms


def wait_for(check: Any, what: str) -> Any:
    deadline = time.time() + LIVE / 1000
    while True:
        found = check()
        if found:
            return found
        assert time.time() < deadline, what
        time.sleep(0.3)


@pytest.mark.browser
def test_the_question_is_asked_answered_and_reported(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    alice, sam = Api(live_stack, "alice@acme.test"), Api(live_stack, "sam@acme.test")
    wa_id = fresh_wa_id()
    label = sam.send("POST", "/labels/", {"name": f"Rated {wa_id[-6:]}", "color": "#067647"}).json()

    # Given a customer who wrote and was answered
    assert (
        live_stack.webhook(retarget(payload("inbound_text.json"), ACME, wa_id=wa_id, text="halo")).status_code
        == 200
    )
    conversation = wait_for(
        lambda: next(
            (
                c
                for c in alice.get("/conversations/")["results"]
                if (c["contact"] or {}).get("wa_id") == wa_id
            ),
            None,
        ),
        "the conversation",
    )
    assert (
        alice.send("PATCH", f"/conversations/{conversation['id']}/", {"labels": [label["id"]]}).status_code
        == 200
    )
    sign_in_inbox(page, base_url, "alice@acme.test")
    page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']").click()
    box = page.get_by_test_id("reply-box")
    box.fill("Sudah kami kirim ya")
    box.press("Enter")
    expect(page.locator("[data-testid=message][data-direction=out]")).to_have_count(1, timeout=LIVE)

    # When alice resolves it in the inbox
    page.get_by_test_id("resolve-button").click()

    # Then the question reaches WhatsApp as a list of five ratings and shows in the thread as the bot's
    question = wait_for(
        lambda: [s for s in live_stack.graph.sends(wa_id) if s["body"].get("type") == "interactive"],
        "the satisfaction question at the Graph API",
    )[0]["body"]["interactive"]
    rows = question["action"]["sections"][0]["rows"]
    assert [row["title"][:1] for row in rows] == ["5", "4", "3", "2", "1"]
    asked = page.locator("[data-testid=message][data-direction=out]").nth(1)
    expect(asked.get_by_test_id("message-choices").locator("li")).to_have_count(5, timeout=LIVE)

    # When the customer taps "5"
    tap = retarget(payload("inbound_text.json"), ACME, wa_id=wa_id)
    message = tap["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("text")
    message.update(
        type="interactive",
        id="wamid.CSAT" + secrets.token_hex(8),
        interactive={"type": "list_reply", "list_reply": {"id": rows[0]["id"], "title": rows[0]["title"]}},
    )
    assert live_stack.webhook(tap).status_code == 200

    # Then the ticket shows the rating and stays resolved
    expect(page.get_by_test_id("ticket-csat")).to_have_attribute("data-score", "5", timeout=LIVE)
    ticket = alice.get(f"/tickets/{conversation['ticket']['id']}/")
    assert (ticket["status"], ticket["csat_score"], ticket["reopen_count"]) == ("resolved", 5, 0)

    # And sam's reports, filtered by the label, show it for alice
    page.context.clear_cookies()
    sign_in(page, base_url, "sam@acme.test", "/reports/")
    expect(page.get_by_test_id("reports-page")).to_have_attribute("aria-busy", "false", timeout=LIVE)
    page.get_by_test_id("report-label").select_option(str(label["id"]))
    expect(page).to_have_url(re.compile(rf"[?&]label={label['id']}\b"))
    csat = page.get_by_test_id("figure-csat")
    expect(csat).to_have_attribute("data-responses", "1", timeout=LIVE)
    expect(csat).to_have_attribute("data-score", "100")
    expect(page.get_by_test_id("volume-conversations").locator("dd")).to_have_text("1")
    alice_id = alice.get("/me/")["id"]
    expect(
        page.locator(f"[data-testid=agent-row][data-agent-id='{alice_id}']").get_by_test_id("agent-csat")
    ).to_contain_text("100")


@pytest.mark.browser
def test_an_admin_turns_the_question_off(committed_db: None, live_stack: Any, browser_page: Page) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    ada = Api(live_stack, "ada@acme.test")
    try:
        sign_in(page, base_url, "ada@acme.test", "/settings/")
        toggle = page.get_by_test_id("setting-csat")
        expect(toggle).to_be_checked()
        expect(page.get_by_test_id("setting-customer-language")).to_have_value("id")

        toggle.uncheck()
        page.get_by_test_id("setting-customer-language").select_option("en")
        page.get_by_test_id("settings-save").click()

        expect(page.get_by_test_id("settings-status")).to_have_attribute("data-state", "saved")
        saved = ada.get("/settings/support/")
        assert (saved["csat_enabled"], saved["customer_language"]) == (False, "en")
    finally:
        restored = ada.send("PATCH", "/settings/support/", {"csat_enabled": True, "customer_language": "id"})
        assert restored.status_code == 200, restored.text
