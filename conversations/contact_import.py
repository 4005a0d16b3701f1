"""Contacts to and from CSV: import with a per-row report (numbers parsed with `phonenumbers`, a re-import
updates rather than duplicates, an import never overrides an opt-out), and export.

Columns: `phone` (required), `name`, `labels` (names separated by `;`, created when new), `opt_in_source` (not
empty: the contact opted in at the import's time, from that source), and any other column becomes an attribute.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations import phones
from conversations.actions import ActionError
from conversations.events import record_event
from conversations.labels import MAX_LABEL_NAME, MAX_LABELS_PER_ITEM
from conversations.models import Contact, Label
from helpdesk.tenancy.models import WhatsAppNumber

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_NAME = 200
MAX_ATTRIBUTE = 500
KNOWN = ("phone", "name", "labels", "opt_in_source")
NEW_LABEL_COLOR = "#667085"


class ImportRefused(ActionError):
    """The file as a whole cannot be read (nothing was changed)."""

    code = "invalid_file"


@dataclass
class Rejected:
    line: int
    value: str
    reason: str  # invalid_number, duplicate, too_long
    detail: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    opted_in: int = 0
    kept_opted_out: int = 0  # rows that asked for an opt-in for a contact who had opted out
    labels_created: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "opted_in": self.opted_in,
            "kept_opted_out": self.kept_opted_out,
            "labels_created": self.labels_created,
            "rejected": [vars(row) for row in self.rejected],
        }


@dataclass
class _Row:
    line: int
    wa_id: str
    name: str
    labels: list[str]
    opt_in_source: str
    attributes: dict[str, str]


def _rows(data: bytes) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and (line number, row) of a CSV file in UTF-8 (with or without a BOM) or Latin-1 (Excel),
    separated by commas or semicolons."""
    if len(data) > MAX_BYTES:
        raise ImportRefused(
            _("A contacts file holds at most %(mb)s MB.") % {"mb": MAX_BYTES // (1024 * 1024)}
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\x00" in text:
        raise ImportRefused(_("This is not a CSV file."))
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    if "phone" not in [name.casefold() for name in header]:
        raise ImportRefused(_("The first line must name the columns, one of them `phone`."))
    reader.fieldnames = [name.casefold() if name.casefold() in KNOWN else name for name in header]

    def numbered() -> Iterator[tuple[int, dict[str, str]]]:
        for index, row in enumerate(reader):
            if index >= MAX_ROWS:
                raise ImportRefused(_("A contacts file holds at most %(rows)s rows.") % {"rows": MAX_ROWS})
            yield reader.line_num, {key: (value or "").strip() for key, value in row.items() if key}

    return reader.fieldnames, numbered()


def _parse(rows: Iterable[tuple[int, dict[str, str]]], region: str, report: ImportReport) -> list[_Row]:
    seen: dict[str, int] = {}
    parsed: list[_Row] = []
    for line, row in rows:
        raw = row.get("phone", "")
        if not any(row.values()):
            continue  # an empty line
        wa_id = phones.wa_id_of(raw, region)
        if wa_id is None:
            report.rejected.append(
                Rejected(
                    line, raw, "invalid_number", _("Not a valid phone number: %(value)s") % {"value": raw}
                )
            )
            continue
        if wa_id in seen:
            report.rejected.append(
                Rejected(
                    line,
                    raw,
                    "duplicate",
                    _("The same number as line %(line)s (+%(wa_id)s).")
                    % {"line": seen[wa_id], "wa_id": wa_id},
                )
            )
            continue
        attributes = {key: value for key, value in row.items() if key not in KNOWN and value}
        labels = [" ".join(name.split()) for name in row.get("labels", "").split(";") if name.strip()]
        too_long = (
            len(row.get("name", "")) > MAX_NAME
            or any(len(value) > MAX_ATTRIBUTE or len(key) > 64 for key, value in attributes.items())
            or any(len(name) > MAX_LABEL_NAME for name in labels)
            or len(labels) > MAX_LABELS_PER_ITEM
            or len(row.get("opt_in_source", "")) > 64
        )
        if too_long:
            report.rejected.append(
                Rejected(line, raw, "too_long", _("A value of this row is longer than a contact can keep."))
            )
            continue
        seen[wa_id] = line
        parsed.append(
            _Row(line, wa_id, row.get("name", ""), labels, row.get("opt_in_source", ""), attributes)
        )
    return parsed


def do_import_contacts(
    number: WhatsAppNumber, data: bytes, filename: str = "", region: str = phones.DEFAULT_REGION
) -> ImportReport:
    """Create or update the file's contacts of `number`, all in one transaction; the report says what happened
    to each row that was not taken."""
    report = ImportReport()
    _, rows = _rows(data)
    parsed = _parse(rows, region, report)
    now = timezone.now()
    with transaction.atomic():
        labels = _labels_by_name({name for row in parsed for name in row.labels}, report)
        existing = {
            contact.wa_id: contact
            for contact in Contact.objects.select_for_update().filter(
                number=number, wa_id__in=[row.wa_id for row in parsed]
            )
        }
        new: list[Contact] = []
        changed: list[Contact] = []
        for row in parsed:
            contact = existing.get(row.wa_id)
            if contact is None:
                contact = Contact(number=number, wa_id=row.wa_id, created_at=now)
                new.append(contact)
            else:
                changed.append(contact)
            _apply(contact, row, labels, now, filename, report)
        Contact.objects.bulk_create(new, batch_size=1000)
        Contact.objects.bulk_update(
            changed,
            ["name", "labels", "attributes", "opted_in_at", "opt_in_source", "opt_in_proof"],
            batch_size=1000,
        )
        report.created, report.updated = len(new), len(changed)
        record_event("contacts.imported", report={"created": report.created, "updated": report.updated})
    return report


def _labels_by_name(names: set[str], report: ImportReport) -> dict[str, int]:
    """Label ids by name (any case), creating the labels the file names that do not exist yet."""
    known = {label.name.casefold(): label.pk for label in Label.objects.all()}
    for name in sorted(names):
        if name.casefold() not in known:
            created = Label.objects.create(name=name, color=NEW_LABEL_COLOR)
            known[name.casefold()] = created.pk
            report.labels_created.append(name)
    return known


def _apply(
    contact: Contact, row: _Row, labels: dict[str, int], now: datetime, filename: str, report: ImportReport
) -> None:
    if row.name:
        contact.name = row.name
    wanted = [labels[name.casefold()] for name in row.labels]
    contact.labels = list(dict.fromkeys([*(contact.labels or []), *wanted]))
    contact.attributes = {**(contact.attributes or {}), **row.attributes}
    if row.opt_in_source:
        if contact.opted_out_at is not None:
            report.kept_opted_out += 1  # an import never overrides an opt-out: only the customer undoes it
        else:
            contact.opted_in_at, contact.opt_in_source = now, row.opt_in_source
            contact.opt_in_proof = _("Imported from %(file)s, line %(line)s.") % {
                "file": filename or "CSV",
                "line": row.line,
            }
            report.opted_in += 1


EXPORT_COLUMNS = (
    "phone",
    "name",
    "labels",
    "opt_in_source",
    "opted_in_at",
    "opted_out_at",
    "opt_out_route",
    "marketing",
)


def export_rows(contacts: Iterable[Contact]) -> Iterator[str]:
    """CSV text, a line at a time (for a streaming response): the import's columns, the consent state, and every
    attribute key the contacts have, as columns of their own."""
    label_names = dict(Label.objects.values_list("pk", "name"))
    contacts = list(contacts)
    keys = sorted({key for contact in contacts for key in (contact.attributes or {})} - set(EXPORT_COLUMNS))
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line([*EXPORT_COLUMNS, *[_cell(key) for key in keys]])
    for contact in contacts:
        yield line(
            [
                f"+{contact.wa_id}" if contact.wa_id else "",
                _cell(contact.name),
                _cell(";".join(label_names[pk] for pk in contact.labels or [] if pk in label_names)),
                _cell(contact.opt_in_source),
                contact.opted_in_at.isoformat() if contact.opted_in_at else "",
                contact.opted_out_at.isoformat() if contact.opted_out_at else "",
                contact.opt_out_route,
                contact.marketing,
                *[_cell(str((contact.attributes or {}).get(key, ""))) for key in keys],
            ]
        )


def _cell(text: str) -> str:
    """Text a spreadsheet must not run as a formula (a customer chose their own name): a leading quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
