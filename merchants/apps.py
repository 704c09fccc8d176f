from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = "Merchants"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from merchants import signals
        from merchants.lockout import on_locked_out

        user_logged_in.connect(signals.on_logged_in, dispatch_uid="merchants.session_record")
        user_logged_out.connect(signals.on_logged_out, dispatch_uid="merchants.session_forget")
        user_locked_out.connect(on_locked_out, dispatch_uid="merchants.lockout_mail")
        # After every app's migrate (axes' permissions exist only once axes has migrated).
        post_migrate.connect(signals.support_permissions_grant, dispatch_uid="merchants.support_permissions")
        # Cached API keys carry their merchant: any change to either drops them on every process.
        from django.db.models.signals import post_delete, post_save

        from merchants.api_keys import api_keys_changed
        from merchants.models import ApiKey, Merchant

        for model in (ApiKey, Merchant):
            post_save.connect(
                api_keys_changed, sender=model, dispatch_uid=f"merchants.key_cache.save.{model.__name__}"
            )
            post_delete.connect(
                api_keys_changed, sender=model, dispatch_uid=f"merchants.key_cache.delete.{model.__name__}"
            )
