from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "AI tools and runs"

    def ready(self) -> None:
        from agents.reconcile import check_runs_settled_once
        from wallets.reconcile import register_check

        register_check(check_runs_settled_once)
        post_migrate.connect(_support_can_view_runs, sender=self, dispatch_uid="agents-support-permissions")


def _support_can_view_runs(apps=None, **_kwargs) -> None:
    from wallets.bootstrap import support_group_grant

    support_group_grant([("agents", "view_run"), ("agents", "view_batch")], apps=apps)
