"""Writing many rows of a model in one statement, where Django would use one per row or a slower shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Model


def update_rows(model: type[Model], rows: Sequence[Model], field_names: Sequence[str]) -> None:
    """Save `field_names` of `rows` (instances of `model` with a primary key) in one
    `UPDATE ... FROM (VALUES ...)`. Django's `bulk_update` builds a `CASE` per field and row, and `save()` costs
    a statement per row: either cost a webhook batch more than the rest of its work."""
    if not rows:
        return
    fields = [cast(Field, model._meta.get_field(name)) for name in field_names]  # concrete: they have columns
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [connection.ops.quote_name(str(field.column)) for field in fields]
    casts = ", ".join(
        f"{column} = v.{column}::{field.db_type(connection)}"
        for column, field in zip(columns, fields, strict=True)
    )
    values = ", ".join("(%s" + ", %s" * len(fields) + ")" for _ in rows)
    params: list[Any] = []
    for row in rows:
        params.append(row.pk)
        params.extend(  # pre_save: what save() would write (`auto_now` is now)
            field.get_db_prep_save(field.pre_save(row, False), connection) for field in fields
        )
    pk = connection.ops.quote_name(str(model._meta.pk.column))  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {casts} FROM (VALUES {values}) AS v({pk}, {', '.join(columns)}) "  # noqa: S608
            f"WHERE t.{pk} = v.{pk}",
            params,
        )
