"""GET /healthz: the database, the broker, and whether a worker and beat are alive (heartbeats).

503 when the database or broker does not answer, or no worker has been seen for WORKER_STALE_SECONDS:
without a worker no run can finish. Beat being down is reported but not fatal: workers also run recovery.
"""

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from tokenhub import heartbeats
from tokenhub.celery import app as celery_app

WORKER_STALE_SECONDS = 60
BEAT_STALE_SECONDS = 60


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure to answer is "down", whatever the driver raises
        return f"error: {type(exc).__name__}"
    return "ok"


def broker_status() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            if conn.transport.driver_type == "redis":
                conn.default_channel.client.ping()
    except Exception as exc:  # kombu raises transport-specific errors
        return f"error: {type(exc).__name__}"
    return "ok"


def liveness(kind: str, stale_after: float) -> str:
    try:
        seen = heartbeats.last_seen(kind)
    except Exception as exc:  # Redis down: we cannot tell, and say so
        return f"unknown: {type(exc).__name__}"
    if seen is None:
        return "missing"
    age = time.time() - seen
    return "ok" if age <= stale_after else f"stale: last seen {age:.0f}s ago"


@require_GET
def healthz(request):
    status = {
        "database": database_status(),
        "broker": broker_status(),
        "worker": liveness("worker", WORKER_STALE_SECONDS),
        "beat": liveness("beat", BEAT_STALE_SECONDS),
    }
    healthy = all(status[part] == "ok" for part in ("database", "broker", "worker"))
    status["broker_kind"] = settings.TOKENHUB_BROKER_DESCRIPTION.split(" (")[0]
    return JsonResponse({"status": "ok" if healthy else "degraded", **status}, status=200 if healthy else 503)
