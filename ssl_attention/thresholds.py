"""Threshold rules shared by the metrics and the atlas page (whose JavaScript mirrors them exactly).

Both rules work on the cells of one raw map (any shape; cells are taken in row-major order, index
``i = r * gw + c``) and return a boolean mask of the same shape. They are specified step by step so
that a JavaScript port gives the same cells bit for bit:

**Top-p % rule** (:func:`top_percent_mask`)

1. ``v[i] = float32(m[i])`` (a ``Float32Array`` in JS); NaN becomes ``-Infinity``.
2. ``n`` = number of cells; ``k = max(1, floor(n * p / 100 + 0.5))``, evaluated in float64 in exactly
   that order (JS: ``Math.max(1, Math.floor(n * p / 100 + 0.5))``). This rounds half *up*; Python's
   ``round`` (half to even) must not be used. ``0 <= p <= 100``, so ``1 <= k <= n``.
3. Order the cells by value, largest first; equal values by index, lowest first. Compare with ``<``/``>``,
   never by subtraction (``Infinity - Infinity`` is NaN). ``-0`` and ``+0`` are equal.
4. Keep the first ``k`` cells of that order.

**Mass rule** (:func:`mass_threshold_mask`, DINO's "smallest set of cells holding ``mass`` of the
attention", default 0.6)

1. ``w[i] = float32(m[i])``, then in float64: NaN and negative values (including ``-Infinity``)
   become 0. If any cell is ``+Infinity``, those cells become 1 and all others 0.
2. Order the cells ascending by ``w``; equal values by index, *highest* first. (This is exactly the
   reverse of the top-p order, so both rules prefer the lower index among ties.)
3. ``c[j]`` = running sum of ``w`` along that order, accumulated one cell at a time in float64;
   ``S = c[n-1]``.
4. If ``S == 0`` (an all-zero, all-negative or all-NaN map) **no cell is kept**. Otherwise keep the
   cell at position ``j`` when ``c[j] / S > 1 - mass`` (float64; ``0 < mass <= 1``).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_MASS = 0.6


def rank_values(m: np.ndarray) -> np.ndarray:
    """Flattened (row-major) float32 copy of ``m`` used for ranking: NaN -> ``-inf``."""
    v = np.asarray(m, dtype=np.float32).ravel().copy()
    v[np.isnan(v)] = -np.inf
    return v


def descending_order(m: np.ndarray) -> np.ndarray:
    """Cell indices by value, largest first; ties by index, lowest first (step 3 of the top-p rule)."""
    return np.argsort(-rank_values(m), kind="stable")


def descending_rows(rank: np.ndarray) -> np.ndarray:
    """:func:`descending_order` of each row of ``[K, n]`` float32 ranking values (no NaN) at once.

    Each cell becomes one unique ``uint64`` key, its value's bits ordered largest first in the high
    half and its index in the low half, so a plain sort of the keys gives the stable order (ties by
    index) without a stable argsort: about 1.4x faster.
    """
    r = np.asarray(rank, dtype=np.float32) + np.float32(0.0)  # -0.0 -> +0.0: they tie, as in the comparison
    bits = r.view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))  # unsigned order = float order
    keys = (~ascending).astype(np.uint64) << np.uint64(32) | np.arange(r.shape[-1], dtype=np.uint64)
    keys.sort(axis=-1)
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.intp)


def top_k(n: int, p: float) -> int:
    """Number of cells kept by the top-p % rule: ``max(1, floor(n * p / 100 + 0.5))``."""
    if not 0 <= p <= 100:
        raise ValueError(f"percent must be in [0, 100], got {p}")
    return max(1, math.floor(n * p / 100 + 0.5))


def top_percent_mask(m: np.ndarray, p: float) -> np.ndarray:
    """Boolean mask of the ``k`` largest cells of ``m`` (top-p % rule in the module doc)."""
    m = np.asarray(m)
    if m.size == 0:
        raise ValueError("cannot threshold an empty map")
    keep = np.zeros(m.size, dtype=bool)
    keep[descending_order(m)[: top_k(m.size, p)]] = True
    return keep.reshape(m.shape)


def mass_values(m: np.ndarray) -> np.ndarray:
    """Flattened float64 non-negative weights of the mass rule (step 1): NaN/negative -> 0, +inf wins."""
    w = np.asarray(m, dtype=np.float32).ravel().astype(np.float64)
    posinf = np.isposinf(w)
    if posinf.any():
        return posinf.astype(np.float64)
    w[~(w > 0)] = 0.0  # NaN compares False, so it lands here too
    return w


def mass_threshold_mask(m: np.ndarray, mass: float = DEFAULT_MASS) -> np.ndarray:
    """Boolean mask of the cells holding ``mass`` of the attention (mass rule in the module doc).

    A map without positive mass (all zero, negative or NaN) keeps no cell at all.
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    m = np.asarray(m)
    w = mass_values(m)
    ascending = descending_order(w)[::-1]
    c = np.cumsum(w[ascending])  # sequential float64 accumulation
    keep = np.zeros(m.size, dtype=bool)
    if c.size and c[-1] > 0:
        keep[ascending[c / c[-1] > 1 - mass]] = True
    return keep.reshape(m.shape)


def mass_value_rows(stack: np.ndarray) -> np.ndarray:
    """:func:`mass_values` of each row of ``[K, n]`` maps at once: ``[K, n]`` float64."""
    w = np.asarray(stack, dtype=np.float32).astype(np.float64)
    posinf = np.isposinf(w)
    w[~(w > 0)] = 0.0
    rows = posinf.any(axis=1)
    w[rows] = posinf[rows]
    return w


def mass_threshold_masks(weights: np.ndarray, mass: float = DEFAULT_MASS,
                         sorted_as: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """:func:`mass_threshold_mask` of each row of ``[K, n]`` weights that are already :func:`mass_values`
    (non-negative float64), at once: the same cells, row by row (same order, same sequential sums).

    ``sorted_as = (rank, order)``: float32 rows and their :func:`descending_order` (e.g. ``score_maps``'
    ranking of the maps); rows of ``rank`` equal to ``float32(weights)`` (maps without negative or NaN
    cells) reuse that order instead of sorting again.
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    w = np.asarray(weights, dtype=np.float64)
    w32 = w.astype(np.float32)
    if sorted_as is None:
        descending = descending_rows(w32)
    else:
        rank, order = sorted_as
        descending = np.array(order, copy=True)
        other = ~(rank == w32).all(axis=1)
        if other.any():
            descending[other] = descending_rows(w32[other])
    ascending = descending[:, ::-1]
    c = np.cumsum(np.take_along_axis(w, ascending, axis=1), axis=1)
    total = c[:, -1:] if c.shape[1] else np.zeros((c.shape[0], 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        sorted_keep = (c / total > 1 - mass) & (total > 0)
    keep = np.zeros(w.shape, dtype=bool)
    np.put_along_axis(keep, ascending, sorted_keep, axis=1)
    return keep
