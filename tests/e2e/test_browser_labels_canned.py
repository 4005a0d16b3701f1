"""Labels and canned responses in the browser inbox against the live stack, in headless Chromium: an agent labels
a conversation from the keyboard, filters the list by the label, and answers with a canned response typed with
`/`, its placeholder filled for the customer."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import Api, sign_in_inbox

LIVE = 15_000  # ms


@pytest.mark.browser
def test_an_agent_labels_filters_and_answers_with_a_canned_response(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    sam = Api(live_stack, "sam@acme.test")
    tag = fresh_wa_id()[-6:]
    label = sam.send("POST", "/labels/", {"name": f"VIP {tag}", "color": "#d97706"}).json()
    canned = sam.send(
        "POST",
        "/canned-responses/",
        {"name": f"terima{tag}", "text": "Terima kasih {{contact.name}}, kami cek dulu ya.", "shared": True},
    ).json()
    vip, other = fresh_wa_id(), fresh_wa_id()
    try:
        for wa_id, name in ((other, "Budi"), (vip, "Rina")):
            p = retarget(payload("inbound_text.json"), ACME, wa_id=wa_id, text=f"halo dari {name}")
            p["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = name
            assert live_stack.webhook(p).status_code == 200

        # Given alice in the inbox, on Rina's conversation
        sign_in_inbox(page, base_url, "alice@acme.test")
        item = page.locator(f"[data-testid=conversation-item][data-wa-id='{vip}']")
        expect(item).to_be_visible(timeout=LIVE)
        item.click()
        expect(page.get_by_test_id("thread-title")).to_have_text("Rina")

        # When she presses L and ticks the label
        page.locator("body").press("l")
        option = page.locator(f"[data-testid=label-option][data-label-id='{label['id']}']")
        expect(option).to_be_visible(timeout=LIVE)
        option.focus()
        option.press("Space")

        # Then the conversation carries it, in the thread and in the list
        expect(
            page.locator(f"[data-testid=conversation-labels] [data-label-id='{label['id']}']")
        ).to_have_text(f"VIP {tag}")
        expect(item.locator(f"[data-testid=label-chip][data-label-id='{label['id']}']")).to_be_visible()

        # When she filters the list by the label, only Rina's conversation is listed
        page.get_by_test_id("label-filter").select_option(str(label["id"]))
        expect(page.get_by_test_id("conversation-item")).to_have_count(1)
        expect(page.get_by_test_id("conversation-item")).to_have_attribute("data-wa-id", vip)
        page.get_by_test_id("label-filter").select_option("")
        expect(page.locator(f"[data-testid=conversation-item][data-wa-id='{other}']")).to_be_visible()

        # When she types "/" and part of the canned response's name, it is offered; Enter inserts it, filled in
        box = page.get_by_test_id("reply-box")
        box.click()
        box.type(f"/terima{tag[:3]}")
        expect(page.get_by_test_id("canned-option")).to_have_count(1)
        expect(page.get_by_test_id("canned-option")).to_contain_text(f"/terima{tag}")
        box.press("Enter")
        expect(box).to_have_value("Terima kasih Rina, kami cek dulu ya.")
        expect(page.get_by_test_id("canned-menu")).to_be_hidden()

        # And Enter sends it
        box.press("Enter")
        outbound = page.locator("[data-testid=message][data-direction=out]")
        expect(outbound).to_have_count(1)
        expect(outbound.get_by_test_id("message-status")).to_have_attribute(
            "data-status", "sent", timeout=LIVE
        )
        sends = [r["body"] for r in live_stack.graph.sends(to=vip)]
        assert [s["text"]["body"] for s in sends] == ["Terima kasih Rina, kami cek dulu ya."]
    finally:
        sam.send("DELETE", f"/labels/{label['id']}/", {})
        sam.send("DELETE", f"/canned-responses/{canned['id']}/", {})
