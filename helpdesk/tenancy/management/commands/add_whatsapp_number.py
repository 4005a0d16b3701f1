from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.tenancy.actions import TenancyError, do_add_number, tenant_by_slug


class Command(BaseCommand):
    help = "Register a WhatsApp Cloud API number for a tenant (credentials are stored encrypted)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--phone-number-id", required=True)
        parser.add_argument("--waba-id", required=True)
        parser.add_argument("--display-number", required=True)
        parser.add_argument("--access-token", required=True)
        parser.add_argument("--app-secret", required=True)
        parser.add_argument("--verify-token", required=True)
        parser.add_argument(
            "--simulator",
            action="store_true",
            help="Send replies to the built-in fake Graph API instead of Meta's",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            number = do_add_number(
                tenant_by_slug(options["slug"]),
                phone_number_id=options["phone_number_id"],
                waba_id=options["waba_id"],
                display_number=options["display_number"],
                access_token=options["access_token"],
                app_secret=options["app_secret"],
                verify_token=options["verify_token"],
                simulator=options["simulator"],
            )
        except TenancyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Number +{number.display_number} ({number.phone_number_id}) belongs to {options['slug']}"
            )
        )
