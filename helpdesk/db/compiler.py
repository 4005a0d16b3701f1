from typing import Any

from django.db.backends.postgresql.compiler import (  # noqa: F401 (the backend's compilers, by name)
    SQLAggregateCompiler,
    SQLCompiler,
    SQLDeleteCompiler,
    SQLUpdateCompiler,
)
from django.db.backends.postgresql.compiler import SQLInsertCompiler as PostgresInsertCompiler
from django.db.models.sql.compiler import SQLInsertCompiler as PlainInsertCompiler


class SQLInsertCompiler(PostgresInsertCompiler):
    def assemble_as_sql(self, fields: Any, value_rows: Any) -> Any:
        """`VALUES (...), (...)`: each value quoted once by the C library, no arrays (see helpdesk/db)."""
        return PlainInsertCompiler.assemble_as_sql(self, fields, value_rows)
