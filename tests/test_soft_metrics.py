"""Issue 27: mse, kl and emd against the soft ground truth, compared with a reference written here from the
issue's formulas (cell loops; EMD as the transport linear program solved by scipy's linprog, not POT)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssl_attention.annotations import Box
from ssl_attention.metrics import baseline_scores, higher_is_better, make_target, score_map, score_maps

linprog = pytest.importorskip("scipy.optimize").linprog


def reference_g(boxes: list[Box], size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """G cell by cell, boxes clamped to the image."""
    (width, height), (gh, gw) = size, grid
    g = np.zeros(grid)
    for r in range(gh):
        for c in range(gw):
            u, v = (c + 0.5) / gw, (r + 0.5) / gh
            for b in boxes:
                left, right = max(b.x, 0) / width, min(b.x + b.w, width) / width
                top, bottom = max(b.y, 0) / height, min(b.y + b.h, height) / height
                if right <= left or bottom <= top:
                    continue
                sx, sy = max((right - left) / 4, 1 / (2 * gw)), max((bottom - top) / 4, 1 / (2 * gh))
                mx, my = (left + right) / 2, (top + bottom) / 2
                g[r, c] = max(g[r, c], math.exp(-((u - mx) ** 2 / (2 * sx**2) + (v - my) ** 2 / (2 * sy**2))))
    return g / g.max()


def clean(a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(a), a, 0.0).astype(np.float64)


def reference_mse(a: np.ndarray, g: np.ndarray) -> float:
    a = clean(a)
    lo, hi = a.min(), a.max()
    a_hat = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return float(sum((a_hat.flat[i] - g.flat[i]) ** 2 for i in range(a.size)) / a.size)


def reference_kl(a: np.ndarray, g: np.ndarray) -> float:
    a = clean(a)
    q = np.maximum(a, 0) + 1e-12
    q = q / q.sum()
    p = g / g.sum()
    return float(sum(p.flat[i] * math.log(p.flat[i] / q.flat[i]) for i in range(a.size) if p.flat[i] > 0))


def reference_pool(x: np.ndarray) -> np.ndarray:
    """Sum-pool a grid of more than 1,024 cells to at most 32 x 32 (each cell into the pooled cell that holds
    its centre); smaller grids unchanged."""
    gh, gw = x.shape
    if gh * gw <= 1024:
        return x
    ph, pw = math.ceil(gh / math.ceil(gh / 32)), math.ceil(gw / math.ceil(gw / 32))
    out = np.zeros((ph, pw))
    for r in range(gh):
        for c in range(gw):
            out[int((r + 0.5) / gh * ph), int((c + 0.5) / gw * pw)] += x[r, c]
    return out


def reference_emd(a: np.ndarray, g: np.ndarray, size: tuple[int, int]) -> float:
    """The full transport LP (every cell to every cell) by linprog."""
    mass = np.maximum(clean(a), 0)
    if mass.sum() <= 0:
        return math.nan
    src, dst = reference_pool(mass / mass.sum()), reference_pool(g / g.sum())
    (gh, gw), (width, height) = src.shape, size
    centres = [((c + 0.5) / gw * width, (r + 0.5) / gh * height) for r in range(gh) for c in range(gw)]
    n = len(centres)
    cost = np.array([[math.dist(p, q) / max(width, height) for q in centres] for p in centres])
    rows = np.zeros((2 * n, n * n))
    for i in range(n):
        rows[i, i * n:(i + 1) * n] = 1  # out of cell i
        rows[n + i, i::n] = 1  # into cell i
    result = linprog(cost.ravel(), A_eq=rows[:-1], b_eq=np.concatenate([src.ravel(), dst.ravel()])[:-1],
                     bounds=(0, None), method="highs")
    assert result.status == 0
    return float(result.fun)


def soft_of(target, maps: np.ndarray) -> dict[str, np.ndarray]:
    names = [name for name, box, _ in _columns(target)]
    values = score_maps(maps, target)
    return {m: values[:, names.index(m)] for m in ("mse", "kl", "emd")}


def _columns(target):
    from ssl_attention.metrics import metric_columns

    return metric_columns(target)


def random_boxes(rng: np.random.Generator, size: tuple[int, int], n: int) -> list[Box]:
    """Boxes anywhere around the image, some partly outside it."""
    width, height = size
    out = []
    for i in range(n):
        x, y = rng.uniform(-0.3, 0.9) * width, rng.uniform(-0.3, 0.9) * height
        out.append(Box(float(x), float(y), float(rng.uniform(0.02, 0.6) * width),
                       float(rng.uniform(0.02, 0.6) * height), f"l{i % 2}"))
    return out


CASES = [  # (image size, grid, patch)
    ((160, 120), (6, 8), 16),
    ((90, 200), (9, 4), 14),  # portrait, non-square grid
    ((300, 300), (7, 7), 32),
    ((640, 80), (8, 130), 8),  # 1,040 cells: pooled to 8 x 26 for the EMD
]


@pytest.mark.parametrize(("size", "grid", "patch"), CASES)
def test_soft_metrics_equal_the_reference(size, grid, patch) -> None:
    rng = np.random.default_rng(sum(grid))
    boxes = random_boxes(rng, size, 3)
    target = make_target(boxes, size, grid, patch)
    g = reference_g(list(target.boxes), size, grid)
    assert np.allclose(target.soft.g.reshape(grid), g, rtol=1e-12, atol=1e-15)
    maps = np.stack([rng.random(grid) ** 3, rng.normal(size=grid), np.zeros(grid), np.full(grid, 2.5)])
    maps[1, 0, :2] = [np.nan, np.inf]  # non-finite cells count as 0
    got = soft_of(target, maps.astype(np.float32))
    for k, m in enumerate(maps.astype(np.float32)):
        assert got["mse"][k] == pytest.approx(reference_mse(m, g), rel=1e-9, abs=1e-12)
        assert got["kl"][k] == pytest.approx(reference_kl(m, g), rel=1e-9, abs=1e-12)
        want = reference_emd(m, g, size)
        if math.isnan(want):
            assert math.isnan(got["emd"][k])  # the all-zero map: no positive mass
        else:
            assert got["emd"][k] == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_edge_maps() -> None:
    size, grid = (200, 100), (5, 10)
    target = make_target([Box(150, 50, 100, 80, "x")], size, grid, 10)  # partly outside the image
    g = reference_g(list(target.boxes), size, grid)
    zero = {s.metric: s.value for s in score_map(np.zeros(grid, np.float32), target)}
    assert zero["mse"] == pytest.approx(float((g**2).mean()))
    assert zero["kl"] == pytest.approx(reference_kl(np.zeros(grid), g))
    assert math.isnan(zero["emd"])
    nan = {s.metric: s.value for s in score_map(np.full(grid, np.nan, np.float32), target)}
    assert all(math.isnan(nan[m]) for m in ("mse", "kl", "emd"))  # a map without any value: every metric NaN
    assert not any(higher_is_better(m) for m in ("mse", "kl", "emd"))


def test_baselines_get_the_soft_metrics() -> None:
    size, grid = (160, 120), (6, 8)
    target = make_target(random_boxes(np.random.default_rng(3), size, 2), size, grid, 16)
    g = reference_g(list(target.boxes), size, grid)
    base = {name: {s.metric: s.value for s in scores if s.box is None}
            for name, scores in baseline_scores(target).items()}
    constant = np.ones(grid)
    assert base["uniform"]["mse"] == pytest.approx(reference_mse(constant, g))
    assert base["uniform"]["kl"] == pytest.approx(reference_kl(constant, g))
    assert base["uniform"]["emd"] == pytest.approx(reference_emd(constant, g, size), rel=1e-6)
    gy, gx = (np.arange(6) + 0.5 - 3) / 1.5, (np.arange(8) + 0.5 - 4) / 2
    centre = np.exp(-0.5 * (gy[:, None] ** 2 + gx[None, :] ** 2)).astype(np.float32)
    assert base["centre_gaussian"]["emd"] == pytest.approx(reference_emd(centre, g, size), rel=1e-6)


def test_emd_only_for_the_leading_maps_when_asked() -> None:
    size, grid = (160, 120), (6, 8)
    target = make_target([Box(10, 10, 60, 50, "a")], size, grid, 16)
    maps = np.random.default_rng(1).random((4, *grid)).astype(np.float32)
    names = [n for n, _, _ in _columns(target)]
    some, every = score_maps(maps, target, transport=2), score_maps(maps, target)
    at = names.index("emd")
    assert np.array_equal(some[:2, at], every[:2, at]) and np.isnan(some[2:, at]).all()
    others = [j for j in range(len(names)) if j != at]
    assert np.array_equal(some[:, others], every[:, others], equal_nan=True)
