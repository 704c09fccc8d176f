"""Django's CELERY_* settings as the plain dict Celery reads its configuration from (tokenhub.celery).

Celery imports this the first time it needs its configuration, after Django's settings are loaded, and
keeps the dict: a later change to Django's settings (`override_settings` in a test) does not reach Celery.
Read through `django.conf.settings` instead, every Celery setting not set here missed on Django's settings
object first; a send_task reads half a dozen of them, and that was a sixth of enqueueing a run.
"""

from django.conf import settings

CELERY_SETTINGS = {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}
