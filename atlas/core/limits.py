"""The bounds of every whole number ``atlas build`` is given: flags, ``atlas.toml`` keys, environment.

One table, so a flag and its ``atlas.toml`` key accept the same values. Numbers are read by
``ssl_attention.integers.whole_number`` (ASCII digits only), so ``--batch-size ²`` or a 5,000-digit
number is one line naming the setting, never a traceback. ``--image-size`` has its own bound
(``ssl_attention.preprocess.MAX_INPUT_SIDE``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ssl_attention.errors import AtlasError
from ssl_attention.integers import shown, whole_number


@dataclass(frozen=True)
class Bound:
    """The accepted range of one whole-number setting."""

    low: int
    high: int

    def check(self, value: str | int) -> int:
        """``value`` (typed text, or an integer from a TOML file) within the bounds; ValueError (a short
        reason) otherwise."""
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected a whole number, got {value!r}")
        number = value if isinstance(value, int) else whole_number(value)
        what = shown(value) if isinstance(value, str) else str(value)
        if number is None:
            raise ValueError(f"{what} is not a whole number (digits 0-9)")
        if number < self.low:
            raise ValueError(f"{what} is below the minimum of {self.low}")
        if number > self.high:
            raise ValueError(f"{what} is above the maximum of {self.high:,}")
        return number

    def describe(self) -> str:
        """The range in words, e.g. ``a whole number from 1 to 1,024``."""
        return f"a whole number from {self.low} to {self.high:,}"


BATCH_SIZE = Bound(1, 1024)  # --batch-size: images per forward pass
RAY_CPUS = Bound(1, 4096)  # --ray-cpus: CPUs per model-holding actor
TARGET_CLASS = Bound(0, 1_000_000)  # --target-class: a class index (ImageNet-21k has 21,843)
SITE_IMAGES = Bound(1, 1_000_000_000)  # --site-images N: publish the first N images
LAYER = Bound(0, 1000)  # a layer number in --query-layers
WORKERS = Bound(1, 1024)  # ATLAS_WORKERS: processes of the post-compute stages
SOURCE_DATE_EPOCH = Bound(0, 2**32 - 1)  # seconds since 1970; the gzip header holds 32 bits
PORT = Bound(1, 65535)  # the PORT of --ray HOST:PORT
MAX_TOKENS = Bound(1, 16_384)  # --max-tokens: patch tokens per image with --resize keep

# atlas build parameter -> its bound (also for its atlas.toml key)
BY_PARAM = {"batch_size": BATCH_SIZE, "ray_cpus": RAY_CPUS, "target_class": TARGET_CLASS,
            "site_images": SITE_IMAGES, "max_tokens": MAX_TOKENS}


def env_number(name: str, bound: Bound) -> int | None:
    """The environment variable ``name`` as a whole number within ``bound``, None when unset or empty;
    AtlasError (one line) for any other value."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    number = whole_number(text)
    if number is None:
        raise AtlasError(f"{name} must be a whole number, got {shown(text)}")
    if not bound.low <= number <= bound.high:
        raise AtlasError(f"{name} must be {bound.describe()}, got {shown(text)}")
    return number
