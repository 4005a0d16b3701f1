"""The inbox's "Simulate customer message" control: it refuses what is not a WhatsApp number, in the API's error
shape, and stores nothing."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from conversations.models import Contact
from helpdesk.tenancy.actions import do_add_number
from tests.conftest import ACME, tenant_client


@pytest.mark.parametrize(
    "wa_id",
    ["²³", "62812abc", "6" * 16, "٦٢٨١٢"],
    ids=["superscript", "letters", "too-long", "arabic-digits"],
)
def test_a_simulated_customer_number_must_be_ascii_digits(db, acme, alice, wa_id):
    do_add_number(
        acme,
        phone_number_id="990000000000001",
        waba_id="990000000000002",
        display_number="15550009999",
        access_token="t",
        app_secret="s",
        verify_token="v-sim",
        simulator=True,
    )
    client = tenant_client(ACME)
    client.force_login(alice)
    with schema_context("acme"):
        before = Contact.objects.count()

    response = client.post("/inbox/simulate/", {"text": "halo", "wa_id": wa_id})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The customer's number must be digits only.",
        "code": "invalid_number",
    }
    with schema_context("acme"):
        assert Contact.objects.count() == before
