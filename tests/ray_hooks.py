"""Set-up hooks for the Ray workers of tests/test_ray.py (imported by the workers, so kept light)."""

from __future__ import annotations

import time


def slow_batches() -> None:
    """Make each batch take 0.3 s longer, so a test can kill a worker while the build is surely mid-way."""
    import atlas.models.compute

    compute = atlas.models.compute.batch_maps

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return compute(*args, **kwargs)

    atlas.models.compute.batch_maps = slow
