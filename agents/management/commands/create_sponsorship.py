"""manage.py create_sponsorship SPONSOR BENEFICIARY --monthly-limit N [--tool SLUG ...]

An operator's sponsorship starts at once (no invitation to accept); the last line is its id alone.
It lives with the tools because it checks tool slugs against them (agents → wallets, never the reverse).
"""

from django.core.management.base import BaseCommand, CommandError

from agents.tools import registry
from merchants.models import Merchant
from wallets.exceptions import SponsorshipError
from wallets.sponsorships import sponsorship_create


class Command(BaseCommand):
    help = "Let one store (the sponsor) pay for another store's runs up to a monthly limit of tokens."

    def add_arguments(self, parser):
        parser.add_argument("sponsor", help="The paying store's slug.")
        parser.add_argument("beneficiary", help="The slug of the store whose runs it pays for.")
        parser.add_argument(
            "--monthly-limit", type=int, required=True, help="Tokens per calendar month (UTC)."
        )
        parser.add_argument(
            "--tool",
            action="append",
            dest="tools",
            default=[],
            help="A tool it pays for (repeat); default all.",
        )

    def handle(self, *args, sponsor, beneficiary, monthly_limit, tools, **options):
        stores = {store.slug: store for store in Merchant.objects.filter(slug__in=[sponsor, beneficiary])}
        for slug in (sponsor, beneficiary):
            if slug not in stores:
                raise CommandError(f"There is no store {slug!r}.")
        try:
            sponsorship = sponsorship_create(
                sponsor=stores[sponsor],
                beneficiary=stores[beneficiary],
                monthly_limit=monthly_limit,
                tools=tools,
                known_tools=registry.slugs(),
                accepted=True,
            )
        except SponsorshipError as exc:
            raise CommandError(exc.message) from exc
        which = ", ".join(sponsorship.tools) or "every tool"
        self.stdout.write(
            f"{stores[sponsor].name} now pays for {stores[beneficiary].name}'s runs of {which}, "
            f"up to {monthly_limit:,} tokens a month."
        )
        self.stdout.write(str(sponsorship.pk))
