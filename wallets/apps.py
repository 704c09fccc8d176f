from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Wallets and ledger"

    def ready(self) -> None:
        from merchants.models import Merchant
        from wallets import bootstrap

        post_save.connect(
            bootstrap.wallet_for_new_merchant, sender=Merchant, dispatch_uid="wallet-for-merchant"
        )
        from merchants.signals import store_signed_up

        store_signed_up.connect(bootstrap.trial_for_new_store, dispatch_uid="wallets-trial-credits")
        # Also after a test flush: system accounts, prices and the Support group are reference data.
        post_migrate.connect(
            bootstrap.reference_data_ensure, sender=self, dispatch_uid="wallets-reference-data"
        )
        # A price saved here is used at once by this process (others: within PRICE_CACHE_SECONDS).
        from django.db.models.signals import post_delete

        from wallets.caches import prices_forget
        from wallets.models import Price

        post_save.connect(prices_forget, sender=Price, dispatch_uid="wallets-prices-forget-save")
        post_delete.connect(prices_forget, sender=Price, dispatch_uid="wallets-prices-forget-delete")
        # Saved alert or recharge settings move the wallet's balance mark (wallets.balance_events).
        from wallets.balance_events import balance_settings_saved
        from wallets.models import BalanceAlert, RechargeSettings

        for model in (BalanceAlert, RechargeSettings):
            post_save.connect(
                balance_settings_saved, sender=model, dispatch_uid=f"wallets-mark-{model.__name__}"
            )
        # Auto-recharge's invariant joins reconcile_ledger (wallets/recharge/checks.py).
        from wallets.recharge.checks import check_recharges_topped_up_once
        from wallets.reconcile import register_check

        register_check(check_recharges_topped_up_once)
        _cache_long_statements()


def _cache_long_statements() -> None:
    # psycopg parses a statement's placeholders once and keeps the result (an LRU of 128), but only for
    # statements of at most 4 KB and 50 parameters. A run's create and settlement (a ledger step and the
    # run's row in one statement) are longer, so they were parsed again on every run: 8 % of a create's
    # CPU. They are constant strings of ours; raising the bounds only lets them into the same cache.
    from psycopg import _queries

    _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, 16 * 1024)
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 200)
