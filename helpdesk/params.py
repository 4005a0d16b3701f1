"""Parsing ids from query parameters and other untrusted text, the one way.

`"²".isdigit()` is True in Python but `int("²")` raises, and `int("99999999999999999999")` succeeds but is
beyond PostgreSQL's bigint: neither may reach a query. An id is ASCII digits only, at most MAX_ID.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.exceptions import ValidationError

MAX_ID = 2**63 - 1  # PostgreSQL bigint (Django's BigAutoField)
_MAX_DIGITS = len(str(MAX_ID))
_ASCII_DIGITS = frozenset("0123456789")


def parse_id(raw: str) -> int | None:
    """`raw` as an id (a whole number from 0 to MAX_ID written in ASCII digits), or None if it is not one."""
    if not raw or len(raw) > _MAX_DIGITS or not _ASCII_DIGITS.issuperset(raw):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def is_id(value: object) -> bool:
    """A JSON value that is an id: an integer (not a boolean) from 0 to MAX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def id_param(params: Mapping[str, str], name: str, what: str = "An id") -> int | None:
    """The id in query parameter `name`; None when absent or empty; a 400 (field `name`) when not an id."""
    raw = params.get(name)
    if not raw:
        return None
    value = parse_id(raw)
    if value is None:
        raise ValidationError({name: f"{what} (a whole number)."})
    return value


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def page_size_param(params: Mapping[str, str], name: str = "page_size") -> int:
    """The page size asked for in query parameter `name`: DEFAULT_PAGE_SIZE when absent or empty, at most
    MAX_PAGE_SIZE (a larger one is cut to it, as DRF's `max_page_size` does); a 400 (field `name`) when it is
    not a whole number of at least 1."""
    raw = params.get(name)
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not _ASCII_DIGITS.issuperset(raw) or not raw.strip("0"):
        raise ValidationError(
            {name: f"A whole number from 1 to {MAX_PAGE_SIZE} (larger ones give {MAX_PAGE_SIZE})."}
        )
    raw = raw.lstrip("0")
    return MAX_PAGE_SIZE if len(raw) > len(str(MAX_PAGE_SIZE)) else min(int(raw), MAX_PAGE_SIZE)


PAGE_SIZE_SCHEMA: dict[str, object] = {
    "name": "page_size",
    "required": False,
    "in": "query",
    "description": f"Results per page: {DEFAULT_PAGE_SIZE} unless given, at most {MAX_PAGE_SIZE} (a larger "
    f"value gives {MAX_PAGE_SIZE}). `next` and `previous` keep it.",
    "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_PAGE_SIZE},
}
