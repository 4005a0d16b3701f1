from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from conversations import webhooks
from helpdesk.tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Replay parked webhook events (those that failed every retry) after a fix: each is applied again now, "
        "only its failed changes; one that fails again starts a new round of retries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tenant", default="", help="Only events with a failed change of this tenant (slug)"
        )
        parser.add_argument("--since", default="", help="Only events received since this ISO date or time")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = options["tenant"]
        if tenant and not Tenant.objects.filter(schema_name=tenant).exists():
            raise CommandError(f"No tenant {tenant!r}.")
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError:
                raise CommandError(
                    f"--since: {options['since']!r} is not an ISO date (2026-12-01) or time."
                ) from None
            if since.tzinfo is None:
                since = timezone.make_aware(since)
        events = webhooks.parked_events(tenant=tenant or None, since=since)
        count = events.count()
        if not count:
            self.stdout.write("No parked webhook events match.")
            return
        applied, failed = webhooks.replay(events)
        self.stdout.write(
            f"Replayed {count} parked webhook event(s): {applied} applied, {failed} failed again."
        )
