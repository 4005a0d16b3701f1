from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations import simulator
from helpdesk.tenancy.actions import TenancyError, tenant_by_slug
from helpdesk.tenancy.models import WhatsAppNumber


class Command(BaseCommand):
    help = "Send a correctly signed inbound text webhook for a tenant's number through the real webhook path."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--from", dest="wa_id", required=True, help="The customer's WhatsApp id (digits)")
        parser.add_argument("--text", required=True)
        parser.add_argument("--name", default="", help="The customer's profile name")
        parser.add_argument(
            "--phone-number-id", default="", help="Which number (default: the tenant's first)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_by_slug(options["slug"])
        except TenancyError as error:
            raise CommandError(str(error)) from error
        numbers = WhatsAppNumber.objects.filter(tenant=tenant).order_by("pk")
        if options["phone_number_id"]:
            numbers = numbers.filter(phone_number_id=options["phone_number_id"])
        number = numbers.first()
        if number is None:
            raise CommandError(f"Tenant {tenant.slug} has no such WhatsApp number.")
        if not options["wa_id"].isdigit():
            raise CommandError("--from must be digits (a WhatsApp id such as 6281234567890).")
        payload = simulator.inbound_payload(
            number, options["wa_id"], options["name"] or options["wa_id"], options["text"]
        )
        result = simulator.deliver_signed(number, payload)
        if result.status != 200:
            raise CommandError(f"The webhook answered {result.status}: {result.detail}")
        wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        self.stdout.write(
            self.style.SUCCESS(f"Delivered {wamid} to {tenant.slug} (webhook event {result.event_id})")
        )
