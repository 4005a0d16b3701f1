"""The pages under the real server's content security policy, in Chromium: nothing is blocked (no inline
script or style), the websocket connects, and "Sign out everywhere" ends the browser session and API tokens."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.conftest import ACME, PASSWORD, fresh_wa_id, payload, retarget

LIVE = 15_000


@pytest.fixture
def admin(committed_db: None) -> str:
    """A fresh admin of acme (created before the browser starts: Playwright runs an event loop)."""
    from helpdesk.tenancy.actions import do_add_member
    from helpdesk.tenancy.models import Tenant

    email = f"dana-{fresh_wa_id()}@acme.test"
    do_add_member(Tenant.objects.get(schema_name="acme"), email, "admin", PASSWORD, "Dana")
    return email


@pytest.mark.browser
def test_the_pages_work_under_the_content_security_policy_and_sign_out_everywhere_ends_all(
    live_stack: Any, admin: str, browser_page: Page
) -> None:
    page = browser_page
    blocked: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            blocked.append(message.text)

    page.on("console", on_console)
    base_url = live_stack.base_url(ACME["domain"])
    email = admin
    api = requests.post(
        f"http://127.0.0.1:{live_stack.port}/api/v1/auth/token/",
        json={"email": email, "password": PASSWORD},
        headers={"Host": ACME["domain"]},
        timeout=10,
    )
    assert api.status_code == 200, api.text
    token = api.json()["token"]
    assert (
        live_stack.webhook(retarget(payload("inbound_text.json"), ACME, wa_id=fresh_wa_id())).status_code
        == 200
    )

    # the login page's language picker works without an inline handler
    page.goto(f"{base_url}/login/?next=/inbox/")
    page.get_by_test_id("language-select").select_option("id")
    expect(page.locator("h1")).to_have_text("Masuk ke helpdesk Anda")

    # signing in, the inbox connects its websocket and draws avatars (styles set through the CSSOM)
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(re.compile(r"/inbox/"))
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "live", timeout=LIVE)
    avatar = page.locator(".avatar").first
    expect(avatar).to_be_visible(timeout=LIVE)
    assert avatar.evaluate("node => node.style.getPropertyValue('--hue')") != ""

    # the reports page draws its charts, the settings page its form
    page.goto(f"{base_url}/reports/")
    expect(page.get_by_test_id("reports-page")).to_have_attribute("aria-busy", "false", timeout=LIVE)
    page.goto(f"{base_url}/settings/")
    expect(page.get_by_test_id("settings-page")).to_have_attribute("aria-busy", "false", timeout=LIVE)

    assert blocked == []

    # "Sign out everywhere" ends this session and the API token obtained elsewhere
    page.get_by_test_id("logout-all-button").click()
    page.wait_for_url(re.compile(r"/login/"))
    page.goto(f"{base_url}/inbox/")
    page.wait_for_url(re.compile(r"/login/"))
    refused = requests.get(
        f"http://127.0.0.1:{live_stack.port}/api/v1/conversations/",
        headers={"Host": ACME["domain"], "Authorization": f"Token {token}"},
        timeout=10,
    )
    assert refused.status_code == 401
