"""The metrics stage's per-image rows as columns, never one Python object per row, and their file.

A model's scores arrive as ``ScoreBlock``s, one per (image, method): the ``score_maps`` array of every
map of that method with each map's (layer, head) and each column's (metric, box, label). The tidy rows
(``ssl_attention.aggregate.CSV_COLUMNS``, in the order the row-by-row export had: image, method, map,
column) are those blocks flattened with numpy. Written as ``BUILD/metrics/<model>.parquet`` (zstd) with
pyarrow (the ``parquet`` extra), which pandas and polars read directly; without pyarrow as
``<model>.csv.gz`` with the same columns and the CSV export's number format (``%.7g``, NaN empty).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ssl_attention.aggregate import CSV_COLUMNS, Index, MetricRow, read_metrics_csv
from ssl_attention.metrics import higher_is_better

PARQUET = importlib.util.find_spec("pyarrow") is not None
SUFFIX = ".parquet" if PARQUET else ".csv.gz"
FORMAT = "Parquet" if PARQUET else "gzip CSV (install the parquet extra, pyarrow, for Parquet)"


@dataclass(frozen=True)
class ScoreBlock:
    """Scores of every map of one (image, method): ``values[maps, columns]``."""

    image: str
    method: str
    keys: list[tuple[int | None, str]]  # (layer, head) of each map; head "fused", a number, or "" (baselines)
    columns: list[tuple[str, int | None, str]]  # (metric, box, label) of each column
    values: np.ndarray

    @property
    def whole(self) -> int:
        """How many leading columns are whole-image metrics (box None)."""
        return sum(1 for _, box, _ in self.columns if box is None)


STRINGS = ("image", "model", "method", "head", "metric", "label")  # categorical columns: codes + categories


class _Codes:
    """Codes of the distinct strings of one column, in order of appearance."""

    def __init__(self) -> None:
        self.categories: list[str] = []
        self._code: dict[str, int] = {}

    def __call__(self, texts: Iterable[str]) -> np.ndarray:
        out = []
        for t in texts:
            if t not in self._code:
                self._code[t] = len(self.categories)
                self.categories.append(t)
            out.append(self._code[t])
        return np.array(out, dtype=np.int32)


def columns(model: str, blocks: Iterable[ScoreBlock]) -> dict[str, np.ndarray | tuple[np.ndarray, list[str]]]:
    """The tidy rows of ``blocks`` as columns (``CSV_COLUMNS``): the string columns as (int32 codes,
    categories), ``layer``/``box`` int64 with -1 where None, ``value`` float64."""
    codes = {name: _Codes() for name in STRINGS}
    parts: dict[str, list[np.ndarray]] = {name: [] for name in CSV_COLUMNS}
    for b in blocks:
        k, c = b.values.shape
        parts["model"].append(np.repeat(codes["model"]([model]), k * c))
        parts["image"].append(np.repeat(codes["image"]([b.image]), k * c))
        parts["method"].append(np.repeat(codes["method"]([b.method]), k * c))
        parts["layer"].append(np.repeat(np.array([-1 if x is None else x for x, _ in b.keys], dtype=np.int64), c))
        parts["head"].append(np.repeat(codes["head"](h for _, h in b.keys), c))
        parts["metric"].append(np.tile(codes["metric"](m for m, _, _ in b.columns), k))
        parts["box"].append(np.tile(np.array([-1 if x is None else x for _, x, _ in b.columns], dtype=np.int64), k))
        parts["label"].append(np.tile(codes["label"](label for _, _, label in b.columns), k))
        parts["value"].append(np.asarray(b.values, dtype=np.float64).ravel())
    empty = {"layer": np.int64, "box": np.int64, "value": np.float64}
    table: dict = {}
    for name in CSV_COLUMNS:
        joined = np.concatenate(parts[name]) if parts[name] else np.empty(0, empty.get(name, np.int32))
        table[name] = (joined, codes[name].categories) if name in STRINGS else joined
    return table


def write_rows(table: dict, path: Path) -> None:
    """Write ``columns``' table to ``path`` (Parquet or gzip CSV, see the module doc; deterministic bytes)."""
    if PARQUET:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = {}
        for name, values in table.items():
            if name in STRINGS:
                arrays[name] = pa.DictionaryArray.from_arrays(values[0], pa.array(values[1], type=pa.string()))
            elif name in ("layer", "box"):
                arrays[name] = pa.array(values, mask=values < 0, type=pa.int32())
            else:
                arrays[name] = pa.array(values, type=pa.float64())
        pq.write_table(pa.table(arrays), path, compression="zstd")
        return
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    plain = [np.array(v[1], dtype=object)[v[0]] if name in STRINGS else v for name, v in table.items()]
    blank = lambda v: "" if v < 0 else str(v)  # noqa: E731
    for image, model, method, layer, head, metric, box, label, value in zip(*plain, strict=True):
        writer.writerow([image, model, method, blank(layer), head, metric, blank(box), label,
                         f"{value:.7g}" if math.isfinite(value) else ""])
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(text.getvalue().encode("utf-8"))


def read_rows(path: Path) -> list[MetricRow]:
    """The rows of a file ``write_rows`` wrote, as ``MetricRow``s (for users and tests; slow at scale)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [MetricRow(r["image"], r["model"], r["method"], r["layer"], r["head"], r["metric"],
                          math.nan if r["value"] is None else r["value"], r["box"], r["label"])
                for r in pq.read_table(path).to_pylist()]
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return read_metrics_csv(f)


class ImageValues(Mapping[str, float]):
    """One index entry (model, method, layer, head, metric) -> {image: value}, read off a column of the
    stacked scores instead of a dict per entry: the summary reads only a few of the millions of values
    (every map's primary metric, every metric of the best maps), so none is copied until asked for."""

    __slots__ = ("_column", "_images", "_positions")

    def __init__(self, images: tuple[str, ...], positions: dict[str, int], column: np.ndarray) -> None:
        self._images, self._positions, self._column = images, positions, column

    def __getitem__(self, image: str) -> float:
        return float(self._column[self._positions[image]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._images)

    def __len__(self) -> int:
        return len(self._images)

    def values(self) -> list[float]:  # type: ignore[override]  # a list, in image order: what the summary reads
        """The values in image order."""
        return self._column.tolist()


def add_to_index(index: Index, model: str, blocks: list[ScoreBlock]) -> None:
    """Add the whole-image values of one model's ``blocks`` to ``index`` (``ssl_attention.aggregate.Index``),
    images in the blocks' order: an ``ImageValues`` per (map, metric), a plain dict where blocks of
    different shapes add to the same entry."""
    by_method: dict[tuple[str, tuple, tuple], list[ScoreBlock]] = {}
    for b in blocks:
        whole = b.columns[: b.whole]
        by_method.setdefault((b.method, tuple(b.keys), tuple(whole)), []).append(b)
    for (method, keys, whole), group in by_method.items():
        images = tuple(b.image for b in group)
        positions = {image: n for n, image in enumerate(images)}
        stacked = np.stack([b.values[:, : len(whole)] for b in group])  # [images, maps, whole-image metrics]
        for i, (layer, head) in enumerate(keys):
            for j, (metric, _, _) in enumerate(whole):
                key = (model, method, layer, head, metric)
                values = ImageValues(images, positions, stacked[:, i, j])
                if key in index:  # e.g. images whose blocks have other maps or columns
                    index[key] = {**index[key], **values}
                else:
                    index[key] = values


def _csv_value(v: float) -> float | None:
    """A value as the per-image panels show it: as the CSV export wrote it (``%.7g``), None for non-finite."""
    return float(f"{v:.7g}") if math.isfinite(v) else None


def image_panel(blocks: list[ScoreBlock], names: list[str], primary: str) -> dict:
    """Compact JSON of one model on one image for the image page's metric panel (``image/panel.mjs``),
    from that image's blocks.

    ``{"baselines": {name: [values]}, "methods": {method: [{"f": [values], "h": head, "b": [values],
    "p": [primary of each head]} per layer]}}``; values follow ``names`` (as the CSV export rounds them,
    None for NaN); ``h`` (the head with the highest ``primary`` on this image, ties: lowest number),
    ``b`` and ``p`` (every head's ``primary``, for the inspector) where the method has heads.
    """
    baselines, methods = {}, {}
    sign = 1.0 if higher_is_better(primary) else -1.0  # the best head: the lowest of a lower-is-better metric
    for b in sorted(blocks, key=lambda b: b.method):
        at = {metric: j for j, (metric, box, _) in enumerate(b.columns) if box is None}
        rows = {key: i for i, key in enumerate(b.keys)}

        def values(i: int, at=at, b=b) -> list[float | None]:
            return [_csv_value(b.values[i, at[n]]) if n in at else None for n in names]

        if b.keys == [(None, "")]:
            baselines[b.method] = values(0)
            continue
        layers = sorted({layer for layer, _ in b.keys})
        per_layer: list[dict] = [{"f": [None] * len(names)}] * (layers[-1] + 1)
        for layer in layers:
            entry: dict = {"f": values(rows[(layer, "fused")]) if (layer, "fused") in rows else [None] * len(names)}
            heads = sorted(int(h) for key_layer, h in b.keys if key_layer == layer and h.isdigit())
            scores = [_csv_value(b.values[rows[(layer, str(h))], at[primary]]) if primary in at else None
                      for h in heads]
            best = max(range(len(heads)), key=lambda i: (scores[i] is not None, sign * (scores[i] or 0.0), -i),
                       default=None)
            if best is not None and scores[best] is not None:
                entry.update(h=heads[best], b=values(rows[(layer, str(heads[best]))]))
            if heads and primary in at:
                entry["p"] = [None] * (heads[-1] + 1)
                for head, score in zip(heads, scores, strict=True):
                    entry["p"][head] = score
            per_layer[layer] = entry
        methods[b.method] = per_layer
    return {"baselines": baselines, "methods": methods}


def head_values(blocks: list[ScoreBlock], metric: str) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per method with per-head maps: (image ids, float32 ``[layers, heads, images]``) of the whole-image
    ``metric`` of every head on every image (NaN where it is missing), for the head viewer."""
    by_method: dict[str, list[ScoreBlock]] = {}
    for b in blocks:
        if any(head.isdigit() for _, head in b.keys):
            by_method.setdefault(b.method, []).append(b)
    out = {}
    for method, group in by_method.items():
        heads = [(layer, int(head)) for b in group for layer, head in b.keys if head.isdigit()]
        layers, count = max(layer for layer, _ in heads) + 1, max(head for _, head in heads) + 1
        values = np.full((layers, count, len(group)), np.nan, dtype=np.float32)
        for n, b in enumerate(group):
            at = next((j for j, (name, box, _) in enumerate(b.columns) if box is None and name == metric), None)
            if at is None:
                continue
            for i, (layer, head) in enumerate(b.keys):
                if head.isdigit():
                    values[layer, int(head), n] = b.values[i, at]
        out[method] = ([b.image for b in group], values)
    return out
