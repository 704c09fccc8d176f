"""Template filters that show a run the way a merchant knows it: the tool's name, a short reference."""

from typing import Any

from django import template
from django.utils.translation import gettext

from agents import tool_labels
from agents.tools.messages import field_label

register = template.Library()


@register.filter
def tool_name(slug: Any) -> str:
    """`listing-writer` → `Listing writer` (in the page's language); an unknown slug is shown as it is."""
    return tool_labels.tool_name(str(slug))


@register.filter
def tool_description(slug: Any) -> str:
    return tool_labels.tool_description(str(slug))


@register.filter
def short_ref(run_id: Any) -> str:
    """The first 8 characters of a run's id: enough to tell runs apart and to find one in the API."""
    return str(run_id)[:8]


@register.filter
def input_label(name: Any) -> str:
    """A tool input's key as the label its form uses, in the reader's language: `product_name` →
    `Product name` (the form's own msgid, agents/forms.py), 商品名称 in Chinese."""
    return gettext(field_label(str(name)))


@register.filter
def input_value(value: Any) -> str:
    """A stored input value as text: lists as a comma-separated line, attributes as `name: value` pairs."""
    if isinstance(value, dict):
        return "; ".join(f"{key}: {item}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
