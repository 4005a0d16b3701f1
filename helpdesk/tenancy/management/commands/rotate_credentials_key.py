from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError

from helpdesk.crypto import encryption_keys
from helpdesk.tenancy.actions import do_rotate_credentials_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every WhatsApp number's access token and app secret with the newest key of "
        "FIELD_ENCRYPTION_KEYS (the first). Afterwards the older keys can be removed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = do_rotate_credentials_key()
        except InvalidToken:
            raise CommandError(
                "A credential could not be decrypted with any configured key: keep the old key in "
                "FIELD_ENCRYPTION_KEYS (after the new one) until the rotation has run."
            ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted the credentials of {count} number(s) with the newest of "
                f"{len(encryption_keys())} key(s)."
            )
        )
