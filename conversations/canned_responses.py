"""Canned responses: named snippets an agent inserts with `/`. A shared one belongs to the team (supervisors and
admins keep them); a personal one to its owner. Placeholders are filled for the conversation at hand before the
agent sends: {{contact.name}}, {{agent.name}}, {{ticket.id}}."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.actions import ActionError
from conversations.models import CannedResponse, Conversation
from helpdesk.tenancy.models import Role, User

MAX_NAME = 80
MAX_TEXT = 4096  # what one WhatsApp text message holds
PLACEHOLDER = re.compile(r"\{\{\s*(contact\.name|agent\.name|ticket\.id)\s*\}\}")


class CannedError(ActionError):
    def __init__(self, message: str, code: str = "invalid", http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def visible_to(user: User) -> QuerySet[CannedResponse]:
    """The team's shared responses and the user's own, by name."""
    return CannedResponse.objects.filter(Q(shared=True) | Q(owner_id=user.pk)).order_by("name", "pk")


def _may_change(response: CannedResponse, user: User, role: str) -> bool:
    if response.shared:
        return role in (Role.SUPERVISOR, Role.ADMIN)
    return response.owner_id == user.pk


def do_save_canned(response: CannedResponse | None, user: User, role: str, data: Any) -> CannedResponse:
    """Create (`response` None) or change a canned response. Anyone keeps personal ones; shared ones are the
    supervisors' and admins'."""
    if not isinstance(data, dict):
        raise CannedError(_('A JSON object: {"name", "text", "shared"}.'))
    name = data.get("name", response.name if response else None)
    text = data.get("text", response.text if response else None)
    shared = data.get("shared", response.shared if response else False)
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise CannedError(
            _("A canned response needs a name of 1 to %(limit)s characters.") % {"limit": MAX_NAME}
        )
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise CannedError(
            _("A canned response needs a text of 1 to %(limit)s characters.") % {"limit": MAX_TEXT}
        )
    if not isinstance(shared, bool):
        raise CannedError(_("`shared` is true or false."))
    if response is not None and not _may_change(response, user, role):
        raise CannedError(
            _("Only supervisors and admins change the team's responses."), "permission_denied", 403
        )
    if shared and role not in (Role.SUPERVISOR, Role.ADMIN):
        raise CannedError(
            _("Only supervisors and admins share responses with the team."), "permission_denied", 403
        )
    response = response or CannedResponse(owner_id=user.pk)
    response.name, response.text, response.shared = " ".join(name.split()), text, shared
    response.updated_at = timezone.now()
    response.save()
    return response


def do_delete_canned(response: CannedResponse, user: User, role: str) -> None:
    if not _may_change(response, user, role):
        raise CannedError(
            _("Only supervisors and admins change the team's responses."), "permission_denied", 403
        )
    response.delete()


def filled(text: str, conversation: Conversation, agent: User) -> str:
    """The text with its placeholders filled for this conversation and agent (one without a value stays)."""
    ticket = conversation.current_ticket_id
    values = {
        "contact.name": conversation.contact.name or conversation.contact.address,
        "agent.name": agent.display_name,
        "ticket.id": str(ticket) if ticket else "",
    }
    return PLACEHOLDER.sub(lambda match: values[match.group(1)] or match.group(0), text)
