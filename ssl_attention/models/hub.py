"""Reaching the Hugging Face Hub: fail fast when it is offline instead of retrying for a minute."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse


def is_local(checkpoint: str) -> bool:
    """True when ``checkpoint`` names an existing local file or directory."""
    return Path(checkpoint).expanduser().exists()


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint accepts a TCP connection (False when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def use_offline_mode_if_unreachable() -> bool:
    """Switch huggingface_hub to offline mode (cache only) when the Hub cannot be reached.

    Without this, each failed download retries with back-off for about half a minute. Returns True when
    offline mode is (now) on.
    """
    if hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:  # already imported modules read the constant, not the environment
        import huggingface_hub.constants as hf_constants

        hf_constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of transformers
        pass
    return True
