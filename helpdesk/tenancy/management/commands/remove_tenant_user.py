from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.tenancy.actions import TenancyError, do_remove_member, tenant_by_slug


class Command(BaseCommand):
    help = "Remove a user's membership of a tenant; their open websockets on that tenant close."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            do_remove_member(tenant_by_slug(options["slug"]), options["email"])
        except TenancyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(f"{options['email']} is no longer a member of {options['slug']}")
        )
