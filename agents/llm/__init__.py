"""The LLM client: the only code that talks to the model endpoint.

- `errors`    what a call can end in (the bottom of the package)
- `tokens`    counting Qwen tokens offline
- `ratelimit` per-model request and token limits shared through Redis (Lua in `.lua` files beside it)
- `deadline`  a total deadline per call, and aborting a call from another thread
- `client`    `complete()` and `stream()`

The names below are the package's public surface.
"""

from agents.llm.client import Completion, CompletionStream, checked_usage, complete, stream
from agents.llm.errors import (
    InvalidModelOutput,
    LLMError,
    ModelBusy,
    ModelRejected,
    ProviderArrearage,
    map_error,
)

__all__ = [
    "Completion",
    "CompletionStream",
    "InvalidModelOutput",
    "LLMError",
    "ModelBusy",
    "ModelRejected",
    "ProviderArrearage",
    "checked_usage",
    "complete",
    "map_error",
    "stream",
]
