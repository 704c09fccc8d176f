from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from merchants import services as merchants
from merchants.actors import Actor
from merchants.exceptions import MerchantError
from wallets import services as wallets


class Command(BaseCommand):
    help = "Create a merchant, its owner user and its wallet; optionally grant it tokens."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--name", help="Display name (defaults to the slug).")
        parser.add_argument("--password", help="Owner password (else they use password reset or admin).")
        parser.add_argument("--tokens", type=int, default=0, help="Tokens to grant as a promotion.")

    def handle(self, *args, slug, owner_email, name, password, tokens, **options):
        if tokens < 0:
            raise CommandError("--tokens must be zero or more.")
        try:
            with transaction.atomic():
                merchant = merchants.merchant_create(name=name or slug, slug=slug)
                owner = merchants.owner_create(merchant=merchant, email=owner_email, password=password)
                wallet = wallets.wallet_of(merchant=merchant)
                if tokens:
                    wallets.promotion_credit(
                        wallet=wallet,
                        amount=tokens,
                        key=f"grant:{merchant.pk}:initial",
                        actor=Actor.system("create_merchant"),
                        memo="Initial grant",
                    )
        except MerchantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created merchant {merchant.slug} (owner {owner.email}) with {tokens:,} tokens.")
