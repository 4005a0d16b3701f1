"""Labels, and what agents keep about a customer: the tenant's labels (with colours) put on conversations and
contacts, a contact's name and free attributes. Every change is pushed live (`conversation.updated`), so that
another agent's list and panel show it at once.

Labels are kept on a conversation or contact as an array of ids (one row carries them; a filter is one GIN
index); deleting a label takes its id out of every array in the same transaction.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Func, Value
from django.utils.translation import gettext as _

from conversations.actions import ActionError, lock_conversation
from conversations.events import record_event
from conversations.models import Contact, Conversation, Label
from conversations.serializers import conversation_data

COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_LABEL_NAME = 50
MAX_LABELS_PER_ITEM = 20
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 500
MAX_CONTACT_NAME = 256


class LabelError(ActionError):
    def __init__(self, message: str, code: str = "invalid", http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def _clean_label(name: Any, color: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_LABEL_NAME:
        raise LabelError(_("A label needs a name of 1 to %(limit)s characters.") % {"limit": MAX_LABEL_NAME})
    if not isinstance(color, str) or not COLOR.match(color):
        raise LabelError(_("A label's colour is written like #d97706."))
    return " ".join(name.split()), color.lower()


def do_save_label(label: Label | None, name: Any, color: Any) -> Label:
    """Create a label (`label` None) or rename / recolour one; names are unique, whatever their case."""
    name, color = _clean_label(name, color)
    label = label or Label()
    label.name, label.color = name, color
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError:
        raise LabelError(
            _("There is a label %(name)s already.") % {"name": name}, "label_exists", http_status=409
        ) from None
    return label


def do_delete_label(label: Label) -> None:
    """Delete a label and take it off every conversation and contact."""
    with transaction.atomic():
        remove = Func(F("labels"), Value(label.pk), function="array_remove")
        Conversation.objects.filter(labels__contains=[label.pk]).update(labels=remove)
        Contact.objects.filter(labels__contains=[label.pk]).update(labels=remove)
        label.delete()
        record_event("label.deleted", label={"id": label.pk})


def label_ids(value: Any) -> list[int]:
    """The ids of existing labels, in the order given, without repeats; LabelError for anything else."""
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise LabelError(_("`labels` is a list of label ids."))
    wanted = list(dict.fromkeys(value))
    if len(wanted) > MAX_LABELS_PER_ITEM:
        raise LabelError(_("At most %(limit)s labels.") % {"limit": MAX_LABELS_PER_ITEM})
    known = set(Label.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    unknown = [item for item in wanted if item not in known]
    if unknown:
        raise LabelError(_("There is no label %(id)s.") % {"id": unknown[0]}, "unknown_label")
    return wanted


def do_set_conversation_labels(conversation: Conversation, labels: Any) -> Conversation:
    wanted = label_ids(labels)
    with transaction.atomic():
        locked = lock_conversation(conversation.pk)
        changed = locked.labels != wanted
        if changed:
            locked.labels = wanted
            locked.save(update_fields=["labels"])
        shown = _with_relations(locked)
        if changed:
            record_event("conversation.updated", conversation=conversation_data(shown))
    return shown


def do_update_contact(contact: Contact, changes: dict[str, Any]) -> Contact:
    """An agent's edit of a contact: `name`, `attributes` (an object of strings; a key set to null or "" is
    removed) and `labels`; anything else is refused, and nothing is saved unless all of it is valid."""
    unknown = set(changes) - {"name", "attributes", "labels"}
    if unknown:
        raise LabelError(
            _("These contact fields cannot be changed: %(fields)s.") % {"fields": ", ".join(sorted(unknown))}
        )
    updates: dict[str, Any] = {}
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or len(name.strip()) > MAX_CONTACT_NAME:
            raise LabelError(
                _("A name is text of at most %(limit)s characters.") % {"limit": MAX_CONTACT_NAME}
            )
        updates["name"] = " ".join(name.split())
    if "labels" in changes:
        updates["labels"] = label_ids(changes["labels"])
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if "attributes" in changes:
            updates["attributes"] = _merged_attributes(locked.attributes, changes["attributes"])
        for field, value in updates.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(updates) or None)
        conversation = Conversation.objects.filter(contact=locked).first()
        if conversation is not None:
            record_event(
                "conversation.updated", conversation=conversation_data(_with_relations(conversation))
            )
    return locked


def _merged_attributes(current: dict[str, Any], changes: Any) -> dict[str, str]:
    if not isinstance(changes, dict):
        raise LabelError(_('`attributes` is an object of text values, like {"city": "Surabaya"}.'))
    merged = {str(key): str(value) for key, value in (current or {}).items()}
    for key, value in changes.items():
        key = key.strip()
        if not key or len(key) > MAX_ATTRIBUTE_KEY:
            raise LabelError(
                _("An attribute's name has 1 to %(limit)s characters.") % {"limit": MAX_ATTRIBUTE_KEY}
            )
        if value is None or value == "":
            merged.pop(key, None)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            if len(text) > MAX_ATTRIBUTE_VALUE:
                raise LabelError(
                    _("An attribute's value has at most %(limit)s characters.")
                    % {"limit": MAX_ATTRIBUTE_VALUE}
                )
            merged[key] = text
        else:
            raise LabelError(_("An attribute's value is text."))
    if len(merged) > MAX_ATTRIBUTES:
        raise LabelError(_("A contact keeps at most %(limit)s attributes.") % {"limit": MAX_ATTRIBUTES})
    return merged


def _with_relations(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_related("contact", "number", "current_ticket").get(pk=conversation.pk)
