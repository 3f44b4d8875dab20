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

from ssl_attention.aggregate.statistics import Estimate, bootstrap_ci

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


def high_norm_share(token_norms: np.ndarray) -> list[Estimate]:
    """Per layer, the share of high-norm patch tokens: mean over images with its bootstrap CI.

    ``token_norms``: ``[N images, L, gh, gw]`` (one grid per model); each image's share is its count of
    high-norm tokens divided by ``gh * gw``.
    """
    norms = np.asarray(token_norms)
    shares = np.stack([high_norm_mask(n).reshape(n.shape[0], -1).mean(axis=1) for n in norms])  # [N, L]
    return [bootstrap_ci(shares[:, layer]) for layer in range(shares.shape[1])]


def head_estimates(values: np.ndarray) -> list[list[Estimate]]:
    """``[L][H]`` estimates (mean over images, bootstrap CI) of a statistic stacked as ``[N images, L, H]``."""
    v = np.asarray(values, dtype=np.float64)
    return [[bootstrap_ci(v[:, layer, head]) for head in range(v.shape[2])] for layer in range(v.shape[1])]


def layer_estimates(values: np.ndarray) -> list[Estimate]:
    """Per layer, the mean over images of the per-image head average (``[N, L, H]`` -> ``L`` estimates)."""
    v = np.asarray(values, dtype=np.float64).mean(axis=2)
    return [bootstrap_ci(v[:, layer]) for layer in range(v.shape[1])]
