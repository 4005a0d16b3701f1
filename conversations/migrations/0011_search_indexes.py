"""The search's indexes: message text by full-text search in Indonesian and in English (conversations/search.py
writes its condition with the very same expressions), contact names, numbers and usernames by trigrams (a
substring ILIKE uses them)."""

from django.db import migrations

INDEXES = {
    "message_text_id": "conversations_message USING gin (to_tsvector('indonesian'::regconfig, text))",
    "message_text_en": "conversations_message USING gin (to_tsvector('english'::regconfig, text))",
    "contact_name_trgm": "conversations_contact USING gin (name gin_trgm_ops)",
    "contact_wa_id_trgm": "conversations_contact USING gin (wa_id gin_trgm_ops)",
    "contact_username_trgm": "conversations_contact USING gin (username gin_trgm_ops)",
}


class Migration(migrations.Migration):
    dependencies = [("conversations", "0010_labels_attributes_canned"), ("tenancy", "0006_pg_trgm")]

    operations = [
        migrations.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON {target}", f"DROP INDEX IF EXISTS {name}")
        for name, target in INDEXES.items()
    ]
