"""The published OpenAPI schema: valid, and the API keeps every promise it makes (schemathesis)."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import checks
from schemathesis.specs.openapi import checks as openapi_checks

from tokenhub.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

# No 5xx, and every answer documented: its status, content type, headers and body.
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture
def _keep_test_connection():
    """Requests go through the real WSGI app, which closes the DB connection after each one (and with it
    the test's transaction); Django's test client disconnects the same signal handlers."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(funded_merchant, key_for, settings, _keep_test_connection):
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    return {"Authorization": f"Bearer {key_for(funded_merchant)}"}


@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_every_generated_request_gets_an_answer_the_schema_documents(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)


def test_the_schema_documents_bearer_auth_and_the_error_body_on_every_operation(client):
    document = client.get("/api/schema/?format=json").json()
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "thk_<prefix>.<secret>",
        "description": "An API key from the dashboard's API keys page or `manage.py create_api_key`.",
    }
    operations = [op for item in document["paths"].values() for op in item.values()]
    # 10, the conversations list and support outcomes (the chat widget issue), sponsorships
    assert len(operations) == 13
    for operation in operations:
        assert {"bearerAuth": []} in operation["security"]
        for status in ("401", "403", "429"):
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}


def test_the_docs_page_serves_swagger_ui_from_this_server(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")
