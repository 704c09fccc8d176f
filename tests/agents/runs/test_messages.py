"""A failed run's message is stored in English and read in the reader's language, numbers included."""

import pytest
from django.urls import reverse
from django.utils import translation

from agents.llm.errors import InvalidModelOutput
from agents.runs.create import run_create
from agents.runs.execute import run_claim
from agents.runs.messages import (
    GAVE_UP_DEFAULT,
    INTERNAL_ERROR_MESSAGE,
    error_text,
    gave_up_message,
    worker_lost_message,
)
from agents.runs.settle import run_fail
from merchants.actors import Actor
from tests.factories import MembershipFactory
from tests.plugins.workers import funded, listing

# The Chinese a store owner reads (locale/zh_Hans), written with Chinese punctuation.
GAVE_UP_AFTER_5_TRIES_ZH = "已尝试 5 次，AI 服务商仍未按时回答。未扣费，请过几分钟再试。"  # noqa: RUF001
INTERNAL_ERROR_ZH = "我们这边出了点问题，未扣费，请重试。"  # noqa: RUF001
INVALID_OUTPUT_ZH = "AI 模型返回的内容格式不对，请重试。"  # noqa: RUF001


def test_a_stored_sentence_with_a_number_reads_in_chinese_with_the_same_number():
    stored = gave_up_message("timeout", 5)
    assert stored.startswith("The AI provider did not answer in time after 5 tries.")
    with translation.override("zh-hans"):
        assert error_text(stored) == GAVE_UP_AFTER_5_TRIES_ZH
        assert "4 次" in error_text(worker_lost_message(4))


def test_a_stored_sentence_without_a_number_reads_in_chinese():
    with translation.override("zh-hans"):
        assert error_text(INTERNAL_ERROR_MESSAGE) == INTERNAL_ERROR_ZH
        assert error_text(gave_up_message("provider_error", 3)) == error_text(GAVE_UP_DEFAULT)
        assert error_text(InvalidModelOutput().message) == INVALID_OUTPUT_ZH


def test_a_message_that_is_not_one_of_ours_is_shown_as_stored_and_none_is_empty():
    with translation.override("zh-hans"):
        assert error_text("Product name: This field is required.") == "Product name: This field is required."
        assert error_text("") == ""
    assert error_text(gave_up_message("timeout", 5)) == gave_up_message("timeout", 5)  # English: as stored


@pytest.mark.django_db
def test_a_failed_run_reads_in_chinese_on_the_dashboard_and_in_english_in_the_record(client):
    membership = MembershipFactory(role="owner", merchant=funded(1_000_000), user__language="zh-hans")
    client.force_login(membership.user)
    created = run_create(
        merchant=membership.merchant, tool="listing-writer", input=listing("Lamp"), actor=Actor.system("test")
    )
    claimed = run_claim(run_id=created.pk)
    run = run_fail(run=claimed, claim=claimed.attempts, code="timeout", message=gave_up_message("timeout", 5))

    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()

    assert GAVE_UP_AFTER_5_TRIES_ZH in page
    assert "did not answer" not in page
    assert page.count("未扣费") == 1  # the sentence says it; the page does not add it again
    assert "<th>商品名称</th>" in page  # the input's label too, as the tool's form says it
    run.refresh_from_db()
    assert run.error_message == gave_up_message("timeout", 5)
