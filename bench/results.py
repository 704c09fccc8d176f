"""Each benchmark owns one `## Section` of bench/RESULTS.md and rewrites only that section."""

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(heading: str, section: str) -> None:
    """Replace the section that starts with `heading` (e.g. "## Ledger") by `section`, or append it."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section.rstrip() + "\n\n" + (text[end + 1 :] if end != -1 else "")
    RESULTS.write_text(text.rstrip() + "\n")
