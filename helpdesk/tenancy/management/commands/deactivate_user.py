from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.tenancy.actions import TenancyError, do_deactivate_user


class Command(BaseCommand):
    help = (
        "Deactivate a user everywhere: no more sign-ins; every API token and session is deleted and open "
        "websockets close."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = do_deactivate_user(options["email"])
        except TenancyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"{user.email} is deactivated and signed out everywhere"))
