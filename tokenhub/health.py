"""GET /healthz: is the database answering, is the broker answering. 503 when either is not."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from tokenhub.celery import app as celery_app


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


@require_GET
def healthz(request):
    status = {"database": database_status(), "broker": broker_status()}
    healthy = all(value == "ok" for value in status.values())
    status["broker_kind"] = settings.TOKENHUB_BROKER_DESCRIPTION.split(" (")[0]
    return JsonResponse({"status": "ok" if healthy else "degraded", **status}, status=200 if healthy else 503)
