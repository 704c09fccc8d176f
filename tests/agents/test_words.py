"""What a merchant or an API client reads: labels instead of keys, plain sentences instead of pydantic's,
no doubled messages, tool names and short references instead of slugs and UUIDs, styled error pages."""

import copy
import pickle

import pytest
from django.urls import reverse

from agents.errors import UnknownTool
from agents.runs.create import run_create
from agents.runs.execute import run_claim
from agents.runs.settle import run_fail, run_succeed
from agents.tools import registry
from agents.tools.messages import field_label
from merchants.actors import Actor
from tests.factories import MembershipFactory
from tests.plugins.workers import funded, listing
from wallets.models import Transfer

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="owner", merchant=funded(1_000_000))
    client.force_login(membership.user)
    return membership


def _succeed(run, output):
    from agents.llm import Completion

    claimed = run_claim(run_id=run.pk)
    completion = Completion(
        text="{}", input_tokens=412, output_tokens=530, model="qwen-plus", finish_reason="stop"
    )
    return run_succeed(run=claimed, claim=claimed.attempts, completion=completion, output=output)


def test_an_unknown_tool_says_so_once_however_the_error_is_copied():
    error = UnknownTool("nope")
    unpickled = pickle.loads(pickle.dumps(error))  # noqa: S301 - bytes this test just made
    for again in (copy.copy(error), unpickled, copy.deepcopy(error)):
        assert again.message == error.message
        assert again.message.count("There is no tool called") == 1
        assert again.details == {"tool": "nope"}


def test_a_field_label_reads_as_words():
    assert field_label("product_name") == "Product name"
    assert field_label("features.3") == "Features, item 4"
    assert field_label("seo.meta_description") == "SEO, meta description"


def test_a_tool_form_error_sits_next_to_its_field_without_the_key(client, member):
    response = client.post(
        reverse("tool", args=["listing-writer"]),
        {"product_name": "Lamp", "marketplace": "generic", "keywords": ",".join(["k"] * 40)},
    )
    form = response.context["form"]
    assert form.errors["keywords"] == ["Give at most 30 items."]
    assert "keywords:" not in response.content.decode()


def test_the_run_page_names_the_tool_and_labels_the_input(client, member):
    run = _succeed(
        run_create(merchant=member.merchant, tool="listing-writer", input=listing("Linen apron"), actor=SYSTEM),
        {"title": "Linen apron", "bullets": ["a", "b", "c"], "description": "d",
         "seo": {"title": "t", "meta_description": "m", "keywords": []}, "tags": []},
    )  # fmt: skip
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "Listing writer" in page and f"#{str(run.pk)[:8]}" in page
    assert "<th>Product name</th>" in page and "<th>product_name</th>" not in page
    assert "412 tokens read, 530 written" in page


def test_a_failed_run_shows_no_token_counts_it_never_had(client, member):
    run = run_create(merchant=member.merchant, tool="listing-writer", input=listing("Lamp"), actor=SYSTEM)
    claimed = run_claim(run_id=run.pk)
    run_fail(run=claimed, claim=claimed.attempts, code="moderation", message="The provider refused it.")
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "None" not in page
    assert "Nothing was charged" in page


def test_a_bot_run_shows_the_reply_as_a_conversation_not_a_dict(client, member):
    from agents.conversations import services as conversations

    conversation, _, run = conversations.conversation_start(
        merchant=member.merchant, actor=SYSTEM, message="Do you ship to Canada?"
    )
    _succeed(run, {"reply": "Yes, we ship to Canada.", "needs_human": False, "sources": ["kb-1"]})
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "Do you ship to Canada?" in page and "Yes, we ship to Canada." in page
    assert "{&#x27;reply&#x27;" not in page and "needs_human" not in page and "<pre>" not in page
    assert reverse("support-conversation", args=[conversation.pk]) in page


def test_the_runs_list_shows_tool_names_and_filters(client, member):
    run_create(merchant=member.merchant, tool="listing-writer", input=listing("Linen apron"), actor=SYSTEM)
    run_create(
        merchant=member.merchant,
        tool="marketing-copy",
        input={"product_name": "Mug", "channel": "sms"},
        actor=SYSTEM,
    )
    page = client.get(reverse("runs")).content.decode()
    assert "Listing writer" in page and "Marketing copy" in page
    assert "<td>listing-writer</td>" not in page

    only_copy = client.get(reverse("runs"), {"tool": "marketing-copy", "status": "queued"})
    assert [r.tool for r in only_copy.context["runs"]] == ["marketing-copy"]
    assert list(client.get(reverse("runs"), {"status": "succeeded"}).context["runs"]) == []
    tomorrow = client.get(reverse("runs"), {"since": "2999-01-01"})
    assert (
        list(tomorrow.context["runs"]) == [] and "No runs match these filters." in tomorrow.content.decode()
    )
    assert client.get(reverse("runs"), {"tool": "poem", "since": "yesterday"}).status_code == 200


def test_ledger_rows_of_a_run_name_the_tool_and_a_short_reference(member):
    run = run_create(merchant=member.merchant, tool="listing-writer", input=listing("Lamp"), actor=SYSTEM)
    _succeed(run, {"title": "Lamp", "bullets": ["a", "b", "c"], "description": "d",
                   "seo": {"title": "t", "meta_description": "m", "keywords": []}, "tags": []})  # fmt: skip
    memos = set(Transfer.objects.filter(wallet__merchant=member.merchant, kind__in=["hold", "settle"])
                .values_list("memo", flat=True))  # fmt: skip
    short = str(run.pk)[:8]
    assert memos == {
        f"Listing writer run #{short}",
        f"Listing writer run #{short}: 412 tokens read, 530 written",
    }


def test_a_missing_run_is_the_styled_404_with_the_navigation_and_the_reason(client, member):
    response = client.get(reverse("run-detail", args=["00000000-0000-0000-0000-000000000000"]))
    page = response.content.decode()
    assert response.status_code == 404
    assert "There is no such run in this store." in page
    assert 'id="site-nav"' in page and "favicon.svg" in page


def test_an_unknown_address_is_the_styled_404_without_internal_text(client, member):
    page = client.get("/no/such/page/").content.decode()
    assert "There is no page at this address" in page
    assert "Resolver404" not in page and "tried these URL patterns" not in page


def test_a_page_for_managers_is_a_styled_403_that_says_why(client):
    staff = MembershipFactory(role="staff")
    client.force_login(staff.user)
    response = client.get(reverse("api-keys"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "Only an owner or a manager of this store can open this page." in page
    assert 'id="site-nav"' in page


def test_a_server_error_is_the_styled_500_page(client, member):
    from tokenhub.views import server_error

    request = client.get(reverse("home")).wsgi_request
    response = server_error(request)
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert 'id="site-nav"' in response.content.decode()


def test_the_favicon_is_served(client):
    from django.contrib.staticfiles import finders

    assert finders.find("favicon.svg")
    with open(finders.find("favicon.svg")) as svg:
        assert "<svg" in svg.read()


def test_the_navigation_counts_the_conversations_waiting_for_a_person(client, member):
    from agents.conversations import services as conversations

    _, _, run = conversations.conversation_start(
        merchant=member.merchant, actor=SYSTEM, message="A person please"
    )
    _succeed(run, {"reply": "Handing over.", "needs_human": True, "sources": []})
    page = client.get(reverse("home")).content.decode()
    assert 'data-testid="support-inbox-count"' in page
    assert "1 conversation needs a person" in page


def test_no_count_shows_when_nothing_waits(client, member):
    assert 'data-testid="support-inbox-count"' not in client.get(reverse("home")).content.decode()


def test_every_page_says_when_the_answers_are_simulated(client, member, settings):
    settings.QWEN_SIMULATED = None
    settings.QWEN_BASE_URL = "http://127.0.0.1:8765/v1"
    assert "Simulated answers" in client.get(reverse("runs")).content.decode()
    settings.QWEN_BASE_URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    assert "Simulated answers" not in client.get(reverse("runs")).content.decode()
    settings.QWEN_SIMULATED = True  # the dev script says so outright, whatever the URL
    assert "Simulated answers" in client.get(reverse("runs")).content.decode()


def test_every_tool_has_a_name_the_lists_show():
    assert {tool.slug: tool.name for tool in registry.all()}["customer-service"] == "Customer-service bot"
