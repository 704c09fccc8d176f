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
