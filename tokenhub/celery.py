import contextlib
import os
import threading
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")

app = Celery("tokenhub")
# Django's CELERY_* settings, read once into a plain dict (why: tokenhub.celery_settings).
app.config_from_object("tokenhub.celery_settings:CELERY_SETTINGS")
app.autodiscover_tasks()

BEAT_HEARTBEAT_SECONDS = 15


@signals.setup_logging.connect
def _log_as_the_web_does(**_kwargs: Any) -> None:
    """Workers and beat log through settings.LOGGING, as the web does: JSON lines with the run, merchant and
    request of each (LOG_FORMAT, LOG_LEVEL). Without a receiver of this signal Celery replaces the root
    logger's handlers with its own plain format, and every worker line lost its run and merchant."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.beat_init.connect
def _beat_heartbeat(**_kwargs: Any) -> None:
    """Beat records its own heartbeat (for /healthz) from a thread beside its scheduler."""
    from tokenhub import heartbeats

    def loop() -> None:
        while True:
            with contextlib.suppress(Exception):  # liveness must never stop the scheduler
                heartbeats.beat("beat")
            threading.Event().wait(BEAT_HEARTBEAT_SECONDS)

    threading.Thread(target=loop, name="beat-heartbeat", daemon=True).start()
