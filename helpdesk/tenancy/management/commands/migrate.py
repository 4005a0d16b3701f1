"""`migrate`: django-tenants' migrate_schemas (public schema, then every tenant), then the public tenant on
PUBLIC_DOMAIN. Running it again changes nothing."""

from typing import Any

from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand

from helpdesk.tenancy.actions import ensure_public_tenant


class Command(MigrateSchemasCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        ensure_public_tenant()
