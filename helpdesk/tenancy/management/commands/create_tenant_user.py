from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.tenancy.actions import TenancyError, do_add_member, tenant_by_slug
from helpdesk.tenancy.models import Role


class Command(BaseCommand):
    help = "Create a user (or update their password) and give them a role in a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", required=True)
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            membership = do_add_member(
                tenant_by_slug(options["slug"]),
                options["email"],
                options["role"],
                options["password"],
                options["name"],
            )
        except TenancyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(f"{membership.user.email} is {membership.role} of {options['slug']}")
        )
