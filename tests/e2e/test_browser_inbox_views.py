"""The inbox as a new user meets it, in headless Chromium against the live stack: the status tabs follow the
tickets (resolved and pending through the UI, watched live by a colleague), times are in the helpdesk's zone
whatever the browser's, the SLA badge counts business time, and the inbox works 390 px wide."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
import requests
from django.db import connections
from django_tenants.utils import schema_context
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.conftest import ACME, PASSWORD, fresh_wa_id, payload, retarget
from tests.e2e.conftest import sign_in_inbox
from tickets.business_time import BusinessCalendar

LIVE = 15_000  # ms: webhook -> Celery worker -> event -> websocket -> page
PHONE = {"width": 390, "height": 844}
T = TypeVar("T")


def item(page: Page, wa_id: str) -> Locator:
    return page.locator(f"[data-testid=conversation-item][data-wa-id='{wa_id}']")


def tab(page: Page, status: str) -> None:
    page.locator(f"[data-testid=status-tab][data-status='{status}']").click()
    expect(page.locator(f"[data-testid=status-tab][data-status='{status}']")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.get_by_test_id("conversation-list-footer")).not_to_contain_text("Loading")


def customer_writes(live_stack: Any, wa_id: str, text: str, ts: int | None = None) -> None:
    answer = live_stack.webhook(retarget(payload("inbound_text.json"), ACME, wa_id=wa_id, text=text, ts=ts))
    assert answer.status_code == 200, answer.text


def in_thread(read: Callable[[], T]) -> T:
    """Run database reads off Playwright's thread (Django refuses the ORM where an event loop runs)."""

    def run() -> T:
        try:
            return read()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def conversation_id(live_stack: Any, wa_id: str) -> int:
    """The conversation of a customer once the worker has stored their message."""
    from conversations.models import Conversation

    def find() -> int | None:
        with schema_context("acme"):
            return Conversation.objects.filter(contact__wa_id=wa_id).values_list("pk", flat=True).first()

    deadline = time.time() + LIVE / 1000
    while True:
        found = in_thread(find)
        if found is not None:
            return int(found)
        assert time.time() < deadline, f"no conversation for {wa_id}"
        time.sleep(0.2)


def api_statuses(live_stack: Any, wa_ids: list[str]) -> dict[str, list[str]]:
    """In which `?status=` lists of the REST API each customer's conversation is."""
    root = f"http://127.0.0.1:{live_stack.port}/api/v1"
    headers = {"Host": ACME["domain"]}
    token = requests.post(
        f"{root}/auth/token/",
        json={"email": "sam@acme.test", "password": PASSWORD},
        headers=headers,
        timeout=10,
    ).json()["token"]
    headers["Authorization"] = f"Token {token}"
    found: dict[str, list[str]] = {wa_id: [] for wa_id in wa_ids}
    for status in ("open", "pending", "resolved"):
        url: str | None = f"{root}/conversations/?status={status}"
        while url:
            page = requests.get(url, headers=headers, timeout=10).json()
            for row in page["results"]:
                assert row["status"] == status
                if row["contact"]["wa_id"] in found:
                    found[row["contact"]["wa_id"]].append(status)
            url = (
                page["next"].replace(f"http://{ACME['domain']}", f"http://127.0.0.1:{live_stack.port}")
                if page["next"]
                else None
            )
    return found


@pytest.fixture
def second_page(browser_page: Page) -> Iterator[Any]:
    """Another signed-out browser (its own cookies) in the same Chromium, for a colleague or a phone."""
    browser: Browser | None = browser_page.context.browser
    assert browser is not None
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(locale="en-US", **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_page
    assert errors == [], f"JavaScript errors on the page: {errors}"
    for context in contexts:
        context.close()


@pytest.mark.browser
def test_the_status_tabs_follow_the_tickets_live(
    committed_db: None, live_stack: Any, browser_page: Page, second_page: Any
) -> None:
    base_url = live_stack.base_url(ACME["domain"])
    resolved, pending, untouched = wa_ids = [fresh_wa_id() for _ in range(3)]
    for wa_id in wa_ids:
        customer_writes(live_stack, wa_id, f"Halo ({wa_id})")

    # Given alice works the inbox, and sam watches the Pending tab from his own browser
    alice = browser_page
    sign_in_inbox(alice, base_url, "alice@acme.test")
    alice.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    sam = second_page(viewport={"width": 1280, "height": 800})
    sign_in_inbox(sam, base_url, "sam@acme.test")
    sam.evaluate("window.__sameDocument = true")
    tab(sam, "pending")
    for wa_id in wa_ids:
        expect(item(alice, wa_id)).to_be_visible(timeout=LIVE)
        expect(item(sam, wa_id)).to_have_count(0)

    # When alice resolves one conversation with its Resolve button
    item(alice, resolved).click()
    expect(alice.get_by_test_id("thread-number")).to_contain_text(
        resolved
    )  # its own panel, not the last one's
    alice.get_by_test_id("resolve-button").click()
    expect(alice.get_by_test_id("reopen-button")).to_be_visible()
    # and sets another's ticket pending with the status control
    item(alice, pending).click()
    expect(alice.get_by_test_id("thread-number")).to_contain_text(pending)
    expect(alice.get_by_test_id("ticket-status")).to_have_value("open")
    alice.get_by_test_id("ticket-status").select_option("pending")
    expect(item(alice, pending)).to_have_attribute("data-status", "pending")

    # Then sam's Pending tab shows the pending one, live, and not the others
    expect(item(sam, pending)).to_be_visible(timeout=LIVE)
    expect(item(sam, resolved)).to_have_count(0)
    expect(item(sam, untouched)).to_have_count(0)

    # And alice's tabs each list exactly the conversations whose ticket has that status
    expected = {"open": untouched, "pending": pending, "resolved": resolved}
    for status, wanted in expected.items():
        tab(alice, status)
        for wa_id in wa_ids:
            expect(item(alice, wa_id)).to_have_count(1 if wa_id == wanted else 0)
        expect(item(alice, wanted)).to_have_attribute("data-status", status)
    tab(alice, "")
    for wa_id in wa_ids:
        expect(item(alice, wa_id)).to_have_count(1)

    # And the API's ?status= says the same
    assert api_statuses(live_stack, wa_ids) == {
        resolved: ["resolved"],
        pending: ["pending"],
        untouched: ["open"],
    }

    # When the pending customer writes again, their ticket opens: the conversation leaves sam's Pending tab live
    customer_writes(live_stack, pending, "Any news?")
    expect(item(sam, pending)).to_have_count(0, timeout=LIVE)
    tab(sam, "open")
    expect(item(sam, pending)).to_be_visible()
    expect(item(sam, resolved)).to_have_count(0)

    # And nobody's page was reloaded
    assert alice.evaluate("window.__sameDocument") is True
    assert sam.evaluate("window.__sameDocument") is True


def acme_zone() -> ZoneInfo:
    from helpdesk.tenancy.models import Tenant

    return ZoneInfo(in_thread(lambda: Tenant.objects.get(schema_name="acme").timezone_name))


@pytest.mark.browser
def test_times_are_shown_in_the_helpdesks_zone_not_the_browsers(
    committed_db: None, live_stack: Any, browser_page: Page, second_page: Any
) -> None:
    zone = acme_zone()
    wa_id = fresh_wa_id()
    sent = int(time.time()) - 120
    customer_writes(live_stack, wa_id, f"Jam berapa? ({wa_id})", ts=sent)
    pk = conversation_id(live_stack, wa_id)

    # Given a browser in New York (the helpdesk is elsewhere)
    assert str(zone) != "America/New_York"
    page = second_page(viewport={"width": 1280, "height": 800}, timezone_id="America/New_York")
    sign_in_inbox(page, live_stack.base_url(ACME["domain"]), "alice@acme.test")

    # When alice opens the conversation
    page.goto(f"{live_stack.base_url(ACME['domain'])}/inbox/#c={pk}")

    # Then the message's time is the helpdesk's wall clock, and the page says which zone that is
    bubble = page.locator("[data-testid=message][data-direction=in]")
    expect(bubble.locator("time")).to_have_text(datetime.fromtimestamp(sent, zone).strftime("%I:%M %p"))
    expect(page.get_by_test_id("timezone-note")).to_have_text(
        f"Times in {zone.key}, the helpdesk's time zone"
    )


def last_friday(zone: ZoneInfo) -> datetime:
    """16:00 on the most recent Friday before today, in the helpdesk's zone."""
    today = datetime.now(zone).date()
    friday = today - timedelta(days=(today.weekday() - 4) % 7 or 7)
    return datetime(friday.year, friday.month, friday.day, 16, tzinfo=zone)


def duration_short(seconds: float) -> str:
    """As the inbox writes a time left in a badge (minutes rounded up)."""
    minutes = max(1, math.ceil(seconds / 60))
    hours, rest = divmod(minutes, 60)
    return f"{hours}h {rest}m" if hours else f"{rest}m"


@pytest.mark.browser
def test_the_sla_badge_counts_business_time_left_and_shows_the_due_time_on_hover(
    committed_db: None, live_stack: Any, browser_page: Page, second_page: Any
) -> None:
    from tickets import actions as ticket_actions
    from tickets.models import Ticket

    # Given a customer who wrote on Friday at 16:00, an hour before the weekend, and is still waiting
    zone = acme_zone()
    wrote = last_friday(zone)
    wa_id = fresh_wa_id()
    customer_writes(live_stack, wa_id, f"Sebelum akhir pekan ({wa_id})", ts=int(wrote.timestamp()))
    pk = conversation_id(live_stack, wa_id)

    def rules_and_due() -> tuple[BusinessCalendar, datetime | None]:
        with schema_context("acme"):
            ticket_actions.forget_support_rules()
            return ticket_actions.support_rules().calendar, Ticket.objects.get(
                conversation_id=pk
            ).response_due_at

    calendar, due = in_thread(rules_and_due)
    assert due is not None

    # When alice looks on Saturday at 10:00 (her browser's clock), in the middle of the weekend
    saturday = wrote + timedelta(hours=18)
    business_left = calendar.seconds_between(saturday, due)
    calendar_left = (due - saturday).total_seconds()
    assert calendar_left - business_left > 24 * 3600  # the weekend is not business time
    page = second_page(viewport={"width": 1280, "height": 800}, timezone_id="America/New_York")
    page.clock.set_fixed_time(saturday.astimezone(UTC))
    sign_in_inbox(page, live_stack.base_url(ACME["domain"]), "alice@acme.test")
    page.goto(f"{live_stack.base_url(ACME['domain'])}/inbox/#c={pk}")

    # Then the badge shows the business time left (the clock paused), not the calendar time
    badge = item(page, wa_id).get_by_test_id("sla-clock")
    expect(badge).to_have_text(f"SLA {duration_short(business_left)}")
    expect(badge).to_have_attribute("data-paused", "true")
    # and its title gives the due time in the helpdesk's zone
    title = badge.get_attribute("title") or ""
    assert due.astimezone(zone).strftime("%I:%M %p") in title, title
    assert f"{due.astimezone(zone).day}," in title, title
    assert "business time left" in title, title
    # and the ticket bar says the same
    expect(page.get_by_test_id("ticket-response-due")).to_contain_text(
        f"{duration_short(business_left).replace('h', ' h').replace('m', ' m')} of business time left"
    )


def overflowing(page: Page) -> list[str]:
    """Visible elements that stick out of the viewport on the right (cut off or scrolled away)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll("body *")].filter((node) => {
                const box = node.getBoundingClientRect();
                return box.width > 0 && box.height > 0 && box.right > window.innerWidth + 1;
            }).map((node) => node.tagName + "." + node.className + " " + Math.round(node.getBoundingClientRect().right))"""
        )
    )


@pytest.mark.browser
def test_the_inbox_works_390_px_wide(
    committed_db: None, live_stack: Any, browser_page: Page, second_page: Any
) -> None:
    wa_id = fresh_wa_id()
    text = f"Pesanan saya: https://toko.example/pesanan/{'x' * 60} tolong dicek ({wa_id})"
    customer_writes(live_stack, wa_id, text)

    # Given alice on a phone, 390 px wide
    phone = second_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=3)
    sign_in_inbox(phone, live_stack.base_url(ACME["domain"]), "alice@acme.test")

    # Then the list fits the screen: nothing scrolls sideways or is cut off
    conversation = item(phone, wa_id)
    expect(conversation).to_be_visible(timeout=LIVE)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert overflowing(phone) == []

    # When she opens the conversation
    conversation.click()

    # Then the thread takes the screen, with the message and the reply box in view, and still fits
    expect(phone.get_by_test_id("thread")).to_be_visible()
    expect(phone.get_by_test_id("conversation-list")).to_be_hidden()
    expect(
        phone.locator("[data-testid=message][data-direction=in]").get_by_test_id("message-text")
    ).to_have_text(text)
    box = phone.get_by_test_id("reply-box")
    expect(box).to_be_visible()
    expect(box).to_be_in_viewport()
    expect(phone.get_by_test_id("reply-send")).to_be_in_viewport()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert overflowing(phone) == []

    # And she can answer from there
    box.fill("Baik, kami cek sekarang")
    phone.get_by_test_id("reply-send").click()
    expect(phone.locator("[data-testid=message][data-direction=out]")).to_have_count(1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # And the back button returns to the list
    phone.get_by_test_id("thread-back").click()
    expect(phone.get_by_test_id("conversation-list")).to_be_visible()
    expect(conversation).to_be_visible()
