"""Errors to Sentry when SENTRY_DSN is set, from the web processes and the Celery workers alike."""

from __future__ import annotations


def sentry_init(*, dsn: str, environment: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        # Merchants' prompts and answers are theirs: no request bodies or local variables leave us.
        send_default_pii=False,
        include_local_variables=False,
        traces_sample_rate=0.0,
    )
