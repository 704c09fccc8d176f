"""Grounded answers: articles are chunked, the prompt carries only the chunks that match the message
(PostgreSQL full-text search, a substring fallback for Chinese), and replies cite the articles used."""

import pytest

from agents.runs.estimate import run_messages, tool_of
from tests.factories import ArticleFactory, MerchantFactory
from widgets import retrieval, services
from widgets.selectors import citations_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def system_prompt(merchant, message):
    messages = run_messages(
        tool=tool_of("customer-service"), input={"conversation": "c-1", "message": message}, merchant=merchant
    )
    return messages[0]["content"]


def test_a_long_article_is_cut_into_chunks_of_whole_paragraphs():
    body = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(10))

    chunks = retrieval.chunk_text(body)

    assert len(chunks) > 3 and all(len(c) <= retrieval.CHUNK_CHARS for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == body.replace("\n", "").replace(" ", "")
    assert retrieval.chunk_text("x" * 2000) == ["x" * 800, "x" * 800, "x" * 400]


def test_the_prompt_carries_only_the_chunks_that_match_the_message_out_of_a_long_knowledge_base():
    merchant = MerchantFactory(knowledge_base="Old profile text that must not be sent.")
    for i in range(40):
        ArticleFactory(merchant=merchant, title=f"Product care {i}", body=f"Wipe item {i} with a dry cloth.")
    shipping = ArticleFactory(
        merchant=merchant, title="Shipping", body="We ship to Canada and the United States in 5 to 7 days."
    )

    prompt = system_prompt(merchant, "Do you ship to Canada?")

    assert f"[art-{shipping.chunks.get().pk}] Shipping: We ship to Canada" in prompt
    assert prompt.count("[art-") <= retrieval.TOP_CHUNKS
    assert "Old profile text" not in prompt
    assert prompt.index(f"art-{shipping.chunks.get().pk}") < prompt.index("Answer with one JSON")


def test_chinese_questions_find_chinese_articles_by_substring():
    merchant = MerchantFactory()
    ArticleFactory(merchant=merchant, title="退货政策", body="未使用的商品可在30天内退货。")
    ArticleFactory(merchant=merchant, title="配送", body="我们配送到加拿大和美国，需要5到7天。")  # noqa: RUF001

    found = retrieval.relevant_chunks(merchant=merchant, message="你们配送到加拿大吗？")  # noqa: RUF001

    assert found and found[0].article.title == "配送"


def test_no_matching_article_says_so_instead_of_sending_everything():
    merchant = MerchantFactory()
    ArticleFactory(merchant=merchant, title="Shipping", body="We ship to Canada.")

    prompt = system_prompt(merchant, "Is the moon made of cheese?")

    assert "No article of the store's knowledge base matches" in prompt and "[art-" not in prompt


def test_without_articles_the_store_profile_knowledge_base_is_used_as_before():
    merchant = MerchantFactory(knowledge_base="Shipping: we ship to Canada.")

    assert "[kb-1] Shipping: we ship to Canada." in system_prompt(merchant, "Canada?")


def test_one_store_never_retrieves_another_stores_articles():
    mine, theirs = MerchantFactory(), MerchantFactory()
    ArticleFactory(merchant=mine, title="Hours", body="Open 9 to 5.")
    secret = ArticleFactory(merchant=theirs, title="Shipping secret", body="We ship to Canada for free.")

    prompt = system_prompt(mine, "Do you ship to Canada for free?")

    assert "free" not in prompt and "secret" not in prompt
    assert citations_of(merchant=mine, labels=[f"art-{secret.chunks.get().pk}"]) == []


def test_csv_and_markdown_imports_make_articles():
    merchant = MerchantFactory(knowledge_base="Shipping: we ship to Canada.\n\nReturns: 30 days.")

    from_csv = services.articles_import_csv(
        merchant=merchant, text="title,body,url\nShipping,We ship to Canada.,https://shop.example/s\n"
    )
    from_md = services.articles_import_markdown(
        merchant=merchant,
        text="Intro text.\n\n# Returns\nWithin 30 days.\n\n## Sizes\nS, M, L.\n",
        default_title="faq",
    )
    from_profile = services.articles_import_knowledge_base(merchant=merchant)

    assert [(a.title, a.url) for a in from_csv] == [("Shipping", "https://shop.example/s")]
    assert [a.title for a in from_md] == ["faq", "Returns", "Sizes"]
    assert [a.title for a in from_profile] == ["Shipping", "Returns"]
    with pytest.raises(services.InvalidInput):
        services.articles_import_csv(merchant=merchant, text="name,text\na,b\n")
