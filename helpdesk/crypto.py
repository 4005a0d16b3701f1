"""Encryption at rest for access tokens and app secrets, and keyed digests for values looked up by secret.

Credentials are Fernet tokens under a list of keys, newest first (`FIELD_ENCRYPTION_KEYS`; else
`FIELD_ENCRYPTION_KEY`; else `SECRET_KEY` and `SECRET_KEY_FALLBACKS`): the newest encrypts, every key decrypts,
so a key can be rotated without downtime: put the new key first, run `manage.py rotate_credentials_key`
(re-encrypts every credential with it), then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def encryption_keys() -> list[str]:
    """The configured key strings, newest first."""
    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    if not keys and settings.FIELD_ENCRYPTION_KEY:
        keys = [settings.FIELD_ENCRYPTION_KEY]
    if not keys:
        keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return keys


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    hashlib.sha256(("helpdesk.field-encryption:" + key).encode()).digest()
                )
            )
            for key in keys
        ]
    )


def _fernet() -> MultiFernet:
    return _multi_fernet(tuple(encryption_keys()))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    return _fernet().decrypt(ciphertext.encode()).decode()


def reencrypt(ciphertext: str) -> str:
    """The same plaintext under the newest key (raises InvalidToken if no configured key decrypts it)."""
    return _fernet().rotate(ciphertext.encode()).decode()


def lookup_digest(value: str) -> str:
    """A keyed digest to find a row by a secret value (the webhook verify token) without storing it."""
    return _digest(settings.SECRET_KEY, value)


def lookup_digests(value: str) -> list[str]:
    """The digests of `value` under SECRET_KEY and its fallbacks: a row stored before a rotation still matches."""
    return [_digest(key, value) for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)]


def _digest(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def masked(secret: str) -> str:
    """What a UI may show of a secret: never more than its last four characters."""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"
