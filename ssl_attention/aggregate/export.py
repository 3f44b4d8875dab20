"""The metrics stage's files: the tidy CSV (:data:`CSV_COLUMNS`) and the JSON summary."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from ssl_attention.aggregate.rows import BASELINES, CSV_COLUMNS, FUSED, Index, MetricRow, index_rows
from ssl_attention.aggregate.statistics import (
    CONFIDENCE,
    DEFAULT_BOX_METRIC,
    DEFAULT_PRIMARY,
    N_BOOT,
    SEED,
    Estimate,
    best_head,
    best_layer,
    bootstrap_ci,
    head_ranking,
    label_breakdown,
    layer_head_table,
)
from ssl_attention.metrics import MetricConfig, higher_is_better


def write_metrics_csv(rows: Iterable[MetricRow], path: Path) -> None:
    """Tidy CSV with :data:`CSV_COLUMNS`; ``layer``/``box`` empty when None, NaN values empty."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            value = f"{r.value:.7g}" if math.isfinite(r.value) else ""
            writer.writerow(
                [r.image, r.model, r.method, _blank(r.layer), r.head, r.metric, _blank(r.box), r.label, value]
            )


def read_metrics_csv(path: Path | TextIO) -> list[MetricRow]:
    """Read a CSV written by :func:`write_metrics_csv` (a path or an open text file) back into rows
    (empty value -> NaN)."""
    if hasattr(path, "read"):
        return [_row_of(d) for d in csv.DictReader(path)]
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [_row_of(d) for d in csv.DictReader(f)]


def _row_of(d: dict[str, str]) -> MetricRow:
    value = float(d["value"]) if d["value"] else math.nan
    layer, box = _int_or_none(d["layer"]), _int_or_none(d["box"])
    return MetricRow(
        d["image"], d["model"], d["method"], layer, d["head"], d["metric"], value, box, d["label"]
    )


def _blank(v: int | None) -> str:
    return "" if v is None else str(v)


def _int_or_none(s: str) -> int | None:
    return int(s) if s else None


def _estimate_json(e: Estimate) -> dict[str, Any]:
    return {name: _json_float(v) for name, v in asdict(e).items()}


def _json_float(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _entry(index: Index, model: str, method: str, layer: int | None, head: str) -> dict[str, Any]:
    """One map kind's every metric with its CI, as JSON."""
    names = sorted(k[4] for k in index if k[:4] == (model, method, layer, head))
    metrics = {
        m: _estimate_json(bootstrap_ci(list(index[(model, method, layer, head, m)].values()))) for m in names
    }
    return {"model": model, "method": method, "layer": layer, "head": head, "metrics": metrics}


def _table_json(index: Index, model: str, method: str, metric: str) -> dict[str, Any]:
    layers, heads, table = layer_head_table(index, model, method, metric)
    values = [[_json_float(float(v)) for v in row] for row in table]
    return {
        "model": model,
        "method": method,
        "metric": metric,
        "layers": layers,
        "heads": heads,
        "values": values,
    }


def summarise(
    rows: Sequence[MetricRow], primary: str = DEFAULT_PRIMARY, box_metric: str = DEFAULT_BOX_METRIC
) -> dict[str, Any]:
    """The JSON summary (see the metrics docs page for its layout).

    ``leaderboard``: per model x method the fused map of the best layer by ``primary``, every metric
    with its CI; ``best_heads``: the same for the best single head; ``baselines``; ``tables``: layer x
    head means of ``primary``; ``head_ranking``; ``labels``: ``box_metric`` per label for the
    leaderboard entries. NaN is written as null.
    """
    return summarise_index(index_rows(rows), lambda select: rows, len({r.image for r in rows}), primary, box_metric)


def summarise_index(
    index: Index,
    label_rows: Callable[[Mapping[tuple[str, str], tuple[int | None, str]]], Iterable[MetricRow]],
    n_images: int,
    primary: str = DEFAULT_PRIMARY,
    box_metric: str = DEFAULT_BOX_METRIC,
) -> dict[str, Any]:
    """:func:`summarise` from the whole-image ``index`` (``index_rows``) without a row per value:
    ``label_rows(select)`` gives the per-box rows of ``box_metric`` (at least those of the ``select``ed
    (layer, head) of each (model, method)); ``n_images`` counts the images with rows."""
    pairs = sorted({k[:2] for k in index if k[1] not in BASELINES})
    leaderboard, best_heads, ranking, select = [], [], [], {}
    for model, method in pairs:
        layer = best_layer(index, model, method, primary)
        if layer is not None:
            select[(model, method)] = (layer[0], FUSED)
            leaderboard.append(_entry(index, model, method, layer[0], FUSED))
        head = best_head(index, model, method, primary)
        if head is not None:
            best_heads.append(_entry(index, model, method, head[0], head[1]))
            pair = {k: v for k, v in index.items() if k[:2] == (model, method)}  # one scan of the index per pair
            for metric in ranked_metrics(pair, model, method, primary):  # the primary first, then each metric
                ranks = [asdict(h) for h in head_ranking(pair, model, method, metric)]
                ranking.append({"model": model, "method": method, "metric": metric, "heads": ranks})
    baselines = sorted({k[:2] for k in index if k[1] in BASELINES})
    labels = label_breakdown(label_rows(select), box_metric, select=select)
    return {
        "format_version": 1,
        "primary_metric": primary,
        "box_metric": box_metric,
        "confidence": CONFIDENCE,
        "n_boot": N_BOOT,
        "seed": SEED,
        "n_images": n_images,
        "leaderboard": leaderboard,
        "best_heads": best_heads,
        "baselines": [_entry(index, model, method, None, "") for model, method in baselines],
        "tables": [_table_json(index, model, method, metric) for metric in _table_metrics(index, primary)
                   for model, method in pairs],
        "head_ranking": ranking,
        "labels": [
            {"model": k[0], "method": k[1], "layer": k[2], "head": k[3], "label": k[4], **_estimate_json(e)}
            for k, e in labels.items()
        ],
    }


def _table_metrics(index: Index, primary: str) -> list[str]:
    """The metrics with layer x head tables: ``primary``, then each lower-is-better metric (the threshold-free
    ones, for the model pages' charts) that the index has, in the registry's order."""
    present = {k[4] for k in index}
    return [primary] + [m for m in MetricConfig().names() if m != primary and m in present and not higher_is_better(m)]


def ranked_metrics(index: Index, model: str, method: str, primary: str) -> list[str]:
    """The whole-image metrics the heads of one model x method are ranked by: ``primary``, then every other
    metric with a value for some head (in the registry's order; ``emd``, scored for fused maps only, has
    none)."""
    order = {name: n for n, name in enumerate(MetricConfig().names())}
    names = {k[4] for k in index if k[:2] == (model, method) and k[3].isdigit()}
    rest = sorted(names - {primary}, key=lambda m: (order.get(m, len(order)), m))
    return [primary] + [m for m in rest if best_head(index, model, method, m) is not None]


def write_summary_json(summary: Mapping[str, Any], path: Path) -> None:
    """Write :func:`summarise`'s dict as strict JSON (no NaN tokens), pretty-printed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n", encoding="utf-8")
