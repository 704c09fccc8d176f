"""Reference data of the run engine: the provider's default list prices (USD per million tokens).

Run from a data migration and again after every migrate or test flush (post_migrate); idempotent: once any
provider price exists, staff own the table (admin) and nothing here changes it.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

# Alibaba Cloud Model Studio public list prices (international, first tier): input, cached input (20% of
# input), output. qwen-flash is the customer-service bot's model; qwen-plus writes listings and copy.
DEFAULT_PROVIDER_PRICES = {
    "qwen-flash": (Decimal("0.05"), Decimal("0.01"), Decimal("0.40")),
    "qwen-turbo": (Decimal("0.05"), Decimal("0.01"), Decimal("0.20")),
    "qwen-plus": (Decimal("0.40"), Decimal("0.08"), Decimal("1.20")),
    "qwen-max": (Decimal("1.60"), Decimal("0.32"), Decimal("6.40")),
}
PROVIDER_PRICES_EFFECTIVE_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def provider_prices_ensure(apps=None, **_kwargs) -> None:
    from django.apps import apps as global_apps

    apps = apps or global_apps
    ProviderPrice = apps.get_model("agents", "ProviderPrice")
    with transaction.atomic():
        if ProviderPrice.objects.exists():
            return
        for model, (input_usd, cached_usd, output_usd) in DEFAULT_PROVIDER_PRICES.items():
            ProviderPrice.objects.create(
                model=model,
                input_usd_per_million=input_usd,
                cached_input_usd_per_million=cached_usd,
                output_usd_per_million=output_usd,
                effective_from=PROVIDER_PRICES_EFFECTIVE_FROM,
                note="Default from public list prices",
            )
