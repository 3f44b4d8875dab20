"""The head anatomy of each ViT of a build, read from the statistics in its cached npz files.

Per model: the per-head means over images (with bootstrap CIs) of ``distance``, ``entropy`` and
``prefix_mass``, the share of high-norm patch tokens per layer (``ssl_attention.aggregate.anatomy``'s
rule) with each image's high-norm cells, the prefix tokens' norms, and a clustering of the heads on
their statistics (``cluster_by_features`` on mean distance and entropy). The anatomy pages and the image
pages' high-norm overlay read it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

import numpy as np

from atlas.core.manifest import ModelEntry
from atlas.site.catalog import Catalog
from ssl_attention.aggregate import Estimate, cluster_by_features
from ssl_attention.aggregate.anatomy import (
    bootstrap_columns,
    head_estimates,
    high_norm_cells,
    high_norm_share,
    layer_estimates,
)

HEAD_STATISTICS = ("distance", "entropy", "prefix_mass")  # [L, H] per image
CLUSTER_FEATURES = ("distance", "entropy")
STATISTIC_CLUSTERS = 4


@dataclass(frozen=True)
class ModelAnatomy:
    """One ViT's anatomy over the ``images`` (ids) whose npz has every statistic of the model's entry."""

    model: ModelEntry
    images: tuple[str, ...]
    heads: dict[str, list[list[Estimate]]]  # statistic -> [L][H]
    layers: dict[str, list[Estimate]]  # statistic -> per layer, the mean over heads
    high_norm: list[Estimate] = field(default_factory=list)  # per layer: share of high-norm patch tokens
    cells: dict[str, list[list[int]]] = field(default_factory=dict)  # image id -> per layer high-norm cells
    prefix_norm: list[list[Estimate]] = field(default_factory=list)  # [L][prefix token]
    patch_norm: list[Estimate] = field(default_factory=list)  # per layer: the image's median patch norm
    clusters: list[int] = field(default_factory=list)  # per head, layer-major (l * H + h): its cluster


def _read(path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` of one npz (float64), or None if the file or one of them is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {n: np.asarray(data[n], dtype=np.float64) for n in names}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def model_anatomy(catalog: Catalog, model: ModelEntry) -> ModelAnatomy | None:
    """The anatomy of ``model``; None for a model without head statistics (a CNN, an old cache)."""
    names = tuple(n for n in (*HEAD_STATISTICS, "token_norm", "prefix_norm") if n in model.statistics)
    if not any(n in names for n in HEAD_STATISTICS):
        return None
    stacks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    images = []
    for image_id in sorted(model.maps):
        arrays = _read(catalog.maps_file(model, image_id), names)
        if arrays is None:
            continue
        images.append(image_id)
        for n in names:
            stacks[n].append(arrays[n])
    if not images:
        return None
    stacked: dict = {n: np.stack(v) for n, v in stacks.items() if n != "token_norm"}
    if "token_norm" in stacks:  # per patch: one grid per image under --resize keep, so a list
        stacked["token_norm"] = stacks["token_norm"]
    heads = {n: head_estimates(stacked[n]) for n in HEAD_STATISTICS if n in stacked}
    layers = {n: layer_estimates(stacked[n]) for n in HEAD_STATISTICS if n in stacked}
    extra: dict = {}
    if "token_norm" in stacked:
        norms = stacked["token_norm"]
        extra["high_norm"] = high_norm_share(norms)
        extra["cells"] = {i: high_norm_cells(n) for i, n in zip(images, norms, strict=True)}
        medians = np.stack([np.median(n.reshape(n.shape[0], -1), axis=1) for n in norms])  # [N, L]
        extra["patch_norm"] = bootstrap_columns(medians)
    if "prefix_norm" in stacked:
        p = stacked["prefix_norm"]  # [N, L, prefix]
        extra["prefix_norm"] = head_estimates(p)  # [L][prefix token]
    if all(n in heads for n in CLUSTER_FEATURES):
        features = np.stack([np.array([[e.mean for e in row] for row in heads[n]]).reshape(-1)
                             for n in CLUSTER_FEATURES], axis=1)  # [L*H, F]
        if features.shape[0] > 1:
            clustering = cluster_by_features(features, min(STATISTIC_CLUSTERS, features.shape[0]))
            extra["clusters"] = clustering.labels.tolist()
    return ModelAnatomy(model=model, images=tuple(images), heads=heads, layers=layers, **extra)


def load_anatomy(catalog: Catalog) -> dict[str, ModelAnatomy]:
    """Model name -> its anatomy, for every model of the catalog that has head statistics."""
    out = {}
    for model in catalog.models:
        anatomy = model_anatomy(catalog, model)
        if anatomy is not None:
            out[model.name] = anatomy
    return out
