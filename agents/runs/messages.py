"""What a merchant reads about a run that failed, stored in English and shown in the reader's language.

A run's `error_message` is written by a worker or by recovery, which serve no one in particular, so it is
kept in English: the record staff, admin and logs read. Every sentence that can be stored there is marked
for translation where it is defined (here, and the model errors in agents.llm.errors), and `error_text`
shows the stored sentence in the language active for the reader. A sentence with a number in it is stored
with the number filled in; it is recognised by its template and translated with the same number.
"""

from __future__ import annotations

import re
from functools import cache

from django.utils.translation import gettext, gettext_noop

TIMED_OUT_MESSAGE = gettext_noop("The run did not finish in time. Nothing was charged; please try again.")
INTERNAL_ERROR_MESSAGE = gettext_noop(
    "Something went wrong on our side. Nothing was charged; please try again."
)
NOT_STARTED_MESSAGE = gettext_noop(
    "No worker could start this run in time. Nothing was charged; please try again."
)
# What a merchant reads when the provider stayed busy until the run's retries ran out, by cause.
GAVE_UP_MESSAGES = {
    "rate_limited": gettext_noop(
        "The AI provider was too busy to answer after %(tries)s tries. Nothing was charged; "
        "please try again in a few minutes."
    ),
    "timeout": gettext_noop(
        "The AI provider did not answer in time after %(tries)s tries. Nothing was charged; "
        "please try again in a few minutes."
    ),
}
GAVE_UP_DEFAULT = gettext_noop(
    "The AI provider kept failing. Nothing was charged; please try again in a few minutes."
)
WORKER_LOST_MESSAGE = gettext_noop(
    "The run was interrupted %(times)s times while it was being written. Nothing was charged; please try again."
)
_TEMPLATES_WITH_A_NUMBER = (*GAVE_UP_MESSAGES.values(), WORKER_LOST_MESSAGE)


def gave_up_message(cause: str, tries: int) -> str:
    return GAVE_UP_MESSAGES.get(cause, GAVE_UP_DEFAULT) % {"tries": tries}


def worker_lost_message(times: int) -> str:
    return WORKER_LOST_MESSAGE % {"times": times}


@cache
def _template_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    patterns = []
    for template in _TEMPLATES_WITH_A_NUMBER:
        parts = re.split(r"%\((\w+)\)s", template)  # text, name, text, name, ..., text
        regex = "".join(
            re.escape(part) if i % 2 == 0 else rf"(?P<{part}>\d+)" for i, part in enumerate(parts)
        )
        patterns.append((re.compile(rf"\A{regex}\Z"), template))
    return tuple(patterns)


def error_text(stored: str) -> str:
    """`stored` (a run's English error message) in the active language; as stored when not ours."""
    if not stored:
        return ""
    for pattern, template in _template_patterns():
        if found := pattern.match(stored):
            return gettext(template) % {name: int(value) for name, value in found.groupdict().items()}
    return gettext(stored)
