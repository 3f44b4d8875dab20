"""The metrics stage: every cached map scored against the boxes; per-image rows and a summary."""

from atlas.metrics.stage import compute_metrics

__all__ = ["compute_metrics"]
