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


def checkpoint_revision(checkpoint: str) -> str:
    """What identifies the exact weights: the Hub commit of the cached snapshot, or, for local files
    and folders, a digest of their names, sizes and modification times. "" when unknown."""
    import hashlib

    local = checkpoint.removeprefix("timm:").partition("@")[2] if checkpoint.startswith("timm:") else checkpoint
    path = Path(local).expanduser() if local else None
    if path is not None and path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for file in files:
            stat = file.stat()
            digest.update(f"{file.relative_to(path.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return "local:" + digest.hexdigest()[:16]
    repo = f"timm/{checkpoint.removeprefix('timm:')}" if checkpoint.startswith("timm:") else checkpoint
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo, "config.json")
    except (ImportError, ValueError):
        return ""
    return f"hub:{Path(cached).parent.name}" if isinstance(cached, str) else ""
