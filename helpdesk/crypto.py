"""Encryption at rest for access tokens and app secrets (Fernet, key from FIELD_ENCRYPTION_KEY or SECRET_KEY)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet
from django.conf import settings


@cache
def _fernet() -> Fernet:
    secret = settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY
    key = hashlib.sha256(("helpdesk.field-encryption:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    return _fernet().decrypt(ciphertext.encode()).decode()


def lookup_digest(value: str) -> str:
    """A keyed digest to find a row by a secret value (the webhook verify token) without storing it."""
    return hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def masked(secret: str) -> str:
    """What a UI may show of a secret: never more than its last four characters."""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"
