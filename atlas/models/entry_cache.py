"""A model's manifest entry kept beside its maps, so a rebuild whose maps are all cached loads no model.

``maps/<model>/model.json`` records what was asked for (checkpoint, weights mode, input size, methods,
heads, code version) and the entry the loaded model produced. The entry is reused only while it still
describes what loading would give now: the same weights revision for pretrained weights; for ``auto``
that fell back to random weights, only while pretrained weights are still unobtainable.
"""

from __future__ import annotations

import json
from pathlib import Path

import ssl_attention
from atlas.core.atomic import write_text_atomic
from atlas.core.manifest import FORMAT_VERSION, ModelEntry
from ssl_attention.models import ModelRequest
from ssl_attention.models.hub import checkpoint_revision, hub_reachable, is_local

ENTRY_FILE = "model.json"


def request_identity(request: ModelRequest, weights: str, image_size: tuple[int, int] | None,
                     methods: tuple[str, ...] | None, per_head: bool | None, query_layers: str = "none") -> dict:
    """Everything about a model request that changes the entry it produces (``query_layers``: the
    canonical ``--query-layers`` value)."""
    identity = {
        "checkpoint": request.checkpoint,
        "weights": weights,
        "image_size": list(image_size) if image_size else None,
        "methods": list(methods) if methods else None,
        "per_head": per_head,
        "library": ssl_attention.__version__,
        "format": FORMAT_VERSION,
    }
    if query_layers != "none":  # absent without rows: records of builds without them stay valid
        identity["query_layers"] = query_layers
    return identity


def save_entry(maps_dir: Path, identity: dict, entry: ModelEntry) -> None:
    """Remember the entry a request produced."""
    text = json.dumps({"request": identity, "entry": entry.to_json(maps=False)}, indent=2, sort_keys=True) + "\n"
    write_text_atomic(maps_dir / entry.name / ENTRY_FILE, text)


def cached_entry(maps_dir: Path, request: ModelRequest, identity: dict) -> ModelEntry | None:
    """The remembered entry for this request if it is still what loading the model would give."""
    try:
        data = json.loads((maps_dir / request.name / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if data.get("request") != identity:
        return None
    try:
        entry = ModelEntry.from_json(data.get("entry") or {})
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):  # an older or torn record
        return None
    return entry if _still_valid(entry, request, identity["weights"]) else None


def _still_valid(entry: ModelEntry, request: ModelRequest, weights: str) -> bool:
    if entry.weights == "pretrained":
        return bool(entry.revision) and checkpoint_revision(request.checkpoint) == entry.revision
    if weights == "random":
        return True
    # "auto" fell back to random weights: valid while pretrained weights remain out of reach
    local = is_local(request.checkpoint) or "@" in request.checkpoint
    return not local and not checkpoint_revision(request.checkpoint) and not hub_reachable()
