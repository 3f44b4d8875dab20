"""Build stage after compute: score every cached map against the boxes; write the rows and a JSON summary.

Output (documented on the metrics page):
  OUT/metrics/<model>.parquet  tidy rows: image, model, method, layer, head, metric, box, label, value
                               (``<model>.csv.gz`` without pyarrow; ``atlas.metrics.rows``)
  OUT/metrics/summary.json     leaderboard, best heads, baselines, layer x head tables, head ranking,
                               per-label breakdown, head similarity with clustering (per model x method)
  OUT/metrics/panels.json      the image pages' metric panels: {model: {image: panel}}

Scores stay numpy arrays from ``score_maps`` to the files: no Python object per row. OUT/metrics holds
exactly the metrics of the last build: files of models no longer built are removed, and so is the whole
folder when no image has boxes. ``summary.json`` marks complete metrics (the site reads none without
it): it is removed first and written last, each file through a temp file and a rename, so an
interrupted stage leaves the old complete set, or no summary, never a mix.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atlas.core.atomic import write_via_temp
from atlas.core.build_dir import BuildDir
from atlas.core.manifest import ImageEntry, Manifest, ModelEntry
from atlas.core.pool import parallel_map
from atlas.core.variants import VariantPair
from atlas.metrics.box_features import METHOD as BOX_METHOD
from atlas.metrics.box_features import box_similarity_blocks, summarise_box_similarity
from atlas.metrics.breakdowns import box_panel, head_labels, label_head_values, tag_breakdown
from atlas.metrics.data import (
    HEAD_SORT_METRICS,
    HEADS_SUFFIX,
    PANELS_FILE,
    MetricsData,
    panel_metric_names,
    write_head_values,
)
from atlas.metrics.deltas import DELTAS_FILE, summary_section, write_deltas_csv
from atlas.metrics.emd_memo import load_memo, save_memo, scored_against_boxes
from atlas.metrics.held_out import held_out_summary
from atlas.metrics.rows import (
    FORMAT,
    SUFFIX,
    ScoreBlock,
    add_to_index,
    columns,
    head_values,
    image_panel,
    write_rows,
)
from atlas.metrics.summary import Summary
from ssl_attention.aggregate import (
    FUSED,
    Index,
    MetricRow,
    best_layer,
    cluster_heads,
    summarise_index,
    write_summary_json,
)
from ssl_attention.aggregate.clustering import head_gram, similarity_from_gram
from ssl_attention.aggregate.statistics import DEFAULT_BOX_METRIC, DEFAULT_PRIMARY
from ssl_attention.grounding import GroundingRow, ground_image, summarise_grounding
from ssl_attention.methods import get_method
from ssl_attention.metrics import MapGeometry, Target, baseline_scores, metric_columns, score_maps

SIMILARITY_CLUSTERS = 4


@dataclass
class MetricsReport:
    """What the metrics stage wrote, and the summary it wrote (None when no image has boxes)."""

    rows: int = 0
    images_with_boxes: int = 0
    files: list[Path] = field(default_factory=list)
    format: str = FORMAT  # of the per-image rows
    summary: Summary | None = None
    data: MetricsData | None = None  # what the site stage reads of them (None when no image has boxes)


@dataclass
class _Scored:
    """Everything the stage gathers from the scored pairs, per model in manifest order."""

    index: Index = field(default_factory=dict)  # whole-image values (``ssl_attention.aggregate.Index``)
    blocks: dict[str, list[ScoreBlock]] = field(default_factory=dict)
    grams: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> method -> [L, H, H]
    grounding: list[GroundingRow] = field(default_factory=list)
    panels: dict[str, dict[str, dict]] = field(default_factory=dict)  # model -> image -> panel


def compute_metrics(build_dir: Path, manifest: Manifest | None = None, pairs: Sequence[VariantPair] = (),
                    select_on: float | None = None) -> MetricsReport:
    """Score all maps of ``build_dir/maps`` whose image has boxes; images without boxes are left out.

    ``manifest``: the build's manifest as the models stage wrote it (default: read from ``build_dir/maps``).
    ``pairs``: the declared variants (``--base``), whose paired statistics go to ``deltas.csv`` and the summary.
    ``select_on``: ``--select-on``'s fraction; the summary then has the held-out estimate (``atlas.metrics.held_out``).
    Without any boxed image, ``build_dir/metrics`` is removed (the metrics of an earlier build are stale).
    """
    paths = BuildDir(build_dir)
    manifest = Manifest.load(paths.maps) if manifest is None else manifest
    boxed = {image.id: image for image in manifest.images if image.boxes}
    paths.summary.unlink(missing_ok=True)  # from here until the new summary is written: no metrics
    report = MetricsReport(images_with_boxes=len(boxed))
    if not boxed:
        shutil.rmtree(paths.metrics, ignore_errors=True)
        return report
    paths.metrics.mkdir(parents=True, exist_ok=True)
    scored = _score_models(manifest, boxed, paths, report)
    images = {b.image for blocks in scored.blocks.values() for b in blocks}
    summary = summarise_index(scored.index, lambda select: _label_rows(scored.blocks, select), len(images))
    summary["head_similarity"] = [s for model in manifest.models
                                  for s in _similarity(model.name, scored.index, scored.grams[model.name])]
    summary["text_grounding"] = summarise_grounding(scored.grounding)
    if select_on is not None:
        summary["held_out"] = held_out_summary(scored.index, select_on, summary["primary_metric"])
    attention = {model: [b for b in blocks if b.method != BOX_METHOD] for model, blocks in scored.blocks.items()}
    summary["head_labels"] = head_labels(attention, summary["box_metric"])  # attention maps, not box_similarity
    summary["tags"] = tag_breakdown(scored.index, summary["leaderboard"], {i: boxed[i].tags for i in sorted(images)},
                                    summary["primary_metric"])
    if pairs:
        _write_deltas(scored.index, pairs, summary, paths.metrics, report)
    box_similarity = summarise_box_similarity(scored.blocks)
    if box_similarity:  # builds without box_similarity keep their summary's bytes
        summary["box_similarity"] = box_similarity
    heads = _write_page_data(scored, summary, paths.metrics, report)
    for stale in sorted(set(paths.metrics.iterdir()) - set(report.files)):  # e.g. the rows of a model not built now
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    write_via_temp(paths.summary, lambda tmp: write_summary_json(summary, tmp))
    report.files.append(paths.summary)
    report.summary = Summary.from_json(summary)
    report.data = MetricsData(summary=report.summary, files={"summary": paths.summary}, panels=scored.panels,
                              heads=heads)
    return report


def _score_models(manifest: Manifest, boxed: dict[str, ImageEntry], paths: BuildDir,
                  report: MetricsReport) -> _Scored:
    """Score every (model, boxed image) pair on the process pool; each model's rows are written (and
    counted in ``report``) while the pool scores the next model (pyarrow and zlib release the GIL)."""
    scored = _Scored()
    tasks = {model.name: _pair_tasks(model, boxed, paths.maps) for model in manifest.models}
    results = parallel_map(_score_pair, [task for model in manifest.models for task in tasks[model.name]])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="atlas-rows") as writer:
        written = []
        for model in manifest.models:
            blocks: list[ScoreBlock] = []
            grams: dict[str, np.ndarray] = {}
            scored.panels[model.name] = {}
            for (_, image, _), (pair_blocks, pair_grounding, pair_grams, panel) in zip(
                    tasks[model.name], itertools.islice(results, len(tasks[model.name])), strict=True):
                blocks += pair_blocks
                scored.grounding += pair_grounding
                scored.panels[model.name][image.id] = panel
                for method, gram in pair_grams.items():  # summed in image order, whatever the worker count
                    grams[method] = grams[method] + gram if method in grams else gram
            path = paths.metrics / f"{model.name}{SUFFIX}"
            written.append(writer.submit(_write_model_rows, model.name, blocks, path))
            report.files.append(path)
            add_to_index(scored.index, model.name, blocks)
            scored.blocks[model.name], scored.grams[model.name] = blocks, grams
        report.rows = sum(future.result() for future in written)
    return scored


def _write_page_data(scored: _Scored, summary: dict, out_dir: Path, report: MetricsReport) -> dict[str, Path]:
    """``panels.json`` and each model's head values (the pages' data: the primary metric, ``HEAD_SORT_METRICS``
    and the box metric of ``head_labels``' labels per image), listed in ``report``; returns the head values'
    file of each model."""
    primary = summary["primary_metric"]
    files: dict[str, Path] = {}
    panels_path = out_dir / PANELS_FILE
    write_via_temp(panels_path,
                   lambda tmp: tmp.write_text(json.dumps(scored.panels, allow_nan=False), encoding="utf-8"))
    report.files.append(panels_path)
    for model, blocks in scored.blocks.items():
        heads = head_values(blocks, primary)
        for metric in HEAD_SORT_METRICS:  # the head viewer also sorts by these (``<method>@<metric>`` arrays)
            heads.update({f"{method}@{metric}": found for method, found in head_values(blocks, metric).items()})
        kept = {(e["method"], e["label"]) for e in summary["head_labels"] if e["model"] == model}
        labels = label_head_values([b for b in blocks if b.method != BOX_METHOD], summary["box_metric"], kept)
        if heads:
            path = out_dir / f"{model}{HEADS_SUFFIX}"
            write_via_temp(path, lambda tmp, heads=heads, labels=labels: write_head_values(heads, tmp, labels))
            report.files.append(path)
            files[model] = path
    return files


def _write_deltas(index: Index, pairs: Sequence[VariantPair], summary: dict, out_dir: Path,
                  report: MetricsReport) -> None:
    """The pairs' paired statistics: ``deltas.csv`` (listed in ``report``) and their keys in ``summary``."""
    section, rows = summary_section(index, pairs, summary["head_ranking"], summary["primary_metric"])
    summary.update(section)
    path = out_dir / DELTAS_FILE
    write_via_temp(path, lambda tmp: write_deltas_csv(rows, tmp))
    report.files.append(path)


def _geometry(model: ModelEntry, image: ImageEntry) -> MapGeometry:
    return MapGeometry((image.width, image.height), model.grid_of(image.id), model.patch_size)


def _target(model: ModelEntry, image: ImageEntry) -> Target:
    return _geometry(model, image).target(list(image.boxes))


def _pair_tasks(model: ModelEntry, boxed: dict[str, ImageEntry], maps_dir: Path) -> list[tuple]:
    """The pool's tasks for one model: (entry, image, npz) per boxed image; the entry without its maps
    (one per image: sent with every task, they would make the tasks grow with the square of the images)."""
    bare = model.with_maps({})
    return [(bare, boxed[image_id], maps_dir / rel)
            for image_id, rel in sorted(model.maps.items()) if image_id in boxed]


def _write_model_rows(model: str, blocks: list[ScoreBlock], path: Path) -> int:
    """Write one model's per-image rows (``atlas.metrics.rows``) to ``path``; how many rows."""
    table = columns(model, blocks)
    write_via_temp(path, lambda tmp: write_rows(table, tmp))
    return len(table["value"])


def _score_pair(task: tuple[ModelEntry, ImageEntry, Path]) -> tuple[list[ScoreBlock], list[GroundingRow], dict, dict]:
    """One image of one model, in a worker of the process pool (``atlas.core.pool``): its score blocks
    (baselines first, then each method), text-grounding rows, per-method head Gram matrices ``[L, H, H]``
    (for the head similarity) and its image panel.

    Maps per prompt (relevance, ViT Grad-CAM of CLIP/SigLIP) are scored per label instead, against that
    label's boxes only (text grounding).
    """
    model, image, npz = task
    target = _target(model, image)
    if target.boxes:
        load_memo(npz, target.soft)  # the EMDs the models stage solved while it wrote the maps
    cols = metric_columns(target)
    blocks = [ScoreBlock(image.id, method, [(None, "")], [(s.metric, s.box, s.label) for s in scores],
                         np.array([[s.value for s in scores]], dtype=np.float64))
              for method, scores in baseline_scores(target).items()]
    grounding: list[GroundingRow] = []
    grams: dict[str, np.ndarray] = {}
    with np.load(npz, allow_pickle=False) as data:
        for method in model.methods:
            arrays = get_method(method)
            fused = data[arrays.fused_array]
            if not scored_against_boxes(model, method):
                grounding += ground_image(image.id, model.name, method, fused, model.targets, image.boxes,
                                          _geometry(model, image))
                continue
            keys: list[tuple[int | None, str]] = [(layer, FUSED) for layer in range(fused.shape[0])]
            stacks = [fused]
            if arrays.head_array is not None and arrays.head_array in data:
                heads = data[arrays.head_array]
                grams[method] = head_gram(heads[None])
                keys += [(layer, str(head)) for layer in range(heads.shape[0]) for head in range(heads.shape[1])]
                stacks.append(heads.reshape(-1, *heads.shape[2:]))
            blocks.append(ScoreBlock(image.id, method, keys, cols,  # emd for the fused maps only (metrics page)
                                     score_maps(np.concatenate(stacks), target, transport=fused.shape[0])))
        features = box_similarity_blocks(image.id, data[BOX_METHOD], image.boxes, _geometry(model, image)) \
            if BOX_METHOD in data.files else []
    if target.boxes and target.soft.solved:  # an older cache or changed boxes: kept for the next build
        save_memo(npz, target.soft)
    names = panel_metric_names({metric for metric, box, _ in cols if box is None})
    panel = image_panel(blocks, names, DEFAULT_PRIMARY)
    boxes = box_panel(blocks)  # each box's metrics of the fused maps (the image page's box chooser)
    if boxes:
        panel["boxes"] = boxes
    return blocks + features, grounding, grams, panel


def _label_rows(blocks_of: dict[str, list[ScoreBlock]], select: dict,
                metric: str = DEFAULT_BOX_METRIC) -> list[MetricRow]:
    """The per-box ``metric`` rows of the selected (layer, head) of each (model, method)."""
    rows = []
    for model, blocks in blocks_of.items():
        for b in blocks:
            if (model, b.method) not in select:
                continue
            i = b.keys.index(select[(model, b.method)])
            rows += [MetricRow(b.image, model, b.method, b.keys[i][0], b.keys[i][1], name, float(b.values[i, j]),
                               box, label) for j, (name, box, label) in enumerate(b.columns)
                     if box is not None and name == metric]
    return rows


def _similarity(model: str, index: Index, grams: dict[str, np.ndarray]) -> list[dict]:
    """Head-by-head correlation across the dataset at the model's best layer, with a clustering."""
    out = []
    for method, gram in grams.items():  # gram: [L, H, H] summed over the images
        best = best_layer(index, model, method)
        if best is None or gram.shape[1] < 2:
            continue
        layer = best[0]
        sim = similarity_from_gram(gram[layer])
        clusters = cluster_heads(sim, min(SIMILARITY_CLUSTERS, gram.shape[1]))
        out.append({
            "model": model, "method": method, "layer": layer,
            "similarity": np.round(sim, 4).tolist(),
            "clusters": clusters.labels.tolist(), "order": list(clusters.order),
        })
    return out
