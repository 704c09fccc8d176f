"""The API explains a bad request in words its client can act on: the field's label and a plain sentence,
never pydantic's wording or a doubled message."""

import pytest

from agents.tools.messages import field_label
from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


def test_the_api_names_an_unknown_tool_once(api):
    response = api.post("/api/v1/runs", {"tool": "nope", "input": {}}, format="json")
    error = error_of(response)
    assert error["code"] == "unknown_tool"
    assert error["message"].count("There is no tool called") == 1
    assert '"nope"' in error["message"]


@pytest.mark.parametrize(
    ("tool", "data", "field", "expected"),
    [
        ("listing-writer", {"product_name": "Lamp", "language": "english"}, "language",
         "Use a language code such as en, zh-CN or pt-BR."),
        ("listing-writer", {"product_name": ""}, "product_name", "This cannot be empty."),
        ("listing-writer", {"category": "Lamps"}, "product_name", "This is required."),
        ("listing-writer", {"product_name": "Lamp", "marketplace": "ebay"}, "marketplace",
         "Use one of: generic, amazon, shopify or taobao."),
        ("listing-writer", {"product_name": "Lamp", "colour": "red"}, "colour", "This tool has no such field; remove it."),
        ("listing-writer", {"product_name": "x" * 201}, "product_name", "Use at most 200 characters."),
        ("marketing-copy", {"product_name": "Lamp", "channel": "email", "variants": 9}, "variants", "Use 5 or less."),
    ],
)  # fmt: skip
def test_the_api_explains_a_bad_field_in_plain_words_with_its_label(api, tool, data, field, expected):
    error = error_of(api.post("/api/v1/runs", {"tool": tool, "input": data}, format="json"))
    assert error["details"][field] == expected
    assert f"{field_label(field)}: {expected}" in error["message"]
    for jargon in ("String should", "pattern", "Input should", "Field required", "^[a-z]"):
        assert jargon not in error["message"]


def test_a_model_level_rule_keeps_its_own_sentence(api):
    error = error_of(
        api.post("/api/v1/runs", {"tool": "marketing-copy", "input": {"channel": "sms"}}, format="json")
    )
    assert "brief" in error["details"]["product_name"]
