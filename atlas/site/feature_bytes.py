"""The site file of one (model, image) pair's features: ``features.bin`` (``atlas.core.layout.feature_file``).

Little-endian, in this order (``templates/assets/atlas/features.mjs`` decodes it):

* a header of five uint32: ``B`` (boxes with a ``box_similarity`` map), ``L`` (layers of ``pca``),
  ``Lf`` (feature layers), ``D`` (token width, 0 without features), ``N`` (patches, ``gh * gw``);
* ``pca`` float32 ``[L, 3, N]``; ``box_similarity`` float32 ``[B, L, N]``;
* ``features_scale`` float32 ``[Lf, N]``; ``features`` int8 ``[Lf, N, D]``.

The arrays are the npz's own (``ssl_attention.features``), so the page draws exactly the exported values.
"""

from __future__ import annotations

import numpy as np

from ssl_attention.features import BOX_ARRAY, FEATURE_SCALE_ARRAY, FEATURES_ARRAY, PCA_ARRAY


def feature_bytes(arrays: dict[str, np.ndarray]) -> bytes | None:
    """The file's bytes from a pair's npz ``arrays``; None for a pair without ``pca`` (a CNN, an old cache)."""
    if PCA_ARRAY not in arrays:
        return None
    pca = np.asarray(arrays[PCA_ARRAY])
    layers, n = pca.shape[0], pca.shape[2] * pca.shape[3]
    boxes = np.asarray(arrays.get(BOX_ARRAY, np.zeros((0, layers, n), np.float32)))
    codes = np.asarray(arrays.get(FEATURES_ARRAY, np.zeros((0, n, 0), np.int8)))
    scale = np.asarray(arrays.get(FEATURE_SCALE_ARRAY, np.zeros((0, n), np.float32)))
    header = np.array([boxes.shape[0], layers, codes.shape[0], codes.shape[2], n], "<u4")
    parts = (header, pca.astype("<f4"), boxes.astype("<f4"), scale.astype("<f4"), codes.astype(np.int8))
    return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)
