"""pg_trgm in the public schema, where every tenant's search path finds it (the search's trigram indexes)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0005_number_health")]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public", reverse_sql=migrations.RunSQL.noop
        )
    ]
