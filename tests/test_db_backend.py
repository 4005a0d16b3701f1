"""The database backend (helpdesk.db): bulk inserts as multi-row VALUES, many rows updated in one statement."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from conversations.models import Contact, InboxEvent
from helpdesk.db.rows import update_rows
from helpdesk.tenancy.models import WhatsAppNumber
from tests.conftest import ACME, fresh_wa_id

TRICKY = 'it\'s "quoted",\n\\ and {braces}'  # what quoting must survive


def test_a_bulk_insert_is_one_statement_of_values_without_arrays(db):
    with schema_context("acme"), CaptureQueriesContext(connection) as statements:
        created = InboxEvent.objects.bulk_create(
            [InboxEvent(type="message.created", payload={"n": n, "text": TRICKY}) for n in range(3)]
        )
    inserts = [q["sql"] for q in statements.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert "UNNEST" not in inserts[0].upper()
    assert "VALUES" in inserts[0]
    with schema_context("acme"):
        stored = InboxEvent.objects.filter(pk__in=[event.pk for event in created]).order_by("pk")
        assert [event.payload["n"] for event in stored] == [0, 1, 2]
        assert stored[0].payload["text"] == TRICKY


def test_update_rows_writes_each_row_its_own_values_in_one_statement(db):
    number = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    with schema_context("acme"):
        contacts = [
            Contact.objects.create(number_id=number.pk, wa_id=fresh_wa_id(), name=f"c{n}") for n in range(3)
        ]
        for n, contact in enumerate(contacts):
            contact.name, contact.username = f"renamed {n}", "" if n == 1 else f"user{n}"
        with CaptureQueriesContext(connection) as statements:
            update_rows(Contact, contacts, ["name", "username"])
        assert len(statements.captured_queries) == 1
        stored = Contact.objects.filter(pk__in=[contact.pk for contact in contacts]).order_by("pk")
        assert [(contact.name, contact.username) for contact in stored] == [
            ("renamed 0", "user0"),
            ("renamed 1", ""),
            ("renamed 2", "user2"),
        ]
