"""The listing writer: a product listing that follows its marketplace's rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agents.tools.base import MerchantProfile, Tool, input_json, resolve_language, voice_or_default

Marketplace = Literal["generic", "amazon", "shopify", "taobao"]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]


def _attribute_value(value: object) -> str | int | float:
    # One check instead of a str|int|float union: a union reports one error per member, none named well.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string or a number")
    if isinstance(value, str) and len(value) > 200:
        raise ValueError("must be at most 200 characters")
    return value


AttributeValue = Annotated[
    str | int | float, PlainValidator(_attribute_value, json_schema_input_type=str | int | float)
]


@dataclass(frozen=True)
class MarketplaceRules:
    title_max: int
    bullets: int | None  # exact count required, or None for "3 to 7"
    bullet_max: int
    seo_title_max: int
    meta_description_max: int


# One table feeds both the prompt and the output check, so what we ask for is what we accept.
MARKETPLACE_RULES: dict[str, MarketplaceRules] = {
    "generic": MarketplaceRules(150, None, 300, 70, 160),
    "shopify": MarketplaceRules(150, None, 300, 70, 160),
    "amazon": MarketplaceRules(200, 5, 500, 200, 500),
    "taobao": MarketplaceRules(60, None, 300, 60, 160),
}
MAX_BULLETS = 10


def rules_text(marketplace: str) -> str:
    rules = MARKETPLACE_RULES[marketplace]
    bullets = f"exactly {rules.bullets} bullets" if rules.bullets else "3 to 7 bullets"
    return (
        f"- title: at most {rules.title_max} characters\n"
        f"- bullets: {bullets}, each at most {rules.bullet_max} characters\n"
        f"- seo.title: at most {rules.seo_title_max} characters\n"
        f"- seo.meta_description: at most {rules.meta_description_max} characters"
    )


class ListingInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    product_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    category: Short | None = None
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=50)], AttributeValue] = Field(
        default_factory=dict, max_length=30
    )
    features: list[Phrase] = Field(default_factory=list, max_length=20)
    keywords: list[Short] = Field(default_factory=list, max_length=30)
    audience: Phrase | None = None
    tone: Short | None = None
    language: Language | None = Field(default=None, description="Defaults to the store's language, else en.")
    marketplace: Marketplace = "generic"


class Seo(BaseModel):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    meta_description: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    keywords: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=30
    )


class ListingOutput(BaseModel):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    bullets: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(
        min_length=1, max_length=MAX_BULLETS
    )
    description: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    seo: Seo
    tags: list[Annotated[str, StringConstraints(max_length=100)]] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def follows_marketplace_rules(self, info: ValidationInfo) -> ListingOutput:
        listing_input = (info.context or {}).get("input")
        marketplace = listing_input.marketplace if listing_input is not None else "generic"
        rules = MARKETPLACE_RULES[marketplace]
        checks = [
            (
                "title",
                len(self.title) <= rules.title_max,
                f"at most {rules.title_max} characters on {marketplace}",
            ),
            (
                "bullets",
                rules.bullets is None or len(self.bullets) == rules.bullets,
                f"exactly {rules.bullets} bullets on {marketplace}, got {len(self.bullets)}",
            ),
            (
                "bullets",
                all(len(b) <= rules.bullet_max for b in self.bullets),
                f"each bullet at most {rules.bullet_max} characters on {marketplace}",
            ),
            (
                "seo.title",
                len(self.seo.title) <= rules.seo_title_max,
                f"at most {rules.seo_title_max} characters on {marketplace}",
            ),
            (
                "seo.meta_description",
                len(self.seo.meta_description) <= rules.meta_description_max,
                f"at most {rules.meta_description_max} characters on {marketplace}",
            ),
        ]
        for field, ok, rule in checks:
            if not ok:
                raise PydanticCustomError(
                    "marketplace_rule", "{field} must be {rule}", {"field": field, "rule": rule}
                )
        return self


def _variables(data: ListingInput, profile: MerchantProfile) -> dict[str, str]:
    language = resolve_language(data.language, profile)
    return {
        "store_name": profile.store_name,
        "brand_voice": voice_or_default(profile),
        "language": language,
        "tone": data.tone or "match the brand voice",
        "marketplace": data.marketplace,
        "marketplace_rules": rules_text(data.marketplace),
        "input_json": input_json(data.model_copy(update={"language": language})),
    }


TOOL = Tool(
    slug="listing-writer",
    name="Listing writer",
    description=(
        "Writes a product listing - title, bullets, description, SEO fields and tags - "
        "following the chosen marketplace's length and format rules."
    ),
    input_model=ListingInput,
    output_model=ListingOutput,
    model="qwen-plus",
    max_tokens=1500,
    prompt_stem="listing_writer",
    variables=_variables,  # type: ignore[arg-type]
)
