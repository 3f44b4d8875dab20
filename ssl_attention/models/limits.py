"""The size of a model, checked before any of its weights are allocated.

A config is only numbers: ``hidden_size: 1000000`` or ``num_hidden_layers: 10000`` describe a model that
would exhaust memory (a ``MemoryError``, or the kernel killing the whole build) while it is built. The
model is therefore first built on PyTorch's ``meta`` device, which allocates nothing, its parameters are
counted, and a model that is too large is refused in one line.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from ssl_attention.errors import ModelLoadError

# 8 billion parameters (32 GB of float32 weights): above the largest public ViTs (DINOv3 ViT-7B, 6.7 B)
MAX_PARAMETERS = 8_000_000_000
BYTES_PER_PARAMETER = 4  # the models are built in float32


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_model_size(build: Callable[[], nn.Module], where: str) -> int:
    """The parameter count of the model ``build()`` makes, built on the meta device (nothing allocated).

    Raises ModelLoadError naming ``where`` (the config file) when the model has more than MAX_PARAMETERS
    parameters, or when its float32 weights would not fit in this machine's memory; what ``build`` raises
    goes through (the caller says it as it says a failed build).
    """
    with torch.device("meta"):
        count = sum(p.numel() for p in build().parameters())
    size = f"{count / 1e9:,.1f} billion parameters ({count * BYTES_PER_PARAMETER / 1e9:,.1f} GB of float32 weights)"
    if count > MAX_PARAMETERS:
        raise ModelLoadError(f"{where}: the config describes a model of {size}, more than the limit of "
                             f"{MAX_PARAMETERS / 1e9:.0f} billion; refused before allocating it")
    memory = memory_bytes()
    if memory is not None and count * BYTES_PER_PARAMETER > memory:
        raise ModelLoadError(f"{where}: the config describes a model of {size}, more than this machine's "
                             f"{memory / 1e9:.1f} GB of memory; refused before allocating it")
    return count
