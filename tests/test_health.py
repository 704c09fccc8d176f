import pytest
from django.urls import reverse

from tokenhub.celery import app as celery_app


@pytest.mark.django_db
@pytest.mark.redis
def test_healthz_answers_ok_when_database_and_broker_answer(client):
    response = client.get(reverse("healthz"))

    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "ok"


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
