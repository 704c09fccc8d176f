"""Choose the broker and Redis at start-up: the configured ones, else the local Redis, else embedded.

Kept free of Django imports: settings call it before Django is configured.
"""

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BrokerChoice:
    url: str
    redis_url: str
    description: str
    transport_options: dict = field(default_factory=dict)


def redis_reachable(url: str, timeout: float = 0.3) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout):
            return True
    except OSError:
        return False


def choose_broker(*, broker_url: str, redis_url: str, base_dir: Path, embedded: bool = False) -> BrokerChoice:
    """An explicit setting always wins; only a fully unconfigured dev machine falls back.

    `embedded` (TOKENHUB_EMBEDDED) skips looking for a local Redis, as on a machine that has none.
    """
    visibility: dict[str, Any] = {"visibility_timeout": 3600}
    if broker_url:
        options: dict[str, Any] = visibility if broker_url.startswith(("redis://", "rediss://")) else {}
        return BrokerChoice(
            broker_url, redis_url or _redis_of(broker_url), f"configured ({_safe(broker_url)})", options
        )
    if redis_url:
        return BrokerChoice(redis_url, redis_url, f"Redis ({_safe(redis_url)})", visibility)
    if not embedded and redis_reachable(LOCAL_REDIS_URL):
        return BrokerChoice(LOCAL_REDIS_URL, LOCAL_REDIS_URL, f"local Redis ({LOCAL_REDIS_URL})", visibility)
    folder = base_dir / ".dev" / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        # kombu's default is ./control, which would litter the checkout.
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    return BrokerChoice(
        "filesystem://", "", f"embedded file-system broker ({folder}); no Redis found", options
    )


def _redis_of(url: str) -> str:
    return url if url.startswith(("redis://", "rediss://")) else ""


def _safe(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(parsed.password, "***")
    return url


def broker_transport(broker_url: str) -> str | None:
    """The kombu transport for `broker_url`: ours for plain Redis (tokenhub/broker.py), else kombu's own
    for the URL's scheme (None)."""
    return "tokenhub.broker:Transport" if broker_url.startswith("redis://") else None
