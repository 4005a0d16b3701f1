"""Health banners against the live stack, in headless Chromium: Meta's webhook about a violation raises a banner
live on a supervisor's page, "Got it" hides it, and a worse state (a scheduled disable) brings one back. Agents
are not shown them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from tests.conftest import ACME, payload
from tests.e2e.conftest import Api, sign_in

LIVE = 15_000  # ms


def without_alerts() -> None:
    """No alert of acme's left by earlier tests (an acknowledged one would hide a new one of its level). On a
    thread of its own: the browser's event loop runs on this one, where Django refuses the ORM."""

    def work() -> None:
        from django.db import connection

        from conversations.models import HealthAlert

        with schema_context("acme"):
            HealthAlert.objects.all().delete()
        connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def account_update(name: str, **ban: str) -> dict[str, Any]:
    p = payload(name)
    p["entry"][0]["id"] = ACME["waba"]
    p["entry"][0]["time"] = int(time.time())  # a new event each time: an exact repeat is Meta's redelivery
    if ban:
        p["entry"][0]["changes"][0]["value"]["ban_info"].update(ban)
    return p


@pytest.mark.browser
def test_a_violation_shows_a_banner_live_until_acknowledged_and_a_worse_state_shows_again(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    sam = Api(live_stack, "sam@acme.test")
    try:
        # Given sam, a supervisor, on the reports page with no alert open
        without_alerts()
        sign_in(page, base_url, "sam@acme.test", "/reports/")
        banners = page.get_by_test_id("health-banner")
        expect(banners).to_have_count(0)

        # When Meta reports a policy violation on the business account
        assert live_stack.webhook(account_update("account_update_violation.json")).status_code == 200

        # Then a banner says so, without a reload
        violation = page.locator("[data-testid=health-banner][data-kind=violation]")
        expect(violation).to_be_visible(timeout=LIVE)
        expect(violation).to_contain_text("Meta found a policy violation on the business account: adult.")

        # When he acknowledges it, it goes, and stays gone after a reload
        violation.get_by_test_id("health-acknowledge").click()
        expect(violation).to_have_count(0)
        assert sam.get("/alerts/") == []
        page.reload()
        expect(page.get_by_test_id("health-banners")).to_be_hidden()

        # When Meta schedules the account to be disabled, a banner is back at once
        scheduled = account_update("account_update_disabled.json", waba_ban_state="SCHEDULE_FOR_DISABLE")
        assert live_stack.webhook(scheduled).status_code == 200
        disable = page.locator("[data-testid=health-banner][data-kind=disable]")
        expect(disable).to_be_visible(timeout=LIVE)
        expect(disable).to_contain_text("Meta will disable the business account on April 17, 2025")

        # And an agent's inbox has no banner at all
        agent = page.context.browser.new_context(locale="en-US")
        alice = agent.new_page()
        sign_in(alice, base_url, "alice@acme.test", "/inbox/")
        expect(alice.get_by_test_id("health-banners")).to_have_count(0)
        agent.close()
    finally:
        without_alerts()
