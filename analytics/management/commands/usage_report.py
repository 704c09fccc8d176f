"""`manage.py usage_report [--since DATE] [--until DATE] [--format json|csv]`: the operator's figures.

The fact table is rebuilt first (unless --no-refresh), so the numbers agree with the ledger as it is now.
The range is whole weeks (Monday to Sunday, UTC), like the staff page by week.
"""

import csv
import json
from datetime import UTC, date, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.report import CSV_HEADER, report_data, report_rows
from analytics.selectors import operator_report
from analytics.services import economics_refresh


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = "Usage, revenue, provider cost and margin per tool and per model, and retention cohorts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=_date, help="First day (UTC), rounded down to its Monday. Default: all history."
        )
        parser.add_argument(
            "--until", type=_date, help="Last day (UTC): weeks starting by then count. Default: today."
        )
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--no-refresh", action="store_true", help="Read the fact table as it is.")

    def handle(self, *args, **options) -> None:
        since_day = options["since"] or date(2000, 1, 1)
        until_day = options["until"] or datetime.now(tz=UTC).date()
        if until_day < since_day:
            raise CommandError("--until is before --since.")
        if not options["no_refresh"]:
            economics_refresh()
        data = report_data(operator_report(since=since_day, until=until_day, period="week"))
        if options["format"] == "json":
            self.stdout.write(json.dumps(data, indent=2))
            return
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(report_rows(data))
