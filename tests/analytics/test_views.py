"""The operator's analytics page: staff only, rendered from the fact table, CSP-clean."""

import pytest
from django.urls import reverse

from agents.runs.create import run_create
from agents.runs.execute import run_execute
from analytics.services import economics_refresh
from tests.factories import MembershipFactory, UserFactory
from tests.plugins.workers import SYSTEM, funded, listing

pytestmark = pytest.mark.django_db

URL = "/staff/analytics/"


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def test_the_page_is_for_staff_only(client):
    client.force_login(MembershipFactory().user)
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_see_tools_models_charts_cohorts_and_the_bot_section(staff_client, llm_endpoint):
    merchant = funded(1_000_000)
    run = run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM)
    run_execute(run_id=run.pk)
    economics_refresh()

    response = staff_client.get(URL, {"period": "month"})

    assert response.status_code == 200
    html = response.content.decode()
    for testid in ("analytics-tools", "analytics-models", "analytics-cohorts", "analytics-bot"):
        assert f'data-testid="{testid}"' in html
    assert "listing-writer" in html and "<svg" in html and "<rect" in html
    assert "style=" not in html and "<script>" not in html  # the CSP forbids both


def test_the_rebuild_button_rebuilds_and_returns_to_the_same_range(staff_client):
    response = staff_client.post(reverse("staff-analytics-refresh"), {"query": "period=month"})
    assert response.status_code == 302 and response["Location"] == f"{URL}?period=month"


def test_admin_index_links_to_the_page(staff_client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    staff_client.force_login(staff)
    assert URL in staff_client.get("/admin/").content.decode()
