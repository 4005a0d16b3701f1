"""What the inbox page gives its script: the helpdesk's time zone (every time is shown in it, and the page says
so) and the business-hours schedule around now, from which the script counts the business time left to an SLA
deadline (a number in a frame would go stale)."""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from conversations.web import SCHEDULE_DAYS_AFTER, SCHEDULE_DAYS_BEFORE, business_hours
from tests.conftest import ACME
from tickets import actions as ticket_actions
from tickets.business_time import ALWAYS_OPEN, BusinessCalendar
from tickets.support_settings import check_update_support_settings

JAKARTA = ZoneInfo("Asia/Jakarta")
NINE_TO_FIVE = {day: [(time(9), time(17))] for day in range(5)}


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def wib(*args: int) -> datetime:
    return datetime(*args, tzinfo=JAKARTA)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def fresh_support_rules() -> Any:
    ticket_actions._rules_cache.clear()
    yield
    ticket_actions._rules_cache.clear()


def test_the_schedule_lists_the_business_intervals_around_now_in_order():
    # given Monday to Friday 09:00-17:00 in Jakarta and a holiday on Wednesday 18 November 2026
    calendar = BusinessCalendar("Asia/Jakarta", NINE_TO_FIVE, frozenset({date(2026, 11, 18)}))

    # when the schedule is asked for on Tuesday 17 November, one day back and six ahead
    schedule = calendar.schedule(wib(2026, 11, 17, 20), days_before=1, days_after=6)

    # then it holds Monday to Friday's hours but the holiday's, and nothing of the weekend
    assert schedule == [
        (wib(2026, 11, d, 9).astimezone(UTC), wib(2026, 11, d, 17).astimezone(UTC))
        for d in (16, 17, 19, 20, 23)
    ]


def test_touching_intervals_are_joined():
    calendar = BusinessCalendar("Asia/Jakarta", ALWAYS_OPEN)

    schedule = calendar.schedule(wib(2026, 11, 17, 20), days_before=1, days_after=2)

    assert schedule == [(wib(2026, 11, 16).astimezone(UTC), wib(2026, 11, 20).astimezone(UTC))]


def test_the_schedule_follows_the_wall_clock_across_a_dst_change():
    # New York leaves daylight saving time on Sunday 1 November 2026: 09:00 is 13:00 UTC before, 14:00 after
    calendar = BusinessCalendar("America/New_York", NINE_TO_FIVE)

    schedule = calendar.schedule(datetime(2026, 10, 30, 15, tzinfo=UTC), days_before=0, days_after=3)

    assert [(opens.hour, closes.hour) for opens, closes in schedule] == [(13, 21), (14, 22)]


def test_business_hours_are_milliseconds_for_the_page():
    calendar = BusinessCalendar("Asia/Jakarta", NINE_TO_FIVE)
    now = wib(2026, 11, 17, 20)

    hours = business_hours(calendar, now)

    assert len(hours) == len(calendar.schedule(now, SCHEDULE_DAYS_BEFORE, SCHEDULE_DAYS_AFTER))
    assert [ms(wib(2026, 11, 17, 9)), ms(wib(2026, 11, 17, 17))] in hours
    assert hours[0][0] >= ms(now - timedelta(days=SCHEDULE_DAYS_BEFORE + 1))
    assert hours[-1][1] <= ms(now + timedelta(days=SCHEDULE_DAYS_AFTER + 1))
    assert hours == sorted(hours)


def page_config(user: Any) -> tuple[dict[str, Any], str]:
    client = Client(HTTP_HOST=ACME["domain"])
    client.force_login(user)
    response = client.get("/inbox/")
    assert response.status_code == 200
    page = response.content.decode()
    start = page.index('data-config="') + len('data-config="')
    return json.loads(html.unescape(page[start : page.index('"', start)])), page


def test_the_inbox_page_gives_the_time_zone_and_the_business_hours_and_says_so(db, alice):
    # given acme works in New York, Monday to Friday 09:00-17:00
    with schema_context("acme"):
        check_update_support_settings(
            {
                "timezone": "America/New_York",
                "business_hours": [{"weekday": day, "opens": "09:00", "closes": "17:00"} for day in range(5)],
            }
        )
        expected = business_hours(ticket_actions.support_rules().calendar)

    # when alice opens the inbox
    config, page = page_config(alice)

    # then the script gets the zone and the schedule, the page states the zone, and there is no inline script
    assert config["timezone"] == "America/New_York"
    assert config["business_hours"] == expected
    assert all(
        datetime.fromtimestamp(opens / 1000, ZoneInfo("America/New_York")).time() == time(9)
        for opens, _ in config["business_hours"]
    )
    assert "Times in America/New_York, the helpdesk's time zone" in page
    assert "<script>" not in page
