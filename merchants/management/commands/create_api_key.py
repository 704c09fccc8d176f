from django.core.management.base import BaseCommand, CommandError

from merchants.api_keys import api_key_create
from merchants.exceptions import MerchantError
from merchants.models import Merchant


class Command(BaseCommand):
    help = "Create an API key for a merchant. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="CLI key", help="A label to tell keys apart.")
        parser.add_argument(
            "--monthly-budget", type=int, default=None, help="Most tokens the key's runs may use per month."
        )

    def handle(self, *args, slug, name, monthly_budget, **options):
        if monthly_budget is not None and monthly_budget < 0:
            raise CommandError("--monthly-budget must be zero or more.")
        merchant = Merchant.objects.filter(slug=slug).first()
        if merchant is None:
            raise CommandError(f"No merchant with slug {slug!r}.")
        try:
            created = api_key_create(merchant=merchant, name=name, monthly_token_budget=monthly_budget)
        except MerchantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Created API key {created.api_key.name!r} (prefix thk_{created.api_key.prefix}) for {merchant.slug}. "
            "Store it now: it is not shown again."
        )
        # Alone on the last line, so `create_api_key SLUG | tail -n1` is the key.
        self.stdout.write(created.raw_key)
