"""Numbers and templates against the live stack, in headless Chromium: an admin adds a number and tests its
connection against the fake Graph API; writes a template the content check blocks, fixes it, submits it, and sees
Meta's approval arrive live; an agent then sends it into a conversation whose 24-hour window has closed and sees it
in the thread as the customer will."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import Api, sign_in

LIVE = 15_000  # ms
NEW_NUMBER = {"pnid": "106540352209999", "waba": "102290129309999", "display": "15550789999"}


def template_sends(live_stack: Any, wa_id: str) -> list[dict[str, Any]]:
    return [r["body"] for r in live_stack.graph.sends(to=wa_id) if r["body"].get("type") == "template"]


@pytest.mark.browser
def test_admin_connects_a_number_and_gets_a_template_approved_that_an_agent_sends_into_a_closed_window(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    api = Api(live_stack, "ada@acme.test")
    name = "e2e_shipped_" + secrets.token_hex(3)
    live_stack.graph.numbers[NEW_NUMBER["pnid"]] = {
        "display_phone_number": "+1 555-078-9999",
        "verified_name": "Acme Second Store",
        "quality_rating": "GREEN",
        "name_status": "APPROVED",
        "throughput": {"level": "STANDARD"},
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
    }
    try:
        # Given ada, an admin, on the numbers page
        sign_in(page, base_url, "ada@acme.test", "/numbers/")
        expect(page.get_by_test_id("number-card")).to_have_count(1)

        # When she adds a number and tests its connection
        page.get_by_test_id("number-add").click()
        page.get_by_test_id("field-phone-number-id").fill(NEW_NUMBER["pnid"])
        page.get_by_test_id("field-waba-id").fill(NEW_NUMBER["waba"])
        page.get_by_test_id("field-display-number").fill("+1 555 078 9999")
        page.get_by_test_id("field-access-token").fill("E2E-SECOND-TOKEN")
        page.get_by_test_id("field-app-secret").fill("e2e-second-secret")
        page.get_by_test_id("number-save").click()
        card = page.locator(f"[data-testid=number-card][data-pnid='{NEW_NUMBER['pnid']}']")
        expect(card).to_be_visible()
        expect(card.get_by_test_id("number-connection")).to_have_text("Not tested yet")
        expect(card.get_by_test_id("number-verify-token")).not_to_be_empty()
        expect(card.get_by_test_id("number-webhook-url")).to_contain_text("/webhooks/whatsapp/")
        card.get_by_test_id("number-test").click()

        # Then the page shows what Meta says of the number, read with the number's own token
        expect(card.get_by_test_id("number-result")).to_contain_text("Connected")
        expect(card.get_by_test_id("number-verified-name")).to_have_text("Acme Second Store")
        expect(card.get_by_test_id("number-quality")).to_have_text("Quality: high")
        expect(card.get_by_test_id("number-limit")).to_have_text("2,000 customers a day")
        reads = [
            r for r in live_stack.graph.requests if r["method"] == "GET" and NEW_NUMBER["pnid"] in r["path"]
        ]
        assert reads
        assert reads[-1]["headers"]["Authorization"] == "Bearer E2E-SECOND-TOKEN"
        expect(page.locator("body")).not_to_contain_text("E2E-SECOND-TOKEN")

        # When she writes a template with gambling content
        page.goto(f"{base_url}/templates/")
        page.get_by_test_id("template-new").click()
        page.get_by_test_id("template-name").fill(name)
        page.get_by_test_id("template-body").fill(
            "Menangkan jackpot judi online hari ini, {{1}}! Daftar sekarang juga."
        )
        page.get_by_test_id("template-example").fill("Budi")

        # Then the check blocks it, saying why, and it cannot be submitted
        finding = page.locator("[data-testid=finding][data-code=prohibited_content]", has_text="judi online")
        expect(finding).to_be_visible(timeout=LIVE)
        expect(finding).to_have_attribute("data-severity", "error")
        expect(finding).to_contain_text("gambling")
        expect(page.get_by_test_id("template-submit")).to_be_disabled()

        # When she fixes it; the preview shows what the customer will read; she submits it
        page.get_by_test_id("template-body").fill(
            "Halo {{1}}, pesanan anda sudah dikirim dan tiba dalam 2 hari kerja."
        )
        page.get_by_test_id("template-example").fill("Budi")
        expect(page.get_by_test_id("findings-clean")).to_be_visible(timeout=LIVE)
        expect(page.get_by_test_id("preview-body")).to_have_text(
            "Halo Budi, pesanan anda sudah dikirim dan tiba dalam 2 hari kerja."
        )
        page.get_by_test_id("template-submit").click()

        # Then it is pending, and Meta got it with the acme number's token
        row = page.locator(f"[data-testid=template-row][data-name='{name}']")
        expect(row.get_by_test_id("template-status")).to_have_text("Pending review")
        submitted = [
            r
            for r in live_stack.graph.requests
            if r["method"] == "POST"
            and r["path"].endswith(f"/{ACME['waba']}/message_templates")
            and r["body"].get("name") == name
        ]
        assert len(submitted) == 1, submitted
        assert submitted[0]["headers"]["Authorization"] == f"Bearer {ACME['token']}"
        expect(page.get_by_test_id("template-form")).to_be_hidden()

        # When Meta approves it (a signed status webhook), the list shows it live, without a reload
        page.evaluate("window.__sameDocument = true")
        meta_id = next(
            t["meta_id"] for t in api.get("/templates/?status=pending")["results"] if t["name"] == name
        )
        approval = payload("template_status_update.json")
        approval["entry"][0]["id"] = ACME["waba"]
        approval["entry"][0]["changes"][0]["value"].update(
            event="APPROVED",
            message_template_id=int(meta_id),
            message_template_name=name,
            message_template_language="id",
        )
        assert live_stack.webhook(approval).status_code == 200
        expect(row.get_by_test_id("template-status")).to_have_text("Approved", timeout=LIVE)
        assert page.evaluate("window.__sameDocument") is True

        # Given a customer who wrote 26 hours ago: the 24-hour window is closed
        wa_id = fresh_wa_id()
        inbound = retarget(
            payload("inbound_text.json"),
            ACME,
            wa_id=wa_id,
            text="halo, pesanan saya?",
            ts=int(time.time()) - 26 * 3600,
        )
        assert live_stack.webhook(inbound).status_code == 200

        # When alice, an agent, opens the conversation, the reply box offers templates instead of free text
        agent = page.context.browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
        alice = agent.new_page()
        alice.set_default_timeout(10_000)
        errors: list[str] = []
        alice.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(alice, base_url, "alice@acme.test", "/inbox/")
        item = alice.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']")
        expect(item).to_be_visible(timeout=LIVE)
        item.click()
        expect(alice.get_by_test_id("reply-disabled-notice")).to_be_visible()
        expect(alice.get_by_test_id("reply-box")).to_be_disabled()
        alice.get_by_test_id("template-open-closed").click()
        option = alice.locator("[data-testid=template-select] option", has_text=name)
        expect(option).to_have_count(1)
        alice.get_by_test_id("template-select").select_option(option.get_attribute("value"))
        expect(alice.get_by_test_id("template-send")).to_be_disabled()  # its variable is not filled in yet
        alice.get_by_test_id("template-variable").fill("Sari")
        expect(alice.get_by_test_id("template-preview")).to_have_text(
            "Halo Sari, pesanan anda sudah dikirim dan tiba dalam 2 hari kerja."
        )
        alice.get_by_test_id("template-send").click()

        # Then it shows in the thread as the customer sees it, and reached WhatsApp once, with its parameter
        outbound = alice.locator("[data-testid=message][data-direction=out]")
        expect(outbound).to_have_count(1)
        expect(outbound).to_contain_text(f"Template: {name}")
        expect(outbound).to_contain_text("Halo Sari, pesanan anda sudah dikirim dan tiba dalam 2 hari kerja.")
        expect(outbound.get_by_test_id("message-status")).to_have_attribute(
            "data-status", "sent", timeout=LIVE
        )
        expect(alice.get_by_test_id("template-picker")).to_be_hidden()
        time.sleep(1.0)  # a second send would show by now
        sends = template_sends(live_stack, wa_id)
        assert len(sends) == 1, sends
        assert sends[0]["template"]["name"] == name
        assert sends[0]["template"]["language"] == {"code": "id"}
        assert "Sari" in json.dumps(sends[0]["template"]["components"])
        assert errors == [], errors
        agent.close()

        # When ada edits the approved template (the editor comes filled in), Meta gets the change to review
        row.get_by_test_id("template-edit").click()
        expect(page.get_by_test_id("template-name")).to_have_value(name)
        expect(page.get_by_test_id("template-name")).to_be_disabled()
        expect(page.get_by_test_id("template-body")).to_have_value(
            "Halo {{1}}, pesanan anda sudah dikirim dan tiba dalam 2 hari kerja."
        )
        expect(page.get_by_test_id("template-example")).to_have_value("Budi")
        page.get_by_test_id("template-footer").fill("Toko Acme")
        expect(page.get_by_test_id("findings-clean")).to_be_visible(timeout=LIVE)
        page.get_by_test_id("template-submit").click()
        expect(row.get_by_test_id("template-status")).to_have_text("Pending review")
        edits = [
            r
            for r in live_stack.graph.requests
            if r["method"] == "POST" and r["path"].endswith(f"/{meta_id}")
        ]
        assert len(edits) == 1, edits
        assert edits[0]["body"]["components"][-1] == {"type": "FOOTER", "text": "Toko Acme"}
    finally:
        for template in api.get("/templates/")["results"]:
            if template["name"] == name:
                api.send("DELETE", f"/templates/{template['id']}/", {})
        for number in api.get("/numbers/")["results"]:
            if number["phone_number_id"] == NEW_NUMBER["pnid"]:
                api.send("DELETE", f"/numbers/{number['id']}/", {})
