"""A tiny two-tower CLIP over the sample with its box labels as prompts: relevance per prompt in the npz, the
targets in the manifest, the text grounding table on the built pages (HTML and headless Chromium); a
self-supervised backbone in the same build refuses relevance in one line; bad --prompts files exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from atlas.cli import app
from atlas.core.manifest import Manifest
from atlas.models.cache import cache_key
from tests import tiny_models


@pytest.fixture(scope="module")
def clip_build(tmp_path_factory, tiny_checkpoints):
    root = tmp_path_factory.mktemp("relevance")
    clip = tiny_models.clip_with_tokenizer(root / "clip")
    out = root / "out"
    result = CliRunner().invoke(app, [
        "build", "--model", f"clip={clip}", "--model", f"dino={tiny_checkpoints['dinov2']}",
        "--model", f"siglip={tiny_checkpoints['siglip']}", "--weights", "pretrained", "--method", "relevance",
        "--method", "rollout", "--method", "cls", "--image-size", "32", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_the_build_exports_one_relevance_map_per_box_label_prompt(clip_build):
    out, output = clip_build
    manifest = Manifest.load(out / "maps")
    clip, dino, siglip = manifest.models
    labels = sorted({box.label for image in manifest.images for box in image.boxes})
    assert clip.targets == tuple(f"a photo of a {label.replace('_', ' ')}." for label in labels)
    assert clip.target_kind == "prompt" and clip.methods == ("cls", "rollout", "relevance")
    with np.load(out / "maps" / clip.maps["chelsea"]) as data:
        assert data["relevance"].shape == (len(labels), 8, 8) and data["relevance"].dtype == np.float32
        assert data["relevance_class"].tolist() == list(range(len(labels)))
    # the self-supervised backbone: one line (in the report as printed), the rest of its maps built
    skipped = json.loads((out / "report.json").read_text())["skipped"]
    lines = [line for line in skipped if line.startswith("model dino: relevance")]
    assert len(lines) == 1 and "no score to explain" in lines[0]
    assert " ".join(lines[0].split()[:4]) in " ".join(output.split())
    assert dino.methods == ("cls", "rollout") and dino.targets == ()
    # SigLIP without its SentencePiece tokenizer offline: one line, prompts skipped, its other maps built
    lines = [line for line in skipped if line.startswith("model siglip: relevance")]
    assert len(lines) == 1 and "no tokenizer for its text tower offline" in lines[0]
    assert siglip.methods == ("rollout",) and siglip.targets == ()
    summary = json.loads((out / "metrics" / "summary.json").read_text())
    rows = {(g["method"], g["label"]): g for g in summary["text_grounding"] if g["model"] == "clip"}
    overall = rows[("relevance", "")]["metrics"]
    boxed = sum(len({b.label for b in image.boxes}) for image in manifest.images)
    assert overall["iou@25"]["n"] == boxed and 0 <= overall["iou@25"]["mean"] <= 1
    assert rows[("relevance", "cat_head")]["prompt"] == "a photo of a cat head."
    assert not any(e["method"] == "relevance" for e in summary["leaderboard"])  # scored per label only


def test_the_cache_key_holds_the_targets(clip_build):
    out, _ = clip_build
    clip = Manifest.load(out / "maps").models[0]
    from dataclasses import replace

    assert cache_key("x", clip) != cache_key("x", replace(clip, targets=clip.targets[:1]))
    assert cache_key("x", replace(clip, targets=(), target_kind="")) != cache_key("x", clip)


@pytest.mark.browser
def test_the_grounding_table_and_the_target_selector_in_chromium(clip_build, browser):
    from atlas.site.render import to_indices
    from tests.fixtures.site_fixtures import checked_page
    from tests.fixtures.site_server import serve_site
    from tests.test_site_browser import _canvas_indices, _heat, _wait_painted

    out, _ = clip_build
    html = (out / "site" / "atlas" / "leaderboard" / "clip" / "index.html").read_text()
    assert 'id="text-grounding"' in html and 'class="atlas-table atlas-grounding-table"' in html
    with serve_site(out / "site") as url, checked_page(browser) as page:
        page.goto(url + "atlas/leaderboard/clip/")
        table = page.locator("table.atlas-grounding-table[data-method=relevance]")
        assert table.locator("caption").inner_text() == "relevance: text grounding per label"
        assert table.locator("tbody tr").first.locator("th").inner_text() == "all labels"
        cat = table.locator("tr[data-label=cat_head]")
        assert cat.locator("td").first.inner_text() == "a photo of a cat head."
        page.goto(url + "atlas/leaderboard/")
        assert page.locator("table.atlas-leaderboard tr[data-model=clip][data-method=relevance]").count() == 1
        targets = Manifest.load(out / "maps").models[0].targets
        index = targets.index("a photo of a cat head.")
        page.goto(url + f"atlas/images/chelsea/#models=clip&method=relevance&layer={index}")
        page.wait_for_selector(".atlas-root[data-atlas-ready]")
        _wait_painted(page)
        with np.load(out / "maps" / "clip" / "chelsea.npz") as data:
            relevance, rollout, cls = data["relevance"], data["rollout"], data["cls_fused"]
        shown = _canvas_indices(page, _heat("clip", "chelsea", "relevance", index, "fused"))
        assert (shown == to_indices(relevance[index])).all()
        # beside it: raw (CLS) attention and rollout of the last layer
        row = page.locator(".atlas-row[data-model=clip] figure.atlas-tile")
        variants = [row.nth(i).get_attribute("data-variant") for i in range(row.count())]
        assert variants == ["fused", "with:cls", "with:rollout"]
        last = len(rollout) - 1
        for method, maps in (("rollout", rollout), ("cls", cls)):
            shown = _canvas_indices(page, _heat("clip", "chelsea", method, last, "fused"))
            assert (shown == to_indices(maps[last])).all()
        assert page.locator("[data-role=layer-name]").inner_text() == "Target"
        assert page.locator("[data-role=layer-value]").inner_text().endswith(": a photo of a cat head.")
        assert f"clip: {len(targets)} prompts, one map each" in page.locator("[data-role=targets]").inner_text()


def test_a_bad_prompts_file_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    for path, problem in ((tmp_path / "missing.txt", "prompts file not found"), (empty, "no prompts")):
        result = CliRunner().invoke(app, ["build", "--model", "clip", "--method", "relevance", "--prompts", str(path),
                                          "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and f"{path}: {problem}" in lines[0]

