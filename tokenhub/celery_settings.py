"""Django's CELERY_* settings as the plain dict Celery reads its configuration from (tokenhub.celery).

Celery imports this the first time it needs its configuration, after Django's settings are loaded, and
keeps the dict: a later change to Django's settings (`override_settings` in a test) does not reach Celery.
Read through `django.conf.settings` instead, every Celery setting not set here missed on Django's settings
object first; a send_task reads half a dozen of them, and that was a sixth of enqueueing a run.
"""

from django.conf import settings

# Celery's own names (CELERY_TASK_ACKS_LATE is `task_acks_late`): read with a namespace, a plain dict of
# CELERY_* keys makes Celery take CELERY_TIMEZONE and CELERY_RESULT_BACKEND for its deprecated 3.x names.
CELERY_SETTINGS = {
    name.removeprefix("CELERY_").lower(): getattr(settings, name)
    for name in dir(settings)
    if name.startswith("CELERY_")
}
