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
