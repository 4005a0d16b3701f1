"""Edits, deletions, reactions and replies from the phone app, live in the browser: an agent sees them on the
message they belong to, never as new customer messages."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id
from tests.e2e.conftest import sign_in_inbox
from tests.e2e.test_browser_inbox import LIVE


def change(field: str, value: dict[str, Any]) -> dict[str, Any]:
    metadata = {"display_phone_number": ACME["display"], "phone_number_id": ACME["pnid"]}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": ACME["waba"], "changes": [{"field": field, "value": {"metadata": metadata, **value}}]}
        ],
    }


def customer(wa_id: str, *messages: dict[str, Any]) -> dict[str, Any]:
    return change(
        "messages", {"contacts": [{"profile": {"name": "Rina"}, "wa_id": wa_id}], "messages": list(messages)}
    )


@pytest.mark.browser
def test_edits_deletions_reactions_and_phone_replies_show_live_on_their_message(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    sign_in_inbox(page, live_stack.base_url(ACME["domain"]), "alice@acme.test")
    wa_id, now = fresh_wa_id(), int(time.time())
    first, second = "wamid.E" + secrets.token_hex(8), "wamid.E" + secrets.token_hex(8)

    def text(wamid: str, body: str, ts: int) -> dict[str, Any]:
        return {"from": wa_id, "id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": body}}

    live_stack.webhook(
        customer(wa_id, text(first, "pesanan #12", now), text(second, "kartu 4111", now + 1)), ACME["secret"]
    )
    item = page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']")
    expect(item).to_be_visible(timeout=LIVE)
    item.click()
    inbound = page.locator("[data-testid=message][data-direction=in]")
    expect(inbound).to_have_count(2)

    # when the customer edits the first, deletes the second and reacts to the first
    live_stack.webhook(
        customer(
            wa_id,
            {
                "from": wa_id,
                "id": "wamid.X" + secrets.token_hex(6),
                "timestamp": str(now + 5),
                "type": "edit",
                "edit": {
                    "original_message_id": first,
                    "message": {"type": "text", "text": {"body": "pesanan #21"}},
                },
            },
            {
                "from": wa_id,
                "id": "wamid.X" + secrets.token_hex(6),
                "timestamp": str(now + 6),
                "type": "revoke",
                "revoke": {"original_message_id": second},
            },
            {
                "from": wa_id,
                "id": "wamid.X" + secrets.token_hex(6),
                "timestamp": str(now + 7),
                "type": "reaction",
                "reaction": {"message_id": first, "emoji": "👍"},
            },
        ),
        ACME["secret"],
    )
    # and the business answers from its phone
    live_stack.webhook(
        change(
            "smb_message_echoes",
            {
                "message_echoes": [
                    {
                        "from": ACME["display"],
                        "to": wa_id,
                        "id": "wamid.P" + secrets.token_hex(6),
                        "timestamp": str(now + 8),
                        "type": "text",
                        "text": {"body": "siap kak"},
                    }
                ]
            },
        ),
        ACME["secret"],
    )

    # then the first shows its new text, marked edited, with the reaction; the second shows it was deleted
    expect(inbound.nth(0).get_by_test_id("message-text")).to_have_text("pesanan #21", timeout=LIVE)
    expect(inbound.nth(0).get_by_test_id("message-edited")).to_be_visible()
    expect(inbound.nth(0).get_by_test_id("message-reactions")).to_have_text("👍", timeout=LIVE)
    expect(inbound.nth(1).get_by_test_id("message-deleted")).to_have_text(
        "This message was deleted", timeout=LIVE
    )
    expect(inbound.nth(1)).not_to_contain_text("4111")
    # and the phone app's reply is ours, labelled; nothing else became a message
    outbound = page.locator("[data-testid=message][data-direction=out]")
    expect(outbound).to_have_count(1, timeout=LIVE)
    expect(outbound.get_by_test_id("message-sender")).to_have_text("WhatsApp Business app")
    expect(inbound).to_have_count(2)
    assert live_stack.graph.sends(to=wa_id) == []
