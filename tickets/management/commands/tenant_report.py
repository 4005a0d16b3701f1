import csv
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tickets.operator import COLUMNS, flat_value, tenant_summaries
from tickets.reports import ReportError


class Command(BaseCommand):
    help = "Response times, chat volume and resolved tickets of every tenant for a period (local days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="First day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True, help="Last day, YYYY-MM-DD (included)")
        parser.add_argument("--csv", action="store_true", help="CSV instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = tenant_summaries(options["start"], options["end"])
        except ReportError as error:
            raise CommandError(str(error)) from error
        table = [[_show(flat_value(row, key)) for key, _ in COLUMNS] for row in rows]
        headers = [label for _, label in COLUMNS]
        if options["csv"]:
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerow([key for key, _ in COLUMNS])
            writer.writerows(table)
            return
        widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *table, strict=False)]
        for line in [headers, *table]:
            self.stdout.write(
                "  ".join(str(cell).rjust(width) for cell, width in zip(line, widths, strict=False))
            )


def _show(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "" if value is None else value
