"""API shapes of tickets; websocket frames carry the same."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tickets.models import Priority, Ticket, TicketStatus


class TicketSerializer(serializers.ModelSerializer[Ticket]):
    conversation = serializers.IntegerField(source="conversation_id", read_only=True)
    assignee = serializers.SerializerMethodField()
    resolved_by = serializers.IntegerField(source="resolved_by_id", read_only=True, allow_null=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "conversation",
            "status",
            "priority",
            "assignee",
            "opened_at",
            "cycle_started_at",
            "resolved_at",
            "resolved_by",
            "closed_at",
            "reopen_count",
            "waiting_since",
            "awaiting_first_response",
            "last_customer_message_at",
            "response_due_at",
            "resolution_due_at",
            "csat_asked_at",
            "csat_score",
            "csat_answered_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_assignee(self, ticket: Ticket) -> dict[str, Any] | None:
        if ticket.assignee_id is None:
            return None
        return {"id": ticket.assignee_id, "name": ticket.assignee.display_name if ticket.assignee else ""}


class TicketUpdateSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(choices=TicketStatus.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    assignee = serializers.IntegerField(
        required=False, allow_null=True, help_text="A member's user id; null unassigns"
    )


def ticket_data(ticket: Ticket) -> dict[str, Any]:
    return dict(TicketSerializer(ticket).data)
