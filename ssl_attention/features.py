"""What the patch tokens *are*: box similarity, PCA colour maps and the exported patch features.

Every array here is computed from the output hidden states of each layer (transformers'
``hidden_states[l + 1]``, before any final norm), in the maps' forward pass (``ssl_attention.attention``
receives them from ``VisionModel.block_outputs``, as for the token-norm statistic). Let ``X[l]`` be the
patch tokens of layer l, ``[N, D]`` with ``N = gh * gw`` (row-major), of one image:

* ``pca`` [L, 3, gh, gw] float32 (a statistic of the registry, so in every ViT npz): ``C = X[l] - mean``
  (over the patches), ``C = U S V^T``; the projections ``C v_k`` on the first three unit right singular
  vectors (unscaled, so the norm of component k is the k-th singular value), each axis oriented so that
  its largest-magnitude projection is positive. Fewer than three components: the rest are zero. Solved
  in float64 from a Gram matrix (:func:`pca_projections`).
* ``box_similarity`` [B, L, gh, gw] float32 (images with boxes, B = the boxes in manifest order): the
  cosine similarity of each patch token of layer l to the box's query vector, the mean of the patch tokens
  of the cells whose centre ``((c + 1/2) / gw, (r + 1/2) / gh)`` (image-relative) lies inside the box
  (half-open, as ``box_mask``), or, when no centre lies inside, the one cell holding the box's centre.
* ``features`` int8 [Lf, N, D] and ``features_scale`` float32 [Lf, N] for the chosen feature layers: each
  token divided by its largest absolute value, ``code = round(127 * x / max|x|)``, ``scale = max|x| / 127``;
  the decoded token is ``features * scale`` (the tests check that cosines between decoded tokens stay
  within 0.02 of the exact ones; a token with one huge channel keeps its other channels coarser).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by the functions that need it: the site reads the names without it
    import torch

    from ssl_attention.methods import TokenLayout

PCA_ARRAY = "pca"
BOX_ARRAY = "box_similarity"
FEATURES_ARRAY = "features"
FEATURE_SCALE_ARRAY = "features_scale"
COMPONENTS = 3
INT8_LEVELS = 127

RelativeBox = tuple[float, float, float, float]  # (x, y, w, h) divided by the image's width and height


@dataclass(frozen=True)
class FeatureRequest:
    """What of the patch features a forward pass keeps besides the maps: the feature layers (``features``)
    and, per image of the batch, its boxes in image-relative coordinates (``box_similarity``, padded to
    ``slots`` boxes: rows past an image's own boxes are zero)."""

    layers: tuple[int, ...] = ()
    boxes: tuple[tuple[RelativeBox, ...], ...] | None = None  # per batch item; None: no box similarity
    slots: int = 0  # boxes per image in the output (at least the most boxes of any image)

    @property
    def empty(self) -> bool:
        """Whether it asks for nothing."""
        return not self.layers and not self.slots

    def part(self, start: int, stop: int, pad_to: int) -> FeatureRequest:
        """The request of batch items ``start:stop``, padded with images without boxes to ``pad_to`` items."""
        if self.boxes is None:
            return self
        boxes = self.boxes[start:stop]
        return FeatureRequest(self.layers, boxes + ((),) * (pad_to - len(boxes)), self.slots)


def relative_boxes(boxes: Sequence, width: float, height: float) -> tuple[RelativeBox, ...]:
    """``Box``es of an image of ``width x height`` pixels in image-relative coordinates."""
    return tuple((b.x / width, b.y / height, b.w / width, b.h / height) for b in boxes)


def box_cells(box: RelativeBox, grid: tuple[int, int]) -> np.ndarray:
    """Bool ``[gh, gw]``: the cells whose centre lies in ``box`` (half-open), else the cell of its centre."""
    gh, gw = grid
    x, y, w, h = box
    cols = (np.arange(gw) + 0.5) / gw
    rows = (np.arange(gh) + 0.5) / gh
    inside = ((rows >= y) & (rows < y + h))[:, None] & ((cols >= x) & (cols < x + w))[None, :]
    if not inside.any():
        r = min(max(math.floor((y + h / 2) * gh), 0), gh - 1)
        c = min(max(math.floor((x + w / 2) * gw), 0), gw - 1)
        inside[r, c] = True
    return inside


def box_cell_indices(request: FeatureRequest, grid: tuple[int, int]) -> list[list[np.ndarray]]:
    """Per batch item, per box: the row-major indices of the box's cells (``box_cells``)."""
    return [[np.flatnonzero(box_cells(box, grid)) for box in image_boxes] for image_boxes in request.boxes or ()]


def pca_projections(tokens: torch.Tensor) -> torch.Tensor:
    """``[B, N, D]`` patch tokens -> ``[B, 3, N]``: the centred tokens projected on their first three unit
    right singular vectors, each oriented so that its largest-magnitude projection is positive.

    Solved in float64 from the smaller of the two Gram matrices (``C C^T`` [N, N]: the projections are
    ``sqrt(lambda_k) u_k``; ``C^T C`` [D, D]: they are ``C v_k``), asking LAPACK for the three largest
    eigenpairs only (``scipy.linalg.eigh(subset_by_index=...)``, BLAS on one thread): 15 times faster than
    an SVD of ``C`` and twice as fast as a full eigendecomposition, and, in float64, the same float32 bytes
    whatever the number of threads (a Ray worker's too). A token with non-finite values gives NaN
    projections, which fail the model in one line.
    """
    import scipy.linalg
    import torch
    from threadpoolctl import threadpool_limits

    batch, n, d = tokens.shape
    finite = torch.isfinite(tokens).flatten(1).all(dim=1)
    centred = tokens.double()
    centred = centred - centred.mean(dim=1, keepdim=True)
    if not bool(finite.all()):
        centred = torch.where(finite[:, None, None], centred, 0.0)
    k = min(COMPONENTS, n, d)
    small = min(n, d)
    grams = (centred @ centred.transpose(1, 2) if n <= d else centred.transpose(1, 2) @ centred).cpu().numpy()
    projections = torch.zeros(batch, COMPONENTS, n, dtype=torch.float64, device=tokens.device)
    with threadpool_limits(limits=1, user_api="blas"):  # a 256 x 256 problem: BLAS threads only contend with
        solved = [scipy.linalg.eigh(g, subset_by_index=[small - k, small - 1]) for g in grams]  # torch's
    for b, (values, vectors) in enumerate(solved):  # eigenvalues ascending
        top = torch.from_numpy(np.ascontiguousarray(vectors[:, ::-1])).to(tokens.device)
        if n <= d:
            projections[b, :k] = (top * torch.from_numpy(np.sqrt(np.clip(values[::-1], 0, None)).copy())
                                  .to(tokens.device)).T
        else:
            projections[b, :k] = (centred[b] @ top).T
    peak = projections.gather(-1, projections.abs().argmax(dim=-1, keepdim=True))
    projections = projections * torch.where(peak < 0, -1.0, 1.0)
    projections = projections.masked_fill(~finite[:, None, None], float("nan"))
    return projections.to(tokens.dtype)


def pca_reduction(layout: TokenLayout):
    """The ``pca`` statistic's per-layer step: hidden states ``[B, T, D]`` -> ``[B, 3, gh, gw]``."""
    patches = layout.patches
    return lambda _layer, hidden: pca_projections(hidden[:, patches]).reshape(-1, COMPONENTS, *layout.grid)


def quantise_tokens(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[..., D]`` -> int8 codes ``[..., D]`` and float32 scales ``[...]`` (decoded = codes * scale)."""
    scale = tokens.abs().amax(dim=-1) / INT8_LEVELS
    safe = scale.masked_fill(scale <= 0, 1.0)
    codes = (tokens / safe[..., None]).round_().clamp_(-INT8_LEVELS, INT8_LEVELS).to(dtype=_int8())
    return codes, scale.float()


def decode_tokens(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 tokens of ``features`` codes ``[..., D]`` and their ``features_scale`` ``[...]``."""
    return codes.astype(np.float32) * np.asarray(scale, np.float32)[..., None]


def box_similarities(tokens: torch.Tensor, cells: list[list[np.ndarray]], slots: int) -> torch.Tensor:
    """``[B, N, D]`` tokens -> ``[B, slots, N]``: each box's cosine map to the mean of its cells' tokens.

    One box at a time, so that an image's values never depend on the other images or boxes of its batch
    (a batched product may pick other kernels for another shape); rows past an image's boxes are zero."""
    from torch.nn.functional import normalize

    unit = normalize(tokens, dim=-1)
    out = tokens.new_zeros(tokens.shape[0], slots, tokens.shape[1])
    for b, image_cells in enumerate(cells):
        for s, index in enumerate(image_cells):
            query = tokens[b, index.tolist()].mean(dim=0)
            out[b, s] = unit[b] @ normalize(query, dim=0)
    return out


class FeatureCollector:
    """Receives each layer's output hidden states and keeps the requested features and box similarities."""

    def __init__(self, layout: TokenLayout, layers: int, request: FeatureRequest):
        self.layout, self.request = layout, request
        self.cells = box_cell_indices(request, layout.grid) if request.slots else None
        self.boxes: list[torch.Tensor | None] = [None] * layers
        self.features: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def step(self, layer: int, hidden: torch.Tensor) -> None:
        """Layer ``layer``'s hidden states ``[B, T, D]`` (float32)."""
        tokens = hidden[:, self.layout.patches]
        if self.cells is not None:
            self.boxes[layer] = box_similarities(tokens, self.cells, self.request.slots)
        if layer in self.request.layers:
            self.features[layer] = quantise_tokens(tokens)

    def result(self) -> dict[str, np.ndarray]:
        """``box_similarity`` [B, slots, L, gh, gw] and ``features``/``features_scale`` [B, Lf, ...]."""
        import torch

        out: dict[str, np.ndarray] = {}
        if self.cells is not None:
            stacked = torch.stack(self.boxes, dim=2)  # [B, slots, L, N]
            out[BOX_ARRAY] = stacked.reshape(*stacked.shape[:3], *self.layout.grid).cpu().numpy().astype(np.float32)
        if self.request.layers:
            kept = [self.features[layer] for layer in self.request.layers]
            out[FEATURES_ARRAY] = torch.stack([codes for codes, _ in kept], dim=1).cpu().numpy()
            out[FEATURE_SCALE_ARRAY] = torch.stack([s for _, s in kept], dim=1).cpu().numpy().astype(np.float32)
        return out


def _int8():
    import torch

    return torch.int8
