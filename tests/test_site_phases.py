"""The site stage takes the earlier stages' values (SiteInputs) instead of reading them from the build folder."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from atlas.core.build_dir import BuildDir
from atlas.core.manifest import Manifest
from atlas.metrics.data import load_metrics
from atlas.site.stage import SiteInputs, build_site


def test_build_site_uses_the_inputs_it_is_given(fake_build: Path, tmp_path: Path):
    build = tmp_path / "build"
    shutil.copytree(fake_build, build, ignore=shutil.ignore_patterns("site", ".site.*"))
    manifest = Manifest.load(BuildDir(build).maps)
    kept = manifest.models[:1]
    given = SiteInputs(dataclasses.replace(manifest, models=kept), metrics=None)
    assert load_metrics(build) is not None  # on disk there are metrics, and every model

    site = build_site(build, build / "site", inputs=given).site_dir

    models = {p.name for p in (site / "atlas" / "models").iterdir() if p.is_dir()}
    assert models == {kept[0].slug}
    leaderboard = (site / "atlas" / "leaderboard" / "index.html").read_text(encoding="utf-8")
    assert "This atlas has no alignment metrics" in leaderboard
    assert not (site / "atlas-data" / "metrics").exists()
