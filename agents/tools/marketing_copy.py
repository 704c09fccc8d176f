"""The marketing-copy writer: N variants of a headline, body and call to action for one channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from agents.tools.base import MerchantProfile, Tool, input_json, resolve_language, voice_or_default

Channel = Literal["email", "social", "sms", "ad"]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]
MAX_VARIANTS = 5


@dataclass(frozen=True)
class ChannelRules:
    headline_max: int
    body_max: int
    headline_required: bool = True
    cta_max: int = 40


# One table feeds both the prompt and the output check. SMS has no headline slot, so it may be empty;
# ad limits follow the common search-ad sizes (30-character headline, 90-character description).
CHANNEL_RULES: dict[str, ChannelRules] = {
    "email": ChannelRules(headline_max=80, body_max=2000),
    "social": ChannelRules(headline_max=100, body_max=280),
    "sms": ChannelRules(headline_max=60, body_max=160, headline_required=False),
    "ad": ChannelRules(headline_max=30, body_max=90),
}


def rules_text(channel: str) -> str:
    rules = CHANNEL_RULES[channel]
    headline = f"at most {rules.headline_max} characters" + (
        "" if rules.headline_required else ", may be empty"
    )
    if channel == "email":
        headline = "the email subject line, " + headline
    return (
        f"- headline: {headline}\n"
        f"- body: at most {rules.body_max} characters\n"
        f"- cta: a short call to action, at most {rules.cta_max} characters"
    )


class MarketingInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    product_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    brief: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    channel: Channel
    audience: Phrase | None = None
    tone: Short | None = None
    call_to_action: Short | None = None
    language: Language | None = Field(default=None, description="Defaults to the store's language, else en.")
    variants: int = Field(default=3, ge=1, le=MAX_VARIANTS)

    @model_validator(mode="after")
    def names_a_product_or_a_brief(self) -> MarketingInput:
        if not self.product_name and not self.brief:
            raise PydanticCustomError(
                "missing", "Give a product name or a brief (or both).", {"field": "product_name"}
            )
        return self


class Variant(BaseModel):
    headline: Annotated[str, StringConstraints(max_length=200)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=5000)]
    cta: Annotated[str, StringConstraints(max_length=100)] = ""


class MarketingOutput(BaseModel):
    variants: list[Variant] = Field(min_length=1, max_length=MAX_VARIANTS)

    @model_validator(mode="after")
    def fits_the_channel_and_count(self, info: ValidationInfo) -> MarketingOutput:
        marketing_input = (info.context or {}).get("input")
        if marketing_input is None:
            return self
        if len(self.variants) != marketing_input.variants:
            raise PydanticCustomError(
                "variant_count",
                "expected {expected} variants, got {got}",
                {"field": "variants", "expected": marketing_input.variants, "got": len(self.variants)},
            )
        channel = marketing_input.channel
        rules = CHANNEL_RULES[channel]
        for i, variant in enumerate(self.variants):
            checks = [
                (
                    "headline",
                    len(variant.headline) <= rules.headline_max,
                    f"at most {rules.headline_max} characters",
                ),
                ("headline", bool(variant.headline) or not rules.headline_required, "present"),
                ("body", len(variant.body) <= rules.body_max, f"at most {rules.body_max} characters"),
                ("cta", len(variant.cta) <= rules.cta_max, f"at most {rules.cta_max} characters"),
            ]
            for name, ok, rule in checks:
                if not ok:
                    field = f"variants.{i}.{name}"
                    raise PydanticCustomError(
                        "channel_rule",
                        "{field} must be {rule} for {channel}",
                        {"field": field, "rule": rule, "channel": channel},
                    )
        return self


def _variables(data: MarketingInput, profile: MerchantProfile) -> dict[str, str]:
    language = resolve_language(data.language, profile)
    return {
        "store_name": profile.store_name,
        "brand_voice": voice_or_default(profile),
        "language": language,
        "tone": data.tone or "match the brand voice",
        "channel": data.channel,
        "channel_rules": rules_text(data.channel),
        "variants": str(data.variants),
        "input_json": input_json(data.model_copy(update={"language": language})),
    }


TOOL = Tool(
    slug="marketing-copy",
    name="Marketing copy",
    description=(
        "Writes 1 to 5 variants of marketing copy - headline, body and call to action - for email, "
        "social posts, SMS or ads, each within its channel's length limits."
    ),
    input_model=MarketingInput,
    output_model=MarketingOutput,
    model="qwen-plus",
    max_tokens=1200,
    prompt_stem="marketing_copy",
    variables=_variables,  # type: ignore[arg-type]
)
