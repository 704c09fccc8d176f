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
        # Also after a test flush: system accounts, prices and the Support group are reference data.
        post_migrate.connect(
            bootstrap.reference_data_ensure, sender=self, dispatch_uid="wallets-reference-data"
        )
