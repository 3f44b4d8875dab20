"""Head anatomy across a dataset: per-head means of the head statistics with bootstrap CIs, and high-norm tokens.

The inputs are the statistics of ``ssl_attention.head_statistics`` stacked over images: ``distance``,
``entropy`` and ``prefix_mass`` as ``[N images, L, H]``, ``token_norm`` as ``[L, gh, gw]`` per image.

**High-norm rule** (documented on the methods page): per image and layer, a patch token is high-norm when
its norm's robust z-score (Iglewicz & Hoaglin's modified z-score) exceeds :data:`HIGH_NORM_Z`,

    z_i = 0.6745 * (nu_i - median(nu)) / MAD,   MAD = median(|nu - median(nu)|),   high-norm: z_i > 3.5

i.e. ``nu_i > median + 5.19 MAD``. A layer whose MAD is 0 (at least half its tokens share one norm) has no
spread to measure and marks none.
"""

from __future__ import annotations

import numpy as np

from ssl_attention.aggregate.statistics import CONFIDENCE, N_BOOT, SEED, Estimate, bootstrap_ci

MAD_SCALE = 0.6745  # the normal distribution's MAD / sigma: z = MAD_SCALE * (x - median) / MAD
HIGH_NORM_Z = 3.5


def high_norm_mask(token_norm: np.ndarray) -> np.ndarray:
    """Boolean ``[L, gh, gw]``: the high-norm patch tokens of one image, per layer (see the module's rule)."""
    norms = np.asarray(token_norm, dtype=np.float64)
    flat = norms.reshape(norms.shape[0], -1)
    median = np.median(flat, axis=1, keepdims=True)
    mad = np.median(np.abs(flat - median), axis=1, keepdims=True)
    z = np.divide(MAD_SCALE * (flat - median), mad, out=np.zeros_like(flat), where=mad > 0)
    return (z > HIGH_NORM_Z).reshape(norms.shape)


def high_norm_cells(token_norm: np.ndarray) -> list[list[int]]:
    """Per layer, the row-major cell indices (``r * gw + c``) of the high-norm tokens of one image."""
    mask = high_norm_mask(token_norm)
    return [np.flatnonzero(layer).tolist() for layer in mask]


def bootstrap_columns(values: np.ndarray) -> list[Estimate]:
    """``bootstrap_ci`` of each column of ``values`` ``[N, K]``, all columns from one set of resamples.

    The resamples are those ``bootstrap_ci`` draws for ``N`` values (same seed), so each estimate equals
    ``bootstrap_ci(values[:, k])`` up to float rounding; a column with a non-finite value goes through
    ``bootstrap_ci`` itself (which drops those values).
    """
    v = np.asarray(values, dtype=np.float64)
    n, k = v.shape
    finite = np.isfinite(v).all(axis=0)
    out: list[Estimate | None] = [None] * k
    if n and finite.any():
        picks = np.random.default_rng(SEED).integers(0, n, size=(N_BOOT, n))
        counts = np.bincount((np.arange(N_BOOT)[:, None] * n + picks).ravel(), minlength=N_BOOT * n)
        means = counts.reshape(N_BOOT, n).astype(np.float64) @ v[:, finite] / n  # [N_BOOT, finite columns]
        alpha = (1 - CONFIDENCE) / 2
        lo, hi = np.quantile(means, [alpha, 1 - alpha], axis=0)
        column_means = v[:, finite].mean(axis=0)
        for j, col in enumerate(np.flatnonzero(finite)):
            out[col] = Estimate(float(column_means[j]), float(lo[j]), float(hi[j]), n)
    return [e if e is not None else bootstrap_ci(v[:, col]) for col, e in enumerate(out)]


def high_norm_share(token_norms: np.ndarray) -> list[Estimate]:
    """Per layer, the share of high-norm patch tokens: mean over images with its bootstrap CI.

    ``token_norms``: ``[N images, L, gh, gw]``, or N arrays ``[L, gh, gw]`` of their own grids (``--resize
    keep``); each image's share is its count of high-norm tokens divided by its ``gh * gw``.
    """
    shares = np.stack([high_norm_mask(n).reshape(n.shape[0], -1).mean(axis=1) for n in token_norms])  # [N, L]
    return bootstrap_columns(shares)


def head_estimates(values: np.ndarray) -> list[list[Estimate]]:
    """``[L][H]`` estimates (mean over images, bootstrap CI) of a statistic stacked as ``[N images, L, H]``."""
    v = np.asarray(values, dtype=np.float64)
    flat = bootstrap_columns(v.reshape(v.shape[0], -1))
    heads = v.shape[2]
    return [flat[layer * heads : (layer + 1) * heads] for layer in range(v.shape[1])]


def layer_estimates(values: np.ndarray) -> list[Estimate]:
    """Per layer, the mean over images of the per-image head average (``[N, L, H]`` -> ``L`` estimates)."""
    return bootstrap_columns(np.asarray(values, dtype=np.float64).mean(axis=2))
