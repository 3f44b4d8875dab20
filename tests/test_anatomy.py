"""Head anatomy: per-head means and CIs of the head statistics, the high-norm rule, the clustering on
statistics features, and what the anatomy and image pages carry, each against an independent computation
from the npz arrays (plain loops, the statistics module, a from-scratch average linkage)."""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from atlas.core import layout
from atlas.site.anatomy_data import load_anatomy
from atlas.site.catalog import load_catalog
from atlas.site.stage import SiteReport
from ssl_attention.aggregate import N_BOOT, SEED, bootstrap_ci, cluster_by_features, feature_distances
from ssl_attention.aggregate.anatomy import (
    bootstrap_columns,
    head_estimates,
    high_norm_cells,
    high_norm_mask,
    high_norm_share,
)


def _reference_high_norm(norms: np.ndarray) -> list[set[int]]:
    """Per layer, the cells with 0.6745 (x - median) / MAD > 3.5 (statistics.median, loops)."""
    out = []
    for layer in norms:
        values = [float(v) for v in layer.reshape(-1)]
        med = statistics.median(values)
        mad = statistics.median(abs(v - med) for v in values)
        out.append({i for i, v in enumerate(values) if mad > 0 and 0.6745 * (v - med) / mad > 3.5})
    return out


def _reference_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap 95% interval (N_BOOT resamples of the images, seed SEED)."""
    v = np.asarray(values, dtype=np.float64)
    picks = np.random.default_rng(SEED).integers(0, len(v), size=(N_BOOT, len(v)))
    boot = np.array([v[p].sum() / len(v) for p in picks])
    return float(np.mean(v)), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def test_high_norm_rule_on_planted_outliers():
    rng = np.random.default_rng(3)
    norms = rng.uniform(38, 42, (3, 4, 6))  # bounded: no outlier by chance
    norms[1].flat[[5, 17]] = 200.0  # two outliers in layer 1
    norms[2] = 7.0  # a constant layer: MAD 0, nothing to measure
    norms[2].flat[0] = 500.0  # still MAD 0 (23 of 24 equal): marks none
    mask = high_norm_mask(norms)
    assert mask.shape == norms.shape
    assert [set(np.flatnonzero(m)) for m in mask] == _reference_high_norm(norms)
    assert high_norm_cells(norms) == [[], [5, 17], []]
    shares = high_norm_share(norms[None])
    assert [s.mean for s in shares] == [0.0, 2 / 24, 0.0]


def test_head_estimates_against_a_bootstrap_reference():
    values = np.random.default_rng(5).uniform(0, 100, (7, 2, 3))
    estimates = head_estimates(values)
    for layer, head in itertools.product(range(2), range(3)):
        e = estimates[layer][head]
        mean, lo, hi = _reference_ci(values[:, layer, head])
        assert (e.n, e.mean, e.lo, e.hi) == pytest.approx((7, mean, lo, hi), rel=1e-12)


def _reference_distances(features: np.ndarray) -> np.ndarray:
    columns = []
    for col in features.T:
        mu, sd = statistics.fmean(col), statistics.pstdev(col)
        columns.append([(v - mu) / sd if sd > 0 else 0.0 for v in col])
    rows = list(zip(*columns, strict=True))
    return np.array([[math.dist(a, b) for b in rows] for a in rows])


def _reference_average_linkage(dist: np.ndarray, n_clusters: int) -> set[frozenset[int]]:
    """Merge the two clusters with the lowest mean pairwise member distance (recomputed from scratch)."""
    clusters = [frozenset([i]) for i in range(len(dist))]
    while len(clusters) > n_clusters:
        pairs = itertools.combinations(range(len(clusters)), 2)
        a, b = min(pairs, key=lambda p: np.mean([dist[i, j] for i in clusters[p[0]] for j in clusters[p[1]]]))
        clusters = [c for k, c in enumerate(clusters) if k not in (a, b)] + [clusters[a] | clusters[b]]
    return set(clusters)


def test_clustering_on_statistics_features_against_a_reference():
    rng = np.random.default_rng(11)
    # three well-separated groups of heads in (distance px, entropy nats), with very different scales
    centres = np.array([[20.0, 1.0], [60.0, 1.2], [100.0, 3.0]])
    features = np.concatenate([c + rng.normal(0, [3.0, 0.05], (5, 2)) for c in centres])[rng.permutation(15)]
    features = np.concatenate([features, [[55.0, 2.0]]])  # one head between the groups
    dist = feature_distances(features)
    np.testing.assert_allclose(dist, _reference_distances(features), rtol=1e-12, atol=1e-12)
    for n in (2, 3, 4):
        labels = cluster_by_features(features, n).labels
        found = {frozenset(np.flatnonzero(labels == c).tolist()) for c in set(labels.tolist())}
        assert found == _reference_average_linkage(dist, n), n
    # a constant column weighs nothing; a NaN value sits at its feature's mean (z = 0, sd of the finite values)
    odd = feature_distances(np.array([[1.0, 5.0], [2.0, 5.0], [np.nan, 5.0]]))
    np.testing.assert_allclose(odd, [[0, 2, 1], [2, 0, 1], [1, 1, 0]])


def _npz_stack(fake_build: Path, model: str, name: str) -> tuple[list[str], np.ndarray]:
    manifest = json.loads((fake_build / "maps" / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["name"] == model)
    ids = sorted(entry["maps"])
    arrays = []
    for i in ids:
        with np.load(fake_build / "maps" / entry["maps"][i]) as data:
            arrays.append(data[name].astype(np.float64))
    return ids, np.stack(arrays)


def test_anatomy_of_the_fake_build_matches_the_npz_arrays(fake_build: Path):
    anatomy = load_anatomy(load_catalog(fake_build))
    assert sorted(anatomy) == ["dinov2", "siglip"]  # the CNN has no head statistics
    assert "prefix_mass" not in anatomy["siglip"].heads and not anatomy["siglip"].prefix_norm  # no prefix tokens
    for name, a in anatomy.items():
        for stat in a.heads:
            ids, values = _npz_stack(fake_build, name, stat)
            assert a.images == tuple(ids)
            for layer, head in itertools.product(range(values.shape[1]), range(values.shape[2])):
                e = a.heads[stat][layer][head]
                assert (e.mean, e.lo, e.hi) == pytest.approx(_reference_ci(values[:, layer, head]), rel=1e-9)
        ids, norms = _npz_stack(fake_build, name, "token_norm")
        marked = {i: _reference_high_norm(n) for i, n in zip(ids, norms, strict=True)}
        assert {i: [set(c) for c in cells] for i, cells in a.cells.items()} == marked
        for layer, e in enumerate(a.high_norm):
            shares = [len(marked[i][layer]) / norms[0, layer].size for i in ids]
            assert (e.mean, e.lo, e.hi) == pytest.approx(_reference_ci(np.array(shares)), rel=1e-9, abs=1e-12)
        assert sum(len(c) for cells in a.cells.values() for c in cells) > 0  # the fake build plants some
        assert len(a.clusters) == a.model.layers * a.model.heads


def _html(site: Path, src: str) -> str:
    return (site / layout.page_url(src, True) / "index.html").read_text(encoding="utf-8")


def test_every_dot_and_cell_links_to_its_head(built_site: SiteReport, fake_build: Path):
    site = built_site.site_dir
    catalog = load_catalog(fake_build)
    for model in (m for m in catalog.models if m.kind == "vit"):
        src = layout.anatomy_page(model.slug)
        html = _html(site, src)
        dots = re.findall(r'<a href="([^"]+)" aria-label="[^"]*" data-layer="(\d+)" data-head="(\d+)">', html)
        assert len(dots) == model.layers * model.heads
        tables = re.findall(r'data-layer="(\d+)" data-head="(\d+)"><a href="([^"]+)"', html)
        tables_per_stat = 3 if model.prefix_tokens else 2
        assert len(tables) == tables_per_stat * model.layers * model.heads
        links = [(h, int(lv), int(hv)) for h, lv, hv in dots] + [(h, int(lv), int(hv)) for lv, hv, h in tables]
        for href, lv, hv in links:
            assert href == layout.relative(src, layout.head_url(model.slug, lv, hv), True)
            target = (site / layout.page_url(src, True) / href.split("#")[0]).resolve()
            assert (target / "index.html").is_file() or target.is_file(), href
    index = _html(site, layout.ANATOMY_PAGE)
    assert "dinov2" in index and "siglip" in index and "Without head statistics: resnet50" in index


def test_image_page_data_lists_the_high_norm_cells(built_site: SiteReport, fake_build: Path):
    html = _html(built_site.site_dir, layout.image_page("astronaut"))
    block = re.search(r'<script type="application/json" id="atlas-data">(.*?)</script>', html, re.S).group(1)
    data = json.loads(block)
    expected = {}
    for name in ("dinov2", "siglip"):
        ids, norms = _npz_stack(fake_build, name, "token_norm")
        expected[name] = [sorted(c) for c in _reference_high_norm(norms[ids.index("astronaut")])]
    assert data["highNorm"] == expected


def test_bootstrap_columns_equal_bootstrap_ci_per_column():
    values = np.random.default_rng(9).gamma(2.0, 3.0, (11, 6))
    values[4, 2] = np.nan  # this column goes through bootstrap_ci, which drops the NaN
    found = bootstrap_columns(values)
    for k in range(values.shape[1]):
        e, ref = found[k], bootstrap_ci(values[:, k])
        assert e.n == ref.n and (e.mean, e.lo, e.hi) == pytest.approx((ref.mean, ref.lo, ref.hi), rel=1e-12)
    assert found[2].n == 10
    assert bootstrap_columns(np.ones((1, 2)))[0] == bootstrap_ci([1.0])  # one image: lo = hi = mean
