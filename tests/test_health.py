import time

import pytest
from django.urls import reverse

from tokenhub import heartbeats
from tokenhub.celery import app as celery_app


@pytest.mark.django_db
@pytest.mark.redis
def test_healthz_answers_ok_when_database_broker_and_a_worker_answer(client):
    heartbeats.beat("worker")
    heartbeats.beat("beat")
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    body = response.json()
    assert (body["database"], body["broker"], body["worker"], body["beat"]) == ("ok", "ok", "ok", "ok")


@pytest.mark.django_db
def test_healthz_answers_503_when_no_worker_has_been_seen_for_a_minute(client, monkeypatch):
    monkeypatch.setattr(heartbeats, "last_seen", lambda kind: time.time() - 61)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["worker"].startswith("stale")


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_down(client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["broker"].startswith("error")


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_is_down(client, monkeypatch):
    from django.db import OperationalError

    from tokenhub import health

    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", refused)

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["database"].startswith("error")


def test_stripe_and_openai_import_beside_the_platform_folder():
    import openai
    import stripe

    assert stripe.Webhook is not None
    assert openai.OpenAI is not None
