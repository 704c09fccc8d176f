"""The tools by slug."""

from __future__ import annotations

from agents.tools import customer_service, listing_writer, marketing_copy
from agents.tools.base import Tool, UnknownTool

_TOOLS: dict[str, Tool] = {
    tool.slug: tool for tool in (listing_writer.TOOL, customer_service.TOOL, marketing_copy.TOOL)
}


def get(slug: str) -> Tool:
    try:
        return _TOOLS[slug]
    except (KeyError, TypeError):
        raise UnknownTool(str(slug)) from None


def all() -> list[Tool]:
    return list(_TOOLS.values())


def slugs() -> list[str]:
    return list(_TOOLS)
