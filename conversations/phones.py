"""Phone numbers as people write them (`0812 3456 7890`, `+62 812-3456-7890`, `6281234567890`) to WhatsApp ids:
the country code and the number, digits only. Parsed and validated with `phonenumbers` (Google's libphonenumber
metadata), so a number that cannot exist is refused before anything is sent to it."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "ID"  # our first users are Indonesian: a leading 0 is an Indonesian national number
MAX_LENGTH = 40


def wa_id_of(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The WhatsApp id of a written phone number, or None when it is not a valid number. `+` or no leading 0:
    international (the country code first); a leading 0: a national number of `region`."""
    text = raw.strip()
    if not text or len(text) > MAX_LENGTH:
        return None
    candidates = [text] if text.startswith(("+", "0")) else ["+" + text, text]
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    return None
