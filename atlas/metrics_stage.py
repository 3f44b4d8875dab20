"""Build stage after compute: score every cached map against the boxes; write CSVs and a JSON summary.

Output (documented on the metrics page):
  OUT/metrics/<model>.csv    tidy rows: image, model, method, layer, head, metric, value, box, label
  OUT/metrics/summary.json   leaderboard, best heads, baselines, layer x head tables, head ranking,
                             per-label breakdown, head similarity with clustering (per model x method)

OUT/metrics holds exactly the metrics of the last build: files of models no longer built are removed,
and so is the whole folder when no image has boxes. ``summary.json`` marks complete metrics (the site
reads none without it): it is removed first and written last, each file through a temp file and a rename,
so an interrupted stage leaves the old complete set, or no summary, never a mix.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atlas.atomic import write_via_temp
from atlas.manifest import ImageEntry, Manifest, ModelEntry
from ssl_attention.aggregate import (
    FUSED,
    MetricRow,
    best_layer,
    cluster_heads,
    head_similarity,
    index_rows,
    rows_from_scores,
    summarise,
    write_metrics_csv,
    write_summary_json,
)
from ssl_attention.grounding import GroundingRow, ground_image, summarise_grounding
from ssl_attention.methods import get_method
from ssl_attention.metrics import Target, baseline_scores, make_target, metric_columns, score_maps

SIMILARITY_CLUSTERS = 4


@dataclass
class MetricsReport:
    """What the metrics stage wrote."""

    rows: int = 0
    images_with_boxes: int = 0
    files: list[Path] = field(default_factory=list)


def compute_metrics(build_dir: Path) -> MetricsReport:
    """Score all maps of ``build_dir/maps`` whose image has boxes; images without boxes are left out.

    Without any boxed image, ``build_dir/metrics`` is removed (the metrics of an earlier build are stale).
    """
    maps_dir = build_dir / "maps"
    manifest = Manifest.load(maps_dir)
    boxed = {image.id: image for image in manifest.images if image.boxes}
    out_dir = build_dir / "metrics"
    summary_path = out_dir / "summary.json"
    summary_path.unlink(missing_ok=True)  # from here until the new summary is written: no metrics
    report = MetricsReport(images_with_boxes=len(boxed))
    if not boxed:
        shutil.rmtree(out_dir, ignore_errors=True)
        return report
    out_dir.mkdir(parents=True, exist_ok=True)
    all_rows: list[MetricRow] = []
    grounding: list[GroundingRow] = []
    similarity: list[dict] = []
    for model in manifest.models:
        rows, per_head_maps = _model_rows(model, boxed, maps_dir, grounding)
        path = out_dir / f"{model.name}.csv"
        write_via_temp(path, lambda tmp, rows=rows: write_metrics_csv(rows, tmp))
        report.files.append(path)
        all_rows.extend(rows)
        similarity.extend(_similarity(model.name, rows, per_head_maps))
    for stale in sorted(set(out_dir.iterdir()) - set(report.files)):  # e.g. the CSV of a model not built now
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    summary = summarise(all_rows)
    summary["head_similarity"] = similarity
    summary["text_grounding"] = summarise_grounding(grounding)
    write_via_temp(summary_path, lambda tmp: write_summary_json(summary, tmp))
    report.files.append(summary_path)
    report.rows = len(all_rows)
    return report


def _target(model: ModelEntry, image: ImageEntry) -> Target:
    return make_target(list(image.boxes), (image.width, image.height), model.grid, model.patch_size)


def _model_rows(model: ModelEntry, boxed: dict[str, ImageEntry], maps_dir: Path,
                grounding: list[GroundingRow]) -> tuple[list[MetricRow], dict]:
    """Rows of every map of one model, plus per-head maps {method: [L, H, N images, gh, gw]} for similarity.

    Maps per prompt (relevance, ViT Grad-CAM of CLIP/SigLIP) are scored per label instead, against that
    label's boxes only (text grounding), into ``grounding``.
    """
    name = model.name
    rows: list[MetricRow] = []
    per_head: dict[str, list[np.ndarray]] = {}
    for image_id, rel in sorted(model.maps.items()):
        if image_id not in boxed:
            continue
        target = _target(model, boxed[image_id])
        columns = metric_columns(target)
        for method, scores in baseline_scores(target).items():
            rows += rows_from_scores(image_id, name, method, None, "", scores)
        with np.load(maps_dir / rel, allow_pickle=False) as data:
            for method in model.methods:
                arrays = get_method(method)
                fused = data[arrays.fused_array]
                if arrays.unit == "target" and model.target_kind == "prompt":
                    image = boxed[image_id]
                    grounding += ground_image(image_id, name, method, fused, model.targets, image.boxes,
                                              (image.width, image.height), model.grid, model.patch_size)
                    continue
                keys = [(layer, FUSED) for layer in range(fused.shape[0])]
                stacks = [fused]
                if arrays.head_array is not None and arrays.head_array in data:
                    heads = data[arrays.head_array]
                    per_head.setdefault(method, []).append(heads)
                    keys += [(layer, str(head)) for layer in range(heads.shape[0]) for head in range(heads.shape[1])]
                    stacks.append(heads.reshape(-1, *heads.shape[2:]))
                values = score_maps(np.concatenate(stacks), target)
                rows += _rows(image_id, name, method, keys, values, columns)
    stacked = {method: np.stack(maps, axis=2) for method, maps in per_head.items()}
    return rows, stacked


def _rows(image: str, model: str, method: str, keys: list[tuple[int, str]], values: np.ndarray,
          columns: list[tuple[str, int | None, str]]) -> list[MetricRow]:
    """One MetricRow per (map, column) of a score_maps result."""
    return [
        MetricRow(image, model, method, layer, head, metric, float(value), box, label)
        for (layer, head), row in zip(keys, values.tolist(), strict=True)
        for (metric, box, label), value in zip(columns, row, strict=True)
    ]


def _similarity(model: str, rows: list[MetricRow], per_head: dict[str, np.ndarray]) -> list[dict]:
    """Head-by-head correlation across the dataset at the model's best layer, with a clustering."""
    index = index_rows(rows)
    out = []
    for method, maps in per_head.items():  # maps: [L, H, N, gh, gw]
        best = best_layer(index, model, method)
        if best is None or maps.shape[1] < 2:
            continue
        layer = best[0]
        sim = head_similarity(maps[layer])
        clusters = cluster_heads(sim, min(SIMILARITY_CLUSTERS, maps.shape[1]))
        out.append({
            "model": model, "method": method, "layer": layer,
            "similarity": np.round(sim, 4).tolist(),
            "clusters": clusters.labels.tolist(), "order": list(clusters.order),
        })
    return out
