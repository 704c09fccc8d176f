from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WidgetsConfig(AppConfig):
    name = "widgets"
    verbose_name = "Chat widget and knowledge articles"

    def ready(self) -> None:
        # The bot's prompt carries the articles retrieved for each message; agents may not import us.
        from agents.conversations import hooks as conversation_hooks
        from widgets import retrieval

        conversation_hooks.knowledge_source_set(retrieval.knowledge_for)
        post_migrate.connect(_support_can_view, sender=self, dispatch_uid="widgets-support-permissions")


def _support_can_view(apps=None, **_kwargs) -> None:
    from wallets.bootstrap import support_group_grant

    support_group_grant(
        [("widgets", "view_widget"), ("widgets", "view_visitorconversation"), ("widgets", "view_rating")],
        apps=apps,
    )
