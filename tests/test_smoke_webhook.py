from django_tenants.utils import schema_context

from conversations.models import Message
from tests.conftest import fresh_wa_id, payload, post_webhook, retarget


def test_signed_inbound_text_is_stored_in_its_tenant(db, django_capture_on_commit_callbacks):
    wa_id = fresh_wa_id()
    p = retarget(payload("inbound_text.json"), wa_id=wa_id, text="Halo")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(p)
    assert response.status_code == 200
    with schema_context("acme"):
        stored = Message.objects.get(conversation__contact__wa_id=wa_id)
    assert stored.text == "Halo"
    with schema_context("globex"):
        assert not Message.objects.filter(conversation__contact__wa_id=wa_id).exists()
