"""manage.py create_widget SLUG --origin https://shop.example [--origin ...]: the public key alone on the
last line, so scripts can take it with `tail -n 1`."""

from django.core.management.base import BaseCommand, CommandError

from merchants.models import Merchant
from tokenhub.errors import ApplicationError
from widgets import services


class Command(BaseCommand):
    help = "Create a chat widget for a store; prints its public key (pk_...) on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The store's slug.")
        parser.add_argument("--origin", action="append", required=True, help="A website origin; repeatable.")
        parser.add_argument("--name", default="Chat")
        parser.add_argument("--color", default="#2563eb")
        parser.add_argument("--language", default=None, help="Default: the store's language.")
        parser.add_argument("--daily-token-budget", type=int, default=None)

    def handle(self, *args, slug, origin, name, color, language, daily_token_budget, **options):
        merchant = Merchant.objects.filter(slug=slug).first()
        if merchant is None:
            raise CommandError(f"No store with the slug {slug!r}.")
        settings = {"name": name, "color": color}
        if language:
            settings["language"] = language
        if daily_token_budget is not None:
            settings["daily_token_budget"] = daily_token_budget
        try:
            widget = services.widget_create(merchant=merchant, origins=origin, **settings)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Widget {widget.pk} for {merchant.name}, allowed on {', '.join(widget.allowed_origins)}."
        )
        self.stdout.write(widget.public_key)
