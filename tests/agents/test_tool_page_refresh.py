"""A tool page refreshes its sidebar (recent runs, available tokens) when a run on it finishes."""

import pytest
from django.urls import reverse

from agents.runs.create import run_create
from merchants.actors import Actor
from tests.factories import MembershipFactory
from tests.plugins.workers import funded, listing

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="owner", merchant=funded(1_000_000))
    client.force_login(membership.user)
    return membership


def test_the_sidebar_listens_for_a_finished_run(client, member):
    page = client.get(reverse("tool", args=["listing-writer"])).content.decode()
    assert 'hx-trigger="run-finished from:body"' in page
    assert "?part=sidebar" in page


def test_the_sidebar_fragment_lists_the_new_run_and_the_balance_after_it(client, member):
    run_create(
        merchant=member.merchant, tool="listing-writer", input=listing("Linen apron"), actor=Actor.system("t")
    )
    response = client.get(
        reverse("tool", args=["listing-writer"]), {"part": "sidebar"}, HTTP_HX_REQUEST="true"
    )
    fragment = response.content.decode()
    assert "<html" not in fragment and "<form" not in fragment
    assert "Linen apron" in fragment
    assert 'data-testid="sidebar-available"' in fragment and "1,000,000" not in fragment
