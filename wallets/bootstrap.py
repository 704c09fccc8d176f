"""Reference data the ledger needs to exist: system accounts, default prices and packs, the Support group.

Run from a data migration and again after every migrate or test flush (post_migrate); idempotent.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

SYSTEM_ACCOUNTS = ("issuance", "promotions", "support", "consumption")

# Wallet tokens per model token, qwen-plus input = 1.0 (docs/architecture.md, "The ledger").
DEFAULT_PRICES = {
    "qwen-flash": (Decimal("0.125"), Decimal("1.0")),
    "qwen-plus": (Decimal("1.0"), Decimal("3.0")),
    "qwen-max": (Decimal("4.0"), Decimal("16.0")),
}
PRICES_EFFECTIVE_FROM = datetime(2026, 1, 1, tzinfo=UTC)

DEFAULT_PACKS = (
    ("Starter", 1_000_000, 500, 1),
    ("Growth", 5_000_000, 2_250, 2),
    ("Scale", 25_000_000, 10_000, 3),
)

SUPPORT_GROUP = "Support"
SUPPORT_PERMISSIONS = [
    ("merchants", "view_merchant"),
    ("merchants", "view_membership"),
    ("merchants", "view_user"),
    ("wallets", "view_account"),
    ("wallets", "view_transfer"),
    ("wallets", "view_price"),
    ("wallets", "view_topuppack"),
    ("wallets", "view_adjustmentrequest"),
    ("wallets", "add_adjustmentrequest"),
    ("wallets", "approve_adjustmentrequest"),
    ("wallets", "view_topuppayment"),
    ("wallets", "view_stripeevent"),
    ("wallets", "view_sponsorship"),
    ("wallets", "view_sponsorshipmonth"),
    # Auto-recharge: "why was my card charged?"
    ("wallets", "view_rechargeattempt"),
    ("wallets", "view_rechargesettings"),
]


def reference_data_ensure(apps=None, **_kwargs) -> None:
    from django.apps import apps as global_apps

    apps = apps or global_apps
    Account = apps.get_model("wallets", "Account")
    Price = apps.get_model("wallets", "Price")
    TopupPack = apps.get_model("wallets", "TopupPack")
    with transaction.atomic():
        for kind in SYSTEM_ACCOUNTS:
            Account.objects.get_or_create(code=kind, defaults={"kind": kind})
        if not Price.objects.exists():
            for model, (input_weight, output_weight) in DEFAULT_PRICES.items():
                Price.objects.create(
                    model=model,
                    input_weight=input_weight,
                    output_weight=output_weight,
                    effective_from=PRICES_EFFECTIVE_FROM,
                    note="Default from public list prices",
                )
        if not TopupPack.objects.exists():
            for name, tokens, cents, order in DEFAULT_PACKS:
                TopupPack.objects.create(name=name, tokens=tokens, price_cents=cents, sort_order=order)
    support_group_grant(SUPPORT_PERMISSIONS, apps=apps)
    # A flush (transactional tests) recreates system accounts under new ids: forget the cached ones.
    from wallets.caches import caches_clear
    from wallets.services import system_accounts_forget

    system_accounts_forget()
    caches_clear()


def support_group_grant(permissions: list[tuple[str, str]], *, apps=None) -> None:
    """Give the Support group these (app_label, codename) permissions; other apps add their own."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    apps = apps or global_apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for app_label in {label for label, _ in permissions}:
        app_config = apps.get_app_config(app_label)
        # Inside a migration the app config is a stub without models_module; create_permissions skips those.
        stub = getattr(app_config, "models_module", None) is None
        if stub:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        if stub:
            app_config.models_module = None
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    for app_label, codename in permissions:
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        # Inside an early migration a later model's permission does not exist yet; post_migrate grants it.
        if permission is not None:
            group.permissions.add(permission)


def wallet_for_new_merchant(sender, instance, created: bool, raw: bool = False, **_kwargs) -> None:
    if created and not raw:
        from wallets.models import Account

        Account.objects.get_or_create(
            merchant=instance, kind=Account.Kind.WALLET, defaults={"code": f"wallet:{instance.pk}"}
        )


def trial_for_new_store(sender, merchant, **_kwargs) -> None:
    """A store made by sign-up can try every tool at once: TRIAL_TOKENS of promotional credits, once."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from merchants.actors import Actor
    from wallets.services import promo_grant

    if settings.TRIAL_TOKENS <= 0:
        return
    promo_grant(
        merchant=merchant,
        amount=settings.TRIAL_TOKENS,
        expires_at=timezone.now() + timedelta(days=settings.TRIAL_DAYS),
        key=f"trial:{merchant.pk}",
        actor=Actor.system("trial credits"),
        memo="Trial credits",
    )
