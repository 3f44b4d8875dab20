"""The site budget (size against GitHub Pages' 1 GB) and ``--site-images`` (publish a subset of the images)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atlas.cli import app
from atlas.project import load_project
from atlas.site.budget import GITHUB_PAGES_LIMIT, SiteBudget, parse_site_images, select_site_images
from atlas.site.catalog import load_catalog
from atlas.site.stage import build_site
from ssl_attention.errors import AtlasError

runner = CliRunner()


def test_budget_warns_over_and_near_the_limit():
    over = SiteBudget(int(1.25 * GITHUB_PAGES_LIMIT), 40_000, 200, 7, 1400, 200)
    assert "over GitHub Pages' 1 GB limit" in over.warning() and "--site-images" in over.warning()
    assert "about 152 fit" in over.warning()
    near = SiteBudget(int(0.9 * GITHUB_PAGES_LIMIT), 1, 100, 7, 700, 100)
    assert "90 %" in near.warning()
    subset = SiteBudget(100_000_000, 1000, 10, 7, 70, 139)
    assert subset.warning() is None and "all 139 images: about 1.4 GB (139 %)" in subset.line()


def test_site_images_publishes_a_subset_while_the_metrics_keep_every_image(fake_build, tmp_path):
    ids = [i.id for i in load_catalog(fake_build).images]
    listed = tmp_path / "subset.txt"
    listed.write_text(f"# one image\n{ids[1]}\n\n", encoding="utf-8")
    chosen = select_site_images(parse_site_images(str(listed)), ids)
    assert chosen == [ids[1]] and select_site_images(parse_site_images("2"), ids) == ids[:2]
    site = build_site(fake_build, tmp_path / "site", site_images=chosen)
    pages = sorted(p.parent.name for p in (tmp_path / "site" / "atlas" / "images").glob("*/index.html"))
    assert pages == [chosen[0]]
    assert sorted(p.name for p in (tmp_path / "site" / "atlas-data" / "thumbs").iterdir()) == [f"{chosen[0]}.jpg"]
    assert site.budget.images == 1 and site.budget.all_images == len(ids) and "all 3 images" in site.budget.line()
    summary = json.loads((tmp_path / "site" / "atlas-data" / "metrics" / "summary.json").read_text())
    assert summary["n_images"] == 3  # the leaderboard still reports on every boxed image


@pytest.mark.parametrize(("value", "message"), [
    ("0", "--site-images: 0: publish at least 1 image"),
    ("no-such-file.txt", "--site-images: 'no-such-file.txt' is neither a positive number of images nor an "
                         "existing file"),
    ("LIST", ":2: --site-images: no image 'nope' in this build"),
])
def test_bad_site_images_is_one_line_exit_2(tmp_path, value, message):
    if value == "LIST":
        value = str(tmp_path / "list.txt")
        Path(value).write_text("chelsea\nnope\n", encoding="utf-8")
    result = runner.invoke(app, ["build", "--model", "dinov2", "--weights", "random", "--out", str(tmp_path / "o"),
                                 "--site-images", value])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "o" / "maps").exists()  # refused before any model ran


def test_site_images_key_of_atlas_toml(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "list.txt").write_text("a\n", encoding="utf-8")
    (tmp_path / "atlas.toml").write_text('images = "images"\nsite_images = "list.txt"\n', encoding="utf-8")
    assert load_project(tmp_path / "atlas.toml").build["site_images"] == tmp_path / "list.txt"
    (tmp_path / "atlas.toml").write_text('images = "images"\nsite_images = 0\n', encoding="utf-8")
    with pytest.raises(AtlasError, match="site_images: expected a positive integer or a file path"):
        load_project(tmp_path / "atlas.toml")
