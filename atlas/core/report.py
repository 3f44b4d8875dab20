"""``OUT/report.json``: what a build used and skipped. Its writer and its reader, side by side.

No timings and no computed/reused counts (the CLI prints those), so an interrupted-then-resumed build
and an uninterrupted one write the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas.core.atomic import write_text_atomic
from atlas.core.build_dir import REPORT_FILE
from ssl_attention.skips import Skip

if TYPE_CHECKING:
    from atlas.models.compute import ModelMaps



@dataclass
class BuildReport:
    """What a build did: per-model counts, random-weight models, everything skipped."""

    models: list[ModelMaps] = field(default_factory=list)
    random_models: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    failed_models: list[str] = field(default_factory=list)  # one line per model that could not be built
    images: int = 0
    site_dir: Path | None = None
    seconds: float = 0.0
    site_budget: dict | None = None  # atlas.site.budget.SiteBudget.as_json() once the site is built
    workers: list[dict] = field(default_factory=list)  # --ray only: images/s per model and worker

    def write(self, build_dir: Path) -> None:
        """Write ``build_dir/report.json``."""
        data = {
            "images": self.images,
            "models": [{"name": m.entry.name, "weights": m.entry.weights} for m in self.models],
            "random_models": self.random_models,
            "skipped": [skip.line for skip in self.skipped],
            **({"ray_workers": self.workers} if self.workers else {}),  # timings: only in a --ray build's report
        }
        if self.site_budget is not None:
            data["site_budget"] = self.site_budget
        write_text_atomic(build_dir / REPORT_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_report(build_dir: Path) -> dict[str, Any] | None:
    """``build_dir/report.json`` as plain lists and strings, or None when there is none (or it is unreadable)."""
    try:
        raw = json.loads((build_dir / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    models = [m for m in raw.get("models") or [] if isinstance(m, dict)]
    return {
        "images": raw.get("images"),
        "models": [{"name": str(m.get("name", "")), "weights": str(m.get("weights", ""))} for m in models],
        "random_models": [str(m) for m in raw.get("random_models") or []],
        "skipped": [str(line) for line in raw.get("skipped") or []],
    }
