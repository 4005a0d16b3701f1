from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.tenancy.actions import TenancyError, do_create_tenant


class Command(BaseCommand):
    help = "Create a tenant (a business) with its own schema and domain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Lower-case id; also the schema name, e.g. acme")
        parser.add_argument("--name", required=True, help="The business's name")
        parser.add_argument("--domain", required=True, help="Host name agents use, e.g. acme.example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = do_create_tenant(options["slug"], options["name"], options["domain"])
        except TenancyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.slug} on {options['domain']}"))
