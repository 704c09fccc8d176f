"""Security headers on dashboard responses, and templates that keep working under the CSP."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates", *Path(settings.BASE_DIR).glob("*/templates")]
# Emails are not pages: mail clients need inline styles and never see our CSP.
NOT_PAGES = {"emails"}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


def _page_templates() -> list[Path]:
    found = []
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            if not NOT_PAGES & set(path.relative_to(folder).parts):
                found.append(path)
    return sorted(found)


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.django_db
def test_a_dashboard_page_is_served_with_a_strict_content_security_policy(client, owner):
    client.force_login(owner)

    response = client.get(reverse("wallet"))

    policy = _directives(response.headers["Content-Security-Policy"])
    assert response.status_code == 200
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'", "https://checkout.stripe.com"]


def test_the_login_page_carries_the_policy_too(client):
    assert "script-src 'self'" in client.get(reverse("login")).headers["Content-Security-Policy"]


def test_the_api_docs_widen_only_their_own_styles_and_images(client):
    policy = _directives(client.get(reverse("api-docs")).headers["Content-Security-Policy"])

    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" in policy["style-src"] and "data:" in policy["img-src"]


@pytest.mark.parametrize("path", _page_templates(), ids=lambda path: str(path.relative_to(settings.BASE_DIR)))
def test_no_template_has_inline_script_handlers_or_style_attributes(path):
    text = path.read_text()

    assert not INLINE_SCRIPT.search(text), "inline <script>: move it to a file in static/"
    assert not INLINE_HANDLER.search(text), (
        "inline event handler: use a data- attribute and static/tokenhub.js"
    )
    assert not STYLE_ATTRIBUTE.search(text), "style attribute: use a class in static/tokenhub.css"
