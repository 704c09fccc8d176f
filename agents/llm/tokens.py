"""Counting Qwen tokens offline, with the tokenizer the `dashscope` package ships.

Every Qwen chat model (qwen-flash, qwen-plus, qwen-max, qwen3-*) shares one vocabulary file, so one
tokenizer instance serves them all. Loading it reads a ~2 MB vocabulary and builds a tiktoken encoder
(about a second), so it is built once per process, lazily, under a lock; encoding itself is thread-safe
(tiktoken's encoder is immutable Rust).

This module imports nothing from Django: the simulator and the tools use it too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Protocol

# Qwen formats a chat as ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message. Besides the
# content, each message costs <|im_start|>, the role word, "\n", <|im_end|> and "\n": 5 tokens.
MESSAGE_OVERHEAD_TOKENS = 5
# The prompt ends with `<|im_start|>assistant\n`, which primes the reply: 3 tokens, once per request.
REPLY_PRIMING_TOKENS = 3


class _Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


_lock = threading.Lock()
_tokenizer: _Encoder | None = None


def get_tokenizer() -> _Encoder:
    """The process-wide Qwen tokenizer, built on first use."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:  # another thread may have built it while we waited
                from dashscope import get_tokenizer as dashscope_tokenizer

                # Every model name starting with "qwen" maps to the same vocabulary file.
                _tokenizer = dashscope_tokenizer("qwen-plus")
    return _tokenizer


def count_tokens(text: str) -> int:
    """Tokens in a piece of text (no chat formatting)."""
    if not text:
        return 0
    return len(get_tokenizer().encode(text))


def count_prompt_tokens(messages: Iterable[Mapping[str, Any]], model: str = "qwen-plus") -> int:
    """Prompt tokens a Qwen chat request with these `{role, content}` messages is billed for.

    `model` is accepted for the day a model ships another vocabulary; today all Qwen chat models share one.
    The result matches the provider's `usage.prompt_tokens` to within a few tokens (system prompts the
    provider injects are not counted), which is what a hold estimate needs.
    """
    del model  # one vocabulary for every Qwen chat model (see module docstring)
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        content = message.get("content") or ""
        if not isinstance(content, str):  # multi-part content: count its text parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
        counted = _count_system_tokens(content) if message.get("role") == "system" else count_tokens(content)
        total += MESSAGE_OVERHEAD_TOKENS + counted
    return total


@lru_cache(maxsize=256)
def _count_system_tokens(text: str) -> int:
    # A tool's system prompt is the same for every run of one store until its profile changes, and it is
    # the longest message: counting it once per process takes the tokenizer off most runs' create path.
    return count_tokens(text)
