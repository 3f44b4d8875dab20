"""Threshold-free alignment of attention maps with a soft ground truth made from the boxes.

The soft ground truth ``G`` of an image on a map grid ``(gh, gw)`` (:func:`soft_target`): cell centres
``u_c = (c + 1/2)/gw``, ``v_r = (r + 1/2)/gh`` in image-relative coordinates; for each box (clamped to the
image) with relative left ``l``, top ``t``, right ``r``, bottom ``b``: a Gaussian around its centre with
``sigma_x = max((r - l)/4, 1/(2 gw))``, ``sigma_y = max((b - t)/4, 1/(2 gh))``; ``G`` is the cell-wise
maximum over the boxes divided by its maximum.

The metrics, all lower-is-better, of a raw map ``A`` whose non-finite cells count as 0:

* ``mse``: mean over cells of ``(A_hat - G)^2``, ``A_hat`` the min-max normalised ``A`` (zeros if constant);
* ``kl``: ``sum_{p > 0} p ln(p / q)``, ``p = G / sum G``, ``q = (max(A, 0) + 1e-12) / sum(max(A, 0) + 1e-12)``;
* ``emd``: the exact earth mover's distance between ``max(A, 0)/sum`` and ``p`` on the cell centres, ground
  distance ``sqrt((du W)^2 + (dv H)^2) / max(W, H)`` (1 = the image's longer side); NaN without positive
  mass. Grids of more than :data:`MAX_CELLS` cells are first sum-pooled (:func:`pooling`).

EMD is solved exactly by POT's network simplex (``ot.emd2``) on the difference of the two distributions:
for a metric ground distance the mass both share in a cell stays where it is (Kantorovich-Rubinstein), so
only the cells where one exceeds the other enter the problem, which is the same optimum on fewer arcs.
A ``SoftTarget`` remembers each problem it solved (``memo``, by the SHA-256 of the map's distribution on
the EMD grid), so the same map is never solved twice against the same ground truth; ``atlas.metrics.emd_memo``
keeps that memo beside a pair's maps.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import cached_property, lru_cache

import numpy as np

from ssl_attention.annotations import Box

EPS = 1e-12  # added to every cell of q (kl)
MAX_CELLS = 1024  # EMD: larger grids are sum-pooled first ...
MAX_SIDE = 32  # ... to at most this many cells a side
EMD_ITERATIONS = 10_000_000  # network simplex iteration cap (far above what a 32 x 32 grid needs)
MEMO_VERSION = b"emd-1"  # part of ``SoftTarget.key``: a change of the EMD's definition invalidates kept memos


def soft_target(boxes: Sequence[Box], image_size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """``G`` (float64 ``[gh, gw]``, maximum 1) of ``boxes`` (image pixels, clamped to the image ``(W, H)``);
    all zeros without boxes."""
    width, height = image_size
    gh, gw = grid
    u = (np.arange(gw) + 0.5) / gw
    v = (np.arange(gh) + 0.5) / gh
    g = np.zeros((gh, gw))
    for box in boxes:
        left, right = max(box.x, 0.0) / width, min(box.x2, width) / width
        top, bottom = max(box.y, 0.0) / height, min(box.y2, height) / height
        sx, sy = max((right - left) / 4, 1 / (2 * gw)), max((bottom - top) / 4, 1 / (2 * gh))
        gx = (u - (left + right) / 2) ** 2 / (2 * sx**2)
        gy = (v - (top + bottom) / 2) ** 2 / (2 * sy**2)
        g = np.maximum(g, np.exp(-(gy[:, None] + gx[None, :])))
    top_value = g.max() if g.size else 0.0
    return g / top_value if top_value > 0 else g


def pooling(grid: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray]:
    """The EMD's grid for a map grid: ``(pooled grid, pooled cell of each cell [gh*gw])``.

    A grid of at most :data:`MAX_CELLS` cells is its own. A larger one is sum-pooled by ``f = ceil(side / 32)``
    cells per side to ``ceil(side / f)`` cells a side; each cell goes to the pooled cell holding its centre.
    """
    gh, gw = grid
    if gh * gw <= MAX_CELLS:
        return grid, np.arange(gh * gw)
    ph, pw = math.ceil(gh / math.ceil(gh / MAX_SIDE)), math.ceil(gw / math.ceil(gw / MAX_SIDE))
    rows = np.floor((np.arange(gh) + 0.5) * ph / gh).astype(np.int64)
    cols = np.floor((np.arange(gw) + 0.5) * pw / gw).astype(np.int64)
    return (ph, pw), (rows[:, None] * pw + cols[None, :]).ravel()


@lru_cache(maxsize=64)
def ground_distance(grid: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """``[cells, cells]`` distances between the cell centres of ``grid`` on an image ``(W, H)``, in units of
    the longer side."""
    gh, gw = grid
    width, height = image_size
    x = np.tile((np.arange(gw) + 0.5) / gw * width, gh)
    y = np.repeat((np.arange(gh) + 0.5) / gh * height, gw)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) / max(width, height)
    d.setflags(write=False)
    return d


def finite(flat: np.ndarray) -> np.ndarray:
    """float64 copy of ``flat`` with non-finite cells set to 0."""
    out = np.asarray(flat, dtype=np.float64).copy()
    out[~np.isfinite(out)] = 0.0
    return out


class SoftTarget:
    """The soft ground truth of one image on one grid and what the three metrics read of it."""

    def __init__(self, boxes: Sequence[Box], image_size: tuple[int, int], grid: tuple[int, int]) -> None:
        self.image_size, self.grid = image_size, grid
        self.g = soft_target(boxes, image_size, grid).ravel()
        self.memo: dict[bytes, float] = {}  # emd by the SHA-256 of the map's distribution on the EMD grid
        self.solved = 0  # problems solved here (not found in the memo)

    @cached_property
    def key(self) -> str:
        """What every EMD against this ground truth depends on besides the map: ``G``, the grid and the image's
        size (and the definition's version), hashed; a kept memo is used only under the same key."""
        digest = hashlib.sha256(MEMO_VERSION)
        digest.update(np.asarray([*self.image_size, *self.grid], dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.g, dtype=np.float64).tobytes())
        return digest.hexdigest()

    @cached_property
    def p(self) -> np.ndarray:
        """``G / sum G`` over the cells."""
        return self.g / self.g.sum()

    @cached_property
    def pooled(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(cell -> EMD cell, ``p`` on the EMD grid, number of EMD cells)."""
        grid, index = pooling(self.grid)
        n = grid[0] * grid[1]
        return index, np.bincount(index, weights=self.p, minlength=n), n

    @cached_property
    def distance(self) -> np.ndarray:
        """Ground distance of the EMD grid."""
        return ground_distance(pooling(self.grid)[0], tuple(self.image_size))

    def mse(self, flat: np.ndarray) -> np.ndarray:
        """``mse`` of each row of ``flat`` ``[K, cells]``."""
        a = finite(flat)
        lo, hi = a.min(axis=1, keepdims=True), a.max(axis=1, keepdims=True)
        span = hi - lo
        a_hat = np.divide(a - lo, span, out=np.zeros_like(a), where=span > 0)
        diff = a_hat - self.g[None, :]
        # einsum, not ``sum(axis=1)``: the same sums whatever the stack size (see MapStack.coverage)
        return np.einsum("kn->k", np.ascontiguousarray(diff * diff)) / a.shape[1]

    def kl(self, flat: np.ndarray) -> np.ndarray:
        """``kl`` of each row of ``flat``."""
        q = np.maximum(finite(flat), 0.0) + EPS
        q /= np.einsum("kn->k", q)[:, None]
        support = self.p > 0
        p = self.p[support]
        terms = np.ascontiguousarray(p[None, :] * np.log(p[None, :] / q[:, support]))  # rows summed in one order
        return np.einsum("kn->k", terms)

    def emd(self, flat: np.ndarray) -> np.ndarray:
        """``emd`` of each row of ``flat`` (NaN for a row without positive mass)."""
        mass = np.maximum(finite(flat), 0.0)
        index, p, n = self.pooled
        out = np.full(mass.shape[0], math.nan)
        for k, row in enumerate(mass):
            total = row.sum()
            if total > 0:
                a = np.bincount(index, weights=row, minlength=n) / total
                digest = hashlib.sha256(a.tobytes()).digest()
                value = self.memo.get(digest)
                if value is None:
                    value = self.memo[digest] = transport(a, p, self.distance)
                    self.solved += 1
                out[k] = value
        return out


def transport(a: np.ndarray, b: np.ndarray, distance: np.ndarray) -> float:
    """Exact earth mover's distance between the distributions ``a`` and ``b`` (each summing to 1) under a
    metric ``distance``: POT's network simplex on the cells where they differ."""
    import ot  # POT: imported on first use (its import costs more than a metrics worker's other imports)

    diff = a - b
    source, sink = diff > 0, diff < 0
    supply, demand = diff[source], -diff[sink]
    moved = supply.sum()
    if moved <= 0 or demand.sum() <= 0:
        return 0.0
    cost = distance[np.ix_(source, sink)]
    return float(ot.emd2(supply / moved, demand / demand.sum(), cost, numItermax=EMD_ITERATIONS)) * moved
