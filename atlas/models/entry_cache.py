"""A model's manifest entry kept beside its maps, so a rebuild whose maps are all cached loads no model.

``maps/<model>/model.json`` records what was asked for (checkpoint, weights mode, input size, methods,
heads, code version) and the entry the loaded model produced. The entry is reused only while it still
describes what loading would give now: the same weights revision for pretrained weights; for ``auto``
that fell back to random weights, only while pretrained weights are still unobtainable.
"""

from __future__ import annotations

import json
from pathlib import Path

from atlas.core.atomic import write_text_atomic
from atlas.core.manifest import ModelEntry
from atlas.models.cache import MapsIdentity
from ssl_attention.models import ModelRequest
from ssl_attention.models.hub import checkpoint_revision, hub_reachable, is_local

ENTRY_FILE = "model.json"


def save_entry(maps_dir: Path, identity: MapsIdentity, entry: ModelEntry) -> None:
    """Remember the entry a request (``MapsIdentity.of_request``) produced."""
    record = {"request": identity.to_json(), "entry": entry.to_json(maps=False)}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_text_atomic(maps_dir / entry.name / ENTRY_FILE, text)


def cached_entry(maps_dir: Path, request: ModelRequest, identity: MapsIdentity) -> ModelEntry | None:
    """The remembered entry for this request if it is still what loading the model would give."""
    try:
        data = json.loads((maps_dir / request.name / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if data.get("request") != identity.to_json():
        return None
    try:
        entry = ModelEntry.from_json(data.get("entry") or {})
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):  # an older or torn record
        return None
    return entry if _still_valid(entry, request, identity.weights) else None


def _still_valid(entry: ModelEntry, request: ModelRequest, weights: str) -> bool:
    if entry.weights == "pretrained":
        return bool(entry.revision) and checkpoint_revision(request.checkpoint) == entry.revision
    if weights == "random":
        return True
    # "auto" fell back to random weights: valid while pretrained weights remain out of reach
    local = is_local(request.checkpoint) or "@" in request.checkpoint
    return not local and not checkpoint_revision(request.checkpoint) and not hub_reachable()
