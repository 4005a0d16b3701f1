"""The reports and settings pages against the live stack, in headless Chromium: a supervisor reads the figures of
a small real history (a customer message through the webhook, an agent's reply through the API) and exports CSV;
an agent is refused; an admin changes the reopen window and it is stored."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACME, fresh_wa_id, payload, retarget
from tests.e2e.conftest import Api, sign_in

LIVE = 15_000  # ms


def fetch_in_page(page: Page, url: str) -> dict[str, Any]:
    """GET with the page's session (the browser resolves *.localhost; other HTTP clients may not)."""
    return page.evaluate(
        """async (url) => {
        const answer = await fetch(url, {credentials: "same-origin"});
        return {status: answer.status, type: answer.headers.get("content-type") || "", text: await answer.text()};
    }""",
        url,
    )


def conversation_of(api: Api, wa_id: str) -> dict[str, Any]:
    deadline = time.time() + LIVE / 1000
    while True:
        for conversation in api.get("/conversations/")["results"]:
            if (conversation["contact"] or {}).get("wa_id") == wa_id:
                return conversation
        assert time.time() < deadline, f"no conversation for {wa_id} after the webhook"
        time.sleep(0.3)


@pytest.mark.browser
def test_supervisor_sees_figures_agents_table_and_csv(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    alice = Api(live_stack, "alice@acme.test")
    alice_id = alice.get("/me/")["id"]

    # Given a small history: a customer writes (webhook) and alice answers (API), which is a first response
    wa_id = fresh_wa_id()
    answer = live_stack.webhook(
        retarget(payload("inbound_text.json"), ACME, wa_id=wa_id, text=f"Paket saya belum datang ({wa_id})"),
        ACME["secret"],
    )
    assert answer.status_code == 200, answer.text
    conversation = conversation_of(alice, wa_id)
    reply = alice.send(
        "POST", f"/conversations/{conversation['id']}/messages/", {"text": "Kami cek sekarang"}
    )
    assert reply.status_code == 201, reply.text

    # When sam, a supervisor, opens the reports (default: the last 30 days)
    sign_in(page, base_url, "sam@acme.test", "/reports/")
    expect(page.get_by_test_id("reports-page")).to_have_attribute("aria-busy", "false", timeout=LIVE)
    expect(page.get_by_test_id("report-error")).to_be_hidden()
    expect(page.get_by_test_id("report-timezone")).to_contain_text("/")  # an IANA zone is stated

    # Then the headline figures are there, with their definitions, and count the first response
    first = page.get_by_test_id("figure-first_response")
    expect(first).to_be_visible()
    assert int(first.get_attribute("data-count") or "0") > 0
    expect(first.get_by_test_id("figure-value")).not_to_have_text("—")
    expect(first.locator(".card-def")).not_to_be_empty()
    for name in (
        "response",
        "resolution",
        "sla",
        "chat_volume",
        "resolved_tickets",
        "windows_expired_unanswered",
    ):
        expect(page.get_by_test_id(f"figure-{name}")).to_be_visible()
    assert int(page.get_by_test_id("volume-messages_in").locator("dd").inner_text().replace(",", "")) > 0

    # And both charts are drawn as SVG
    expect(page.get_by_test_id("chart-times").locator("svg")).to_have_count(1)
    expect(page.get_by_test_id("chart-volume").locator("svg rect.bar").first).to_be_attached()

    # And the agents table has alice's row with her first response and her reply
    row = page.locator(f"[data-testid=agent-row][data-agent-id='{alice_id}']")
    expect(row).to_be_visible()
    assert int(row.get_by_test_id("agent-first_response").get_attribute("data-count") or "0") > 0
    expect(row.get_by_test_id("agent-messages_out")).not_to_have_text("0")

    # And the CSV exports answer text/csv with the same figures
    for name in ("agents", "summary", "timeseries"):
        href = page.get_by_test_id(f"export-{name}-csv").get_attribute("href") or ""
        assert "format=csv" in href
        download = fetch_in_page(page, href)
        assert download["status"] == 200, download
        assert download["type"].startswith("text/csv"), download["type"]
    agents_csv = fetch_in_page(page, page.get_by_test_id("export-agents-csv").get_attribute("href") or "")[
        "text"
    ]
    assert "agent.email" in agents_csv.splitlines()[0]
    assert "alice@acme.test" in agents_csv

    # And switching to business time and weekly buckets keeps the page working
    page.get_by_test_id("basis-business").click()
    page.get_by_test_id("interval-week").click()
    expect(page.get_by_test_id("reports-page")).to_have_attribute("aria-busy", "false")
    expect(page).to_have_url(re.compile(r"interval=week"))
    expect(page.get_by_test_id("report-error")).to_be_hidden()


@pytest.mark.browser
def test_agent_gets_403_on_reports_and_settings(
    committed_db: None, live_stack: Any, browser_page: Page
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    sign_in(page, base_url, "alice@acme.test", "/inbox/")
    expect(page.get_by_test_id("nav-reports")).to_have_count(0)  # no links to pages she may not open

    for path in ("/reports/", "/settings/"):
        response = page.goto(f"{base_url}{path}")
        assert response is not None, path
        assert response.status == 403, (path, response.status)


@pytest.mark.browser
def test_admin_changes_the_reopen_window(committed_db: None, live_stack: Any, browser_page: Page) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    ada = Api(live_stack, "ada@acme.test")
    before = ada.get("/settings/support/")["reopen_window_hours"]
    wanted = 48 if before != 48 else 36
    try:
        # Given ada, an admin, on the settings page
        sign_in(page, base_url, "ada@acme.test", "/settings/")
        field = page.get_by_test_id("setting-reopen-window")
        expect(field).to_have_value(str(before))
        expect(page.get_by_test_id("settings-save")).to_be_disabled()  # nothing changed yet

        # When she changes the reopen window and saves
        field.fill(str(wanted))
        expect(page.get_by_test_id("settings-status")).to_have_attribute("data-state", "dirty")
        page.get_by_test_id("settings-save").click()

        # Then the page says it is saved, and the API has the new value
        expect(page.get_by_test_id("settings-status")).to_have_attribute("data-state", "saved")
        expect(page.get_by_test_id("settings-error")).to_be_hidden()
        assert ada.get("/settings/support/")["reopen_window_hours"] == wanted

        # And it is still there after a reload
        page.reload()
        expect(page.get_by_test_id("setting-reopen-window")).to_have_value(str(wanted))
    finally:
        restored = ada.send("PATCH", "/settings/support/", {"reopen_window_hours": before})
        assert restored.status_code == 200, restored.text
