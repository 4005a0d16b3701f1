"""Real failures injected at the database: a trigger that refuses some writes to a table, as a full disk, a
constraint added by a migration in flight or a bug in a column would. Our own code runs unchanged."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def refused_writes(schema: str, table: str, condition: str, times: int = 1_000_000) -> Iterator[None]:
    """Inserts and updates of `schema.table` whose new row matches `condition` (SQL over NEW) fail with an
    error, the first `times` times (counted by a sequence, which a rollback does not undo)."""
    name = "fault_" + secrets.token_hex(4)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {schema}.{name}")
        cursor.execute(
            f"""CREATE FUNCTION {schema}.{name}() RETURNS trigger AS $$
            BEGIN
              IF ({condition}) AND nextval('{schema}.{name}') <= {times} THEN
                RAISE EXCEPTION 'injected failure: % refused', TG_TABLE_NAME;
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql"""
        )
        cursor.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {schema}.{table} "
            f"FOR EACH ROW EXECUTE FUNCTION {schema}.{name}()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {schema}.{table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {schema}.{name}()")
            cursor.execute(f"DROP SEQUENCE IF EXISTS {schema}.{name}")
