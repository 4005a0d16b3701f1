from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseOperations(PostgresOperations):
    compiler_module = "helpdesk.db.compiler"


class DatabaseWrapper(TenantDatabaseWrapper):
    ops_class = DatabaseOperations
