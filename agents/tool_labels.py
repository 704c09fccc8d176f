"""The tools' names and descriptions as the dashboard shows them, in the reader's language.

agents/tools/ imports nothing from Django (the simulator and the benchmarks load it bare), so the
translated words live here, keyed by slug; a tool missing here shows the English from its definition.
"""

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from agents.tools import registry

NAMES: dict[str, Promise] = {
    "listing-writer": _("Listing writer"),
    "marketing-copy": _("Marketing copy"),
    "customer-service": _("Customer-service bot"),
}
DESCRIPTIONS: dict[str, Promise] = {
    "listing-writer": _(
        "Writes a product listing - title, bullets, description, SEO fields and tags - "
        "following the chosen marketplace's length and format rules."
    ),
    "marketing-copy": _(
        "Writes 1 to 5 variants of marketing copy - headline, body and call to action - for email, "
        "social posts, SMS or ads, each within its channel's length limits."
    ),
    "customer-service": _(
        "Answers a customer's message from the store's knowledge base, citing the sections it used, "
        "and hands the conversation to a person when it cannot help."
    ),
}


def tool_name(slug: str) -> str:
    if slug in NAMES:
        return str(NAMES[slug])
    try:
        return registry.get(slug).name
    except registry.UnknownTool:
        return slug


def tool_description(slug: str) -> str:
    if slug in DESCRIPTIONS:
        return str(DESCRIPTIONS[slug])
    try:
        return registry.get(slug).description
    except registry.UnknownTool:
        return ""
