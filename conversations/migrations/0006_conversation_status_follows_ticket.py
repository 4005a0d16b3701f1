"""The inbox tabs follow the current ticket: `Conversation.status` becomes a copy of its current ticket's status
(closed counts as resolved), kept in step by tickets.actions. This fixes the rows written before, whose status
only ever changed when a customer wrote to a resolved conversation."""

from typing import Any

from django.db import migrations

FOLLOW_CURRENT_TICKETS = """
UPDATE {conversation} AS c
SET status = CASE t.status WHEN 'closed' THEN 'resolved' ELSE t.status END
FROM {ticket} AS t
WHERE c.current_ticket_id = t.id
  AND c.status <> CASE t.status WHEN 'closed' THEN 'resolved' ELSE t.status END
"""


def follow_current_tickets(apps: Any, schema_editor: Any) -> None:
    conversation = apps.get_model("conversations", "Conversation")._meta.db_table
    ticket = apps.get_model("tickets", "Ticket")._meta.db_table
    schema_editor.execute(FOLLOW_CURRENT_TICKETS.format(conversation=conversation, ticket=ticket))


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0005_conversation_current_ticket_note_conversation"),
        ("tickets", "0004_sealed_intervals"),
    ]

    operations = [migrations.RunPython(follow_current_tickets, migrations.RunPython.noop, elidable=True)]
