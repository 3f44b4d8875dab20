"""Declared variants (``--base VARIANT=BASE``): the option's checks, ``deltas.csv`` and the summary's deltas.

Two tiny checkpoints of one architecture, the second a copy of the first with only its last layer's
weights changed, built with ``--base``: every delta is the mean of the per-image differences read from
the per-image rows, the unchanged layers' deltas are exactly 0 with CI [0, 0], the last layer's are not,
and every CI equals a paired bootstrap written here with the project's seed and settings.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from atlas.cli import app
from atlas.metrics.rows import SUFFIX, read_rows
from ssl_attention.aggregate.statistics import CONFIDENCE, N_BOOT, SEED
from ssl_attention.metrics import higher_is_better
from tests import tiny_models

runner = CliRunner()
COLUMNS = ["variant", "base", "method", "layer", "head", "metric", "n", "base_mean", "variant_mean", "delta", "lo",
           "hi", "improved"]


def _perturbed_copy(source: Path, folder: Path) -> Path:
    """``source`` saved again with only its last layer's weights changed."""
    from transformers import Dinov2WithRegistersModel

    model = Dinov2WithRegistersModel.from_pretrained(source)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in model.encoder.layer[-1].parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pair")
    base = tiny_models.dinov2_registers(root / "base")
    narrow = root / "narrow"  # the same family with 2 heads instead of 4
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    config = Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, mlp_ratio=2,
                                       patch_size=tiny_models.PATCH, image_size=tiny_models.SIZE,
                                       num_register_tokens=2)
    Dinov2WithRegistersModel(config).save_pretrained(narrow)
    return {"base": base, "tuned": _perturbed_copy(base, root / "tuned"), "narrow": narrow}


@pytest.fixture(scope="module")
def pair_build(checkpoints, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build")
    result = runner.invoke(app, ["build", "--weights", "pretrained", "--image-size", "16", "--query-layers", "none",
                                 "--out", str(out), "--no-site", "--model", f"base={checkpoints['base']}",
                                 "--model", f"tuned={checkpoints['tuned']}", "--base", "tuned=base"])
    assert result.exit_code == 0, result.output
    return out


def _deltas(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics" / "deltas.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _per_image(out: Path, model: str) -> dict[tuple, dict[str, float]]:
    """(method, layer, head, metric) -> {image: value} of the whole-image rows of ``model``."""
    values: dict[tuple, dict[str, float]] = {}
    for row in read_rows(out / "metrics" / f"{model}{SUFFIX}"):
        if row.box is None and row.layer is not None and row.method not in ("uniform", "centre_gaussian"):
            values.setdefault((row.method, row.layer, row.head, row.metric), {})[row.image] = row.value
    return values


def _paired_bootstrap(diffs: np.ndarray) -> tuple[float, float]:
    """A percentile bootstrap of the mean difference, resampling images with replacement (the project's seed)."""
    picks = np.random.default_rng(SEED).integers(0, diffs.size, size=(N_BOOT, diffs.size))
    means = diffs[picks].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def test_deltas_are_the_mean_paired_differences_of_the_per_image_rows(pair_build):
    rows = _deltas(pair_build)
    base, tuned = _per_image(pair_build, "base"), _per_image(pair_build, "tuned")
    scored = {key for key, values in base.items() if any(math.isfinite(v) for v in values.values())}
    assert {(r["method"], int(r["layer"]), r["head"], r["metric"]) for r in rows} == scored  # e.g. no emd per head
    last = max(int(r["layer"]) for r in rows)
    moved = 0
    for r in rows:
        assert (r["variant"], r["base"]) == ("tuned", "base")
        key = (r["method"], int(r["layer"]), r["head"], r["metric"])
        assert key in scored
        images = sorted(i for i in base[key] if math.isfinite(base[key][i]) and math.isfinite(tuned[key][i]))
        diffs = np.array([tuned[key][i] - base[key][i] for i in images])
        assert int(r["n"]) == len(images) > 0
        assert float(r["delta"]) == pytest.approx(diffs.mean(), abs=1e-12)
        assert float(r["base_mean"]) == pytest.approx(np.mean([base[key][i] for i in images]), abs=1e-12)
        assert float(r["variant_mean"]) == pytest.approx(np.mean([tuned[key][i] for i in images]), abs=1e-12)
        lo, hi = _paired_bootstrap(diffs)
        assert (float(r["lo"]), float(r["hi"])) == pytest.approx((lo, hi), abs=1e-12)
        better = diffs > 0 if higher_is_better(r["metric"]) else diffs < 0
        assert float(r["improved"]) == pytest.approx(better.mean())
        if int(r["layer"]) < last:  # layers before the changed one: the same maps
            assert (float(r["delta"]), float(r["lo"]), float(r["hi"]), float(r["improved"])) == (0, 0, 0, 0), r
        else:
            moved += float(r["delta"]) != 0
    assert moved > 0  # the changed layer's maps moved


def test_summary_holds_the_same_deltas_the_pairs_and_the_ranking_delta(pair_build):
    summary = json.loads((pair_build / "metrics" / "summary.json").read_text())
    assert summary["variants"] == [{"variant": "tuned", "base": "base"}]
    csv_rows = _deltas(pair_build)
    assert len(summary["deltas"]) == len(csv_rows)
    for got, want in zip(summary["deltas"], csv_rows, strict=True):
        assert list(got) == COLUMNS
        assert str(got["layer"]) == want["layer"] and got["head"] == want["head"]
        assert got["delta"] == pytest.approx(float(want["delta"]), abs=0)
    ranking = {r["method"]: r for r in summary["ranking_deltas"]}
    by_model = {(r["model"], r["method"]): r for r in summary["head_ranking"]
                if r["metric"] == summary["primary_metric"]}  # the ranking delta is by the primary metric
    for method, entry in ranking.items():
        assert entry["metric"] == summary["primary_metric"]
        tuned = {(h["layer"], h["head"]): h["mean_rank"] for h in by_model[("tuned", method)]["heads"]}
        for head in entry["heads"]:
            assert head["variant_mean_rank"] == tuned[(head["layer"], head["head"])]
            assert head["moved"] == pytest.approx(head["base_mean_rank"] - head["variant_mean_rank"])


def _refused(checkpoints: dict[str, Path], tmp_path: Path, models: list[str], bases: list[str]) -> str:
    out = tmp_path / "out"
    argv = ["build", "--weights", "pretrained", "--image-size", "16", "--out", str(out), "--no-site"]
    for model in models:
        argv += ["--model", model]
    for base in bases:
        argv += ["--base", base]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert not out.exists()  # refused before any folder is touched, so before any model ran
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_mismatched_architectures_are_refused_in_one_line_before_any_model_runs(checkpoints, tmp_path):
    line = _refused(checkpoints, tmp_path, [f"base={checkpoints['base']}", f"narrow={checkpoints['narrow']}"],
                    ["narrow=base"])
    assert "narrow" in line and "base" in line and "heads 2 vs 4" in line


def test_timm_checkpoints_are_compared_before_any_model_runs(checkpoints, tmp_path):
    """A timm ViT's architecture comes from the model built on the meta device (no weights, nothing run)."""
    four = tiny_models.timm_vit_registers(tmp_path / "four")
    two = tiny_models._save_timm("vit_base_patch16_224", tmp_path / "two", 0, img_size=tiny_models.SIZE,
                                 patch_size=tiny_models.PATCH, embed_dim=32, depth=3, num_heads=2, num_classes=0)
    line = _refused(checkpoints, tmp_path, [f"four={four}", f"two={two}"], ["two=four"])
    assert "two and four differ in architecture (heads 2 vs 4)" in line


@pytest.mark.parametrize(("bases", "expected"), [
    (["ghost=base"], "the variant 'ghost' is not a model of this build"),
    (["tuned=ghost"], "the base 'ghost' is not a model of this build"),
    (["tuned"], "expected VARIANT=BASE"),
    (["base=base"], "a model cannot be its own base"),
    (["tuned=base", "tuned=base"], "variant 'tuned' is given two bases"),
])
def test_unknown_names_and_bad_values_are_refused_in_one_line(checkpoints, tmp_path, bases, expected):
    line = _refused(checkpoints, tmp_path, [f"base={checkpoints['base']}", f"tuned={checkpoints['tuned']}"], bases)
    assert expected in line


def test_bases_key_of_atlas_toml_declares_the_pair(checkpoints, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(Path(__file__).resolve().parents[1] / "ssl_attention" / "sample_data" / "images",
                    project / "images")
    (project / "atlas.toml").write_text(
        'images = "images"\n'
        f'models = ["base={checkpoints["base"].as_posix()}", "ghost={checkpoints["tuned"].as_posix()}"]\n'
        'bases = ["tuned=base"]\n', encoding="utf-8")
    result = runner.invoke(app, ["build", "--config", str(project / "atlas.toml"), "--no-site"])
    assert result.exit_code == 2, result.output
    assert "the variant 'tuned' is not a model of this build" in result.output


def test_atlas_init_file_shows_the_bases_key(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    result = runner.invoke(app, ["init", str(tmp_path / "project"), "--images", str(images)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "project" / "atlas.toml").read_text(encoding="utf-8")
    assert '# bases = ["mine=dinov2"]' in text and "fine-tuned version of model BASE" in text


def test_docs_define_the_terms_and_document_the_statistics():
    root = Path(__file__).resolve().parents[1] / "site_src"
    glossary = (root / "glossary.md").read_text(encoding="utf-8")
    abbreviations = (root / "includes" / "abbreviations.md").read_text(encoding="utf-8")
    for heading, abbr in [("variant", "fine-tuned variant"), ("base model", "base model"), ("shift map", "shift map"),
                          ("paired difference", "paired difference")]:
        assert f"\n### {heading}\n" in glossary and f"*[{abbr}]:" in abbreviations
    metrics = (root / "metrics.md").read_text(encoding="utf-8")
    assert "## Variants: paired differences" in metrics and ", ".join(COLUMNS) in metrics.replace("\n", " ")
    assert "Multiple comparisons" in metrics and "144 heads" in metrics
    assert "## Variants and the compare view" in (root / "atlas-guide.md").read_text(encoding="utf-8")


def _captured_options(monkeypatch, argv: list[str]):
    """The ``BuildOptions`` ``atlas build argv`` would run with (the build itself is not run)."""
    import atlas.build

    seen = []

    def run_build(options, console):
        seen.append(options)
        raise SystemExit(0)

    monkeypatch.setattr(atlas.build, "run_build", run_build)
    runner.invoke(app, ["build", *argv])
    assert len(seen) == 1
    return seen[0]


def test_the_bundled_sample_declares_a_random_variant_of_dinov2(monkeypatch, tmp_path):
    from atlas.core.variants import SAMPLE_VARIANT, VariantPair
    from atlas.models.pairs import check_before_loading
    from ssl_attention.models import DEFAULT_MODELS

    options = _captured_options(monkeypatch, ["--out", str(tmp_path / "out")])
    assert options.bases == (VariantPair("dinov2-random", "dinov2"),) == (SAMPLE_VARIANT,)
    requests = {r.name: r for r in options.requests}
    assert list(requests) == [*DEFAULT_MODELS, "dinov2-random"]
    variant = requests["dinov2-random"]
    assert variant.checkpoint == requests["dinov2"].checkpoint and variant.weights == "random"  # labelled random
    assert requests["dinov2"].weights is None  # the build's --weights
    check_before_loading(options.bases, options.requests)  # the same architecture: accepted
    # your own models or images: no variant is added
    assert _captured_options(monkeypatch, ["--out", str(tmp_path / "b"), "--model", "dinov2"]).bases == ()
    assert len(_captured_options(monkeypatch, ["--out", str(tmp_path / "c"), "--images", str(tmp_path)]).requests) == 7


def test_a_request_of_its_own_weights_is_loaded_and_cached_with_them(tmp_path):
    from atlas.models.plan import MapsOptions
    from ssl_attention.models import ModelRequest

    plan = MapsOptions(weights="pretrained")
    own = plan.identity(ModelRequest("v", "facebook/dinov2-with-registers-base", weights="random"))
    build = plan.identity(ModelRequest("v", "facebook/dinov2-with-registers-base"))
    assert (own.weights, build.weights) == ("random", "pretrained")


def test_after_loading_the_grids_are_compared_too():
    """What the configs cannot show (an input size from an image processor) is refused on the loaded entries."""
    from atlas.core.manifest import ModelEntry
    from atlas.core.variants import VariantPair
    from atlas.models.pairs import check_entries
    from ssl_attention.errors import AtlasError

    entry = ModelEntry(name="base", checkpoint="x", weights="random", kind="vit", layers=3, grid=(4, 4),
                       methods=("cls",), heads=4, patch_size=4)
    same = ModelEntry(**{**entry.__dict__, "name": "tuned"})
    wide = ModelEntry(**{**entry.__dict__, "name": "wide", "grid": (4, 6)})
    pairs = (VariantPair("tuned", "base"), VariantPair("wide", "base"), VariantPair("gone", "base"))
    with pytest.raises(AtlasError, match=r"^--base wide=base: wide and base differ in architecture \(grid 4x6 vs 4x"):
        check_entries(pairs, {"base": entry, "tuned": same, "wide": wide})
    assert check_entries(pairs, {"base": entry, "tuned": same}) == [VariantPair("tuned", "base")]  # "gone": skipped
