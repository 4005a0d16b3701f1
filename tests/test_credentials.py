"""Credentials at rest: encryption under a list of keys, newest first, and `rotate_credentials_key`."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import InvalidToken
from django.core.management import CommandError, call_command

from helpdesk import crypto
from helpdesk.tenancy.models import WhatsAppNumber
from tests.conftest import ACME, GLOBEX, public_client

NEW_KEY = "new-field-key-" + "N" * 40


def stored() -> dict[str, tuple[str, str]]:
    return {
        n.phone_number_id: (n.access_token_encrypted, n.app_secret_encrypted)
        for n in WhatsAppNumber.objects.all()
    }


def test_rotation_reencrypts_with_the_newest_key_and_the_old_key_decrypts_until_then(db, settings):
    old_key = settings.SECRET_KEY  # nothing configured: the key is derived from SECRET_KEY
    before = stored()

    # given a new key put first, the old one kept after it
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, old_key]
    acme = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    assert (acme.access_token, acme.app_secret) == (
        ACME["token"],
        ACME["secret"],
    )  # old ciphertexts still read

    # when the credentials are rotated
    out = StringIO()
    call_command("rotate_credentials_key", stdout=out)

    # then every number was rewritten, and reads the same with the new key alone
    after = stored()
    assert f"Re-encrypted the credentials of {len(before)} number(s)" in out.getvalue()
    assert after.keys() == before.keys()
    assert all(after[pnid][0] != before[pnid][0] and after[pnid][1] != before[pnid][1] for pnid in before)
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]
    for spec in (ACME, GLOBEX):
        number = WhatsAppNumber.objects.get(phone_number_id=spec["pnid"])
        assert (number.access_token, number.app_secret) == (spec["token"], spec["secret"])

    # and the old key alone can no longer read them
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    with pytest.raises(InvalidToken):
        _ = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"]).access_token


def test_rotation_without_the_old_key_is_refused_and_changes_nothing(db, settings):
    before = stored()
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]  # the old key dropped too early

    with pytest.raises(CommandError, match="could not be decrypted with any configured key"):
        call_command("rotate_credentials_key", stdout=StringIO())

    assert stored() == before


def test_a_single_field_encryption_key_still_works(db, settings):
    settings.FIELD_ENCRYPTION_KEY = "single-field-key-" + "S" * 40
    number = WhatsAppNumber.objects.get(phone_number_id=ACME["pnid"])
    number.access_token = "ROTATED-TOKEN"
    number.save()

    assert WhatsAppNumber.objects.get(pk=number.pk).access_token == "ROTATED-TOKEN"
    assert crypto.encryption_keys() == [settings.FIELD_ENCRYPTION_KEY]
    settings.FIELD_ENCRYPTION_KEY = ""  # back to the SECRET_KEY-derived key: this ciphertext is not its own
    with pytest.raises(InvalidToken):
        _ = WhatsAppNumber.objects.get(pk=number.pk).access_token


def test_the_webhook_handshake_still_finds_a_verify_token_after_secret_key_rotation(db, settings):
    old_key = settings.SECRET_KEY
    query = f"/webhooks/whatsapp/?hub.mode=subscribe&hub.verify_token={ACME['verify']}&hub.challenge=42"
    settings.SECRET_KEY = "rotated-secret-key-" + "R" * 40

    settings.SECRET_KEY_FALLBACKS = []
    assert public_client().get(query).status_code == 403
    settings.SECRET_KEY_FALLBACKS = [old_key]
    response = public_client().get(query)
    assert (response.status_code, response.content) == (200, b"42")
