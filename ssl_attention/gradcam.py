"""Grad-CAM of CNN stages (Selvaraju et al. 2017), one forward and one backward pass per batch.

For stage output A (channels c) and target score y (the top-1 class logit by default):
weights w_c = spatial mean of dy/dA_c; map = ReLU(sum_c w_c * A_c). Each stage's map is upsampled
bilinearly to the grid of the first stage (input size / 4) so all stages share one array.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ssl_attention.models.base import VisionModel


@contextmanager
def reproducible_backward(device: torch.device) -> Iterator[None]:
    """Make the backward pass give the same bits on every run.

    CPU backward kernels sum partial gradients across threads in a run-dependent order (seen here:
    differences of 1e-9 between two identical calls with 2 threads, none with 1), which would break
    byte-identical rebuilds; on CUDA, cuDNN picks non-deterministic algorithms unless told otherwise.
    """
    cudnn = torch.backends.cudnn
    threads, cudnn_det, cudnn_bench = torch.get_num_threads(), cudnn.deterministic, cudnn.benchmark
    if device.type == "cpu":
        torch.set_num_threads(1)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        cudnn.deterministic, cudnn.benchmark = cudnn_det, cudnn_bench


def gradcam_maps(model: VisionModel, pixel_values: torch.Tensor,
                 target: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """``gradcam`` [B, stages, gh, gw] (float32) and ``gradcam_class`` [B] (the target class index).

    Gradients are taken with ``torch.autograd.grad`` with respect to the stage outputs only, so nothing
    accumulates in parameter ``.grad`` between calls, and reproducibly (``reproducible_backward``).
    """
    activations: list[torch.Tensor] = []
    handles = [stage.register_forward_hook(lambda _m, _i, out: activations.append(out)) for stage in model.stages]
    try:
        with torch.enable_grad():
            inputs = pixel_values.detach().requires_grad_(True)
            logits = model.run(inputs).float()
            classes = logits.argmax(dim=1) if target is None else target.to(logits.device)
            score = logits.gather(1, classes[:, None]).sum()
            with reproducible_backward(pixel_values.device):  # the forward is reproducible as it is
                grads = torch.autograd.grad(score, activations)
    finally:
        for handle in handles:
            handle.remove()
    gh, gw = model.grid
    cams = []
    for act, grad in zip(activations, grads, strict=True):
        weights = grad.float().mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * act.detach().float()).sum(dim=1, keepdim=True))
        cams.append(F.interpolate(cam, size=(gh, gw), mode="bilinear", align_corners=False)[:, 0])
    stacked = torch.stack(cams, dim=1)
    return {
        "gradcam": stacked.cpu().numpy().astype(np.float32),
        "gradcam_class": classes.cpu().numpy().astype(np.int64),
    }
