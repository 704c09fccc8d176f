"""A demo store to click through: tokens, an owner login, an API key, brand voice and bot knowledge."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from merchants import services as merchants
from merchants.actors import Actor
from merchants.models import Merchant
from wallets import services as wallets

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@tokenhub.local"
DEMO_PASSWORD = "tokenhub-demo"  # noqa: S105 (a documented demo login for local development)
DEMO_TOKENS = 2_000_000
KNOWLEDGE = """Shipping: free over $40 in the US, 3-5 business days; international 7-14 days.
Returns: 30 days, unused items in original packaging; we pay return shipping for defects.
Bamboo toothbrush: soft bristles, compostable handle, replace every 3 months.
Contact: help@demo-store.example, Mon-Fri 9:00-17:00 ET."""


class Command(BaseCommand):
    help = "Create (or refresh) the demo merchant with tokens, a login and an API key."

    def handle(self, *args, **options):
        with transaction.atomic():
            merchant = Merchant.objects.filter(slug=DEMO_SLUG).first()
            created = merchant is None
            if created:
                merchant = merchants.merchant_create(name="Demo Store", slug=DEMO_SLUG)
                merchant.brand_voice = "Friendly, eco-minded and plain-spoken. No hype, no exclamation marks."
                merchant.knowledge_base = KNOWLEDGE
                merchant.save(update_fields=["brand_voice", "knowledge_base"])
            assert merchant is not None  # noqa: S101 - found, or created just above
            owner = merchants.owner_create(merchant=merchant, email=DEMO_EMAIL, password=DEMO_PASSWORD)
            owner.set_password(DEMO_PASSWORD)
            owner.save(update_fields=["password"])
            wallets.promotion_credit(
                wallet=wallets.wallet_of(merchant=merchant),
                amount=DEMO_TOKENS,
                key=f"grant:{merchant.pk}:demo",
                actor=Actor.system("seed_demo"),
                memo="Demo tokens",
            )
        key = self._api_key(merchant)
        self.stdout.write(
            f"Demo store {'created' if created else 'ready'}: {merchant.slug}, login {DEMO_EMAIL} / {DEMO_PASSWORD}"
        )
        if key:
            self.stdout.write(f"Demo API key: {key}")

    def _api_key(self, merchant: Merchant) -> str | None:
        """One demo key, kept in .dev/ so `make dev` can show it again; keys are stored hashed."""
        from merchants import api_keys

        stored = Path(settings.BASE_DIR) / ".dev" / "demo-api-key"
        if stored.exists() and api_keys.api_key_authenticate(raw_key=stored.read_text().strip()) is not None:
            return stored.read_text().strip()
        _key, raw = api_keys.api_key_create(merchant=merchant, name="Demo key", created_by=None)
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(raw)
        return raw
