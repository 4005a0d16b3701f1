"""The tenant's guardrails for business-initiated messages as one document: the opt-out and opt-in keywords,
the broadcast frequency cap, and when a broadcast pauses itself for failures. On by default; admins change
them (`check_update_guardrails`), everyone in the helpdesk may read them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from conversations import consent
from conversations.actions import ActionError
from conversations.models import Guardrails

MAX_KEYWORDS = 20
MAX_KEYWORD = 40
NUMBERS = {  # name: (lowest, highest)
    "frequency_cap_days": (0, 365),
    "failure_pause_percent": (1, 100),
    "failure_pause_after": (1, 100_000),
}


class GuardrailsError(ActionError):
    code = "invalid"


def guardrails_data() -> dict[str, Any]:
    rules = Guardrails.current()
    return {
        "opt_out_keywords": list(rules.opt_out_keywords),
        "opt_in_keywords": list(rules.opt_in_keywords),
        "frequency_cap_days": rules.frequency_cap_days,
        "frequency_cap_utility": rules.frequency_cap_utility,
        "failure_pause_percent": rules.failure_pause_percent,
        "failure_pause_after": rules.failure_pause_after,
    }


def _keywords(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not value or len(value) > MAX_KEYWORDS:
        raise GuardrailsError(
            _("%(name)s: a list of 1 to %(n)s keywords.") % {"name": name, "n": MAX_KEYWORDS}
        )
    words: list[str] = []
    for item in value:
        word = " ".join(item.split()) if isinstance(item, str) else ""
        if not word or len(word) > MAX_KEYWORD:
            raise GuardrailsError(
                _("%(name)s: each keyword is 1 to %(n)s characters of text.")
                % {"name": name, "n": MAX_KEYWORD}
            )
        if word.casefold() not in {known.casefold() for known in words}:
            words.append(word)
    return words


def check_update_guardrails(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate every given field first, then apply them together; unknown fields are refused."""
    unknown = set(changes) - {*guardrails_data()}
    if unknown:
        raise GuardrailsError(_("Unknown guardrails: %(names)s.") % {"names": ", ".join(sorted(unknown))})
    values: dict[str, Any] = {}
    for name in ("opt_out_keywords", "opt_in_keywords"):
        if name in changes:
            values[name] = _keywords(changes[name], name)
    for name, (low, high) in NUMBERS.items():
        if name in changes:
            value = changes[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise GuardrailsError(
                    _("%(name)s: a whole number from %(low)s to %(high)s.")
                    % {"name": name, "low": low, "high": high}
                )
            values[name] = value
    if "frequency_cap_utility" in changes:
        if not isinstance(changes["frequency_cap_utility"], bool):
            raise GuardrailsError(_("frequency_cap_utility: true or false."))
        values["frequency_cap_utility"] = changes["frequency_cap_utility"]
    with transaction.atomic():
        current = Guardrails.objects.select_for_update().get(pk=Guardrails.current().pk)
        stop = {word.casefold() for word in values.get("opt_out_keywords", current.opt_out_keywords)}
        start = {word.casefold() for word in values.get("opt_in_keywords", current.opt_in_keywords)}
        if stop & start:
            raise GuardrailsError(
                _("A keyword cannot both stop and start messages: %(words)s.")
                % {"words": ", ".join(sorted(stop & start))}
            )
        for name, value in values.items():
            setattr(current, name, value)
        current.save()
        transaction.on_commit(consent.forget_keywords)
    consent.forget_keywords()
    return guardrails_data()
