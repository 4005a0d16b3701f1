"""Broadcasts in the browser against the live stack (server, Celery worker, Redis pace, fake Graph API), in headless
Chromium: a supervisor imports contacts from CSV, creates a broadcast to a label, reads the preview (who is skipped
and why), starts it, watches its progress move, pauses it (sending stops), resumes it, and it completes with every
consenting recipient sent exactly once."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from conversations.models import MessageTemplate
from tests.conftest import ACME
from tests.e2e.conftest import Api, sign_in

LIVE = 20_000  # ms


@pytest.mark.browser
def test_a_supervisor_imports_previews_starts_pauses_and_watches_a_broadcast(
    committed_db: None, live_stack: Any, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    base_url = live_stack.base_url(ACME["domain"])
    ada = Api(live_stack, "ada@acme.test")
    tag = secrets.token_hex(3)
    number = next(n for n in ada.get("/numbers/")["results"] if n["phone_number_id"] == ACME["pnid"])
    approved_template(f"kabar_{tag}")
    people = ["62812" + str(secrets.randbelow(10**8)).zfill(8) for _ in range(12)]
    csv_file = tmp_path / "kontak.csv"
    csv_file.write_text(
        "phone,name,labels,opt_in_source\n"
        + "".join(f"0{w[2:]},Pelanggan {i},siap-{tag},kasir\n" for i, w in enumerate(people))
        + f"12345,Salah,siap-{tag},kasir\n"
    )
    assert (
        ada.send("PATCH", f"/numbers/{number['id']}/", {"send_rate": 2}).status_code == 200
    )  # slow: watchable
    try:
        # Given sam on the broadcasts page, importing contacts
        sign_in(page, base_url, "sam@acme.test", "/broadcasts/")
        expect(page.get_by_test_id("broadcasts-page")).to_have_attribute("aria-busy", "false", timeout=LIVE)
        page.get_by_test_id("import-file").set_input_files(str(csv_file))
        page.get_by_test_id("import-submit").click()
        expect(page.get_by_test_id("import-summary")).to_contain_text("12", timeout=LIVE)
        expect(page.get_by_test_id("import-rejected")).to_have_attribute("data-reason", "invalid_number")
        page.reload()  # the new label is offered

        # When he creates a broadcast to the label, plus a number that is not valid
        page.get_by_test_id("broadcast-new").click()
        page.get_by_test_id("broadcast-name").fill(f"Siap diambil {tag}")
        page.get_by_test_id("broadcast-number").select_option(str(number["id"]))
        page.get_by_test_id("broadcast-template").select_option(label=f"kabar_{tag} (id, utility)")
        expect(page.get_by_test_id("broadcast-variable")).to_have_value("{{contact.name}}")
        page.locator("label", has_text=f"siap-{tag}").get_by_test_id("broadcast-label").check()
        page.get_by_test_id("broadcast-wa-ids").fill("12345")
        page.get_by_test_id("broadcast-create").click()

        # Then the preview says who receives it and who is skipped, and why
        expect(page.get_by_test_id("preview-recipients")).to_have_attribute("data-count", "12", timeout=LIVE)
        skipped = page.locator("[data-testid=preview-skipped][data-reason=invalid_number]")
        expect(skipped).to_have_attribute("data-count", "1")

        # When he starts it, its progress moves; when he pauses it, sending stops
        page.get_by_test_id("broadcast-start").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_attribute(
            "data-status", "running", timeout=LIVE
        )
        progress = page.locator("[data-testid=broadcast-detail] [data-testid=broadcast-progress]")
        expect(progress).not_to_have_attribute("data-done", "0", timeout=LIVE)
        page.get_by_test_id("broadcast-pause").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_attribute(
            "data-status", "paused", timeout=LIVE
        )
        time.sleep(1.5)  # a send under way when the pause came may still land
        sent_when_paused = len(sends_to(live_stack, people))
        time.sleep(2.5)
        assert len(sends_to(live_stack, people)) == sent_when_paused < len(people)

        # When he resumes it, it completes; everyone received it exactly once, the invalid number nothing
        page.get_by_test_id("broadcast-resume").click()
        expect(page.get_by_test_id("broadcast-status")).to_have_attribute(
            "data-status", "completed", timeout=30_000
        )
        expect(progress).to_have_attribute("data-done", "12")
        assert Counter(sends_to(live_stack, people)) == Counter(people)
        expect(page.locator("[data-testid=broadcast-item]").first).to_have_attribute(
            "data-status", "completed"
        )
    finally:
        assert ada.send("PATCH", f"/numbers/{number['id']}/", {"send_rate": 80}).status_code == 200


def approved_template(name: str) -> None:
    """An approved utility template of acme (Meta's approval is not what this test is about). On a thread of its
    own: the browser's event loop runs on this one, where Django refuses the ORM."""

    def work() -> None:
        from django.db import connection

        with schema_context("acme"):
            MessageTemplate.objects.create(
                waba_id=ACME["waba"],
                meta_id=str(secrets.randbelow(10**12)),
                name=name,
                language="id",
                category="UTILITY",
                components=[{"type": "BODY", "text": "Halo {{1}}, pesanan anda sudah siap diambil."}],
                status="approved",
            )
        connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def sends_to(live_stack: Any, people: list[str]) -> list[str]:
    """The recipients of the template sends the fake Graph API received, among `people`."""
    wanted = set(people)
    return [
        str(r["body"].get("to", "")).lstrip("+")
        for r in live_stack.graph.sends()
        if r["body"].get("type") == "template" and str(r["body"].get("to", "")).lstrip("+") in wanted
    ]
