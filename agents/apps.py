from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "AI tools and runs"

    def ready(self) -> None:
        # The products built on the run engine join it here, so the engine never imports them.
        from agents.conversations import hooks as conversation_hooks
        from agents.runs.metrics import runs_collect
        from agents.runs.reconcile import check_runs_settled_once
        from tokenhub.metrics import register_collector
        from wallets.reconcile import register_check

        conversation_hooks.register()
        from agents.runs.failures import window_read_along

        window_read_along()
        register_check(check_runs_settled_once)
        register_collector(runs_collect)
        post_migrate.connect(_support_can_view_runs, sender=self, dispatch_uid="agents-support-permissions")
        from agents.bootstrap import provider_prices_ensure

        # Also after a test flush: the provider's default prices are reference data.
        post_migrate.connect(provider_prices_ensure, sender=self, dispatch_uid="agents-provider-prices")
        # A provider price saved here is used at once by this process (others: within PRICE_CACHE_SECONDS).
        from django.db.models.signals import post_delete, post_save

        from agents.models import ProviderPrice
        from agents.runs.usage import provider_prices_forget

        post_save.connect(
            provider_prices_forget, sender=ProviderPrice, dispatch_uid="agents-provider-prices-save"
        )
        post_delete.connect(
            provider_prices_forget, sender=ProviderPrice, dispatch_uid="agents-provider-prices-delete"
        )


def _support_can_view_runs(apps=None, **_kwargs) -> None:
    from wallets.bootstrap import support_group_grant

    support_group_grant(
        [
            ("agents", "view_run"),
            ("agents", "view_batch"),
            ("agents", "refund_run"),
            ("agents", "view_conversation"),
            ("agents", "view_message"),
            ("agents", "view_providerprice"),
        ],
        apps=apps,
    )
