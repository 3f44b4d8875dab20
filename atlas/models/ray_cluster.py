"""The Ray cluster of ``atlas build --ray ADDRESS``: connecting, its resources, where the images come from.

Ray is an optional extra; nothing here imports it before it is needed, so ``--ray`` without it is one
line saying how to install it (exit 2).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from atlas.dataset.stage import ImageRecord
from ssl_attention.errors import AtlasError

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'attention-atlas[ray]'"


class RayUnavailable(AtlasError):
    """``--ray`` was asked for but Ray (with Ray Data) cannot be imported."""


def require_ray() -> None:
    """Raise ``RayUnavailable`` (the install line) when ``ray`` or ``ray.data`` cannot be imported."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None


@dataclass(frozen=True)
class ClusterShape:
    """What the build may use on the cluster and how it splits it into model-holding actors."""

    address: str
    nodes: int
    cpus: int
    gpus: int
    cpus_per_actor: int  # without GPUs; with GPUs each actor takes one GPU (and one CPU)

    @property
    def actor_resources(self) -> dict[str, float]:
        """The Ray resources of one actor: one GPU each when there are GPUs, else ``cpus_per_actor`` CPUs."""
        return {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": self.cpus_per_actor}

    @property
    def slots(self) -> int:
        """How many actors fit at once: one per GPU, else one per ``cpus_per_actor`` CPUs (at least one)."""
        return self.gpus if self.gpus else max(1, self.cpus // self.cpus_per_actor)

    def line(self) -> str:
        """One line for the console."""
        per = "one actor per GPU" if self.gpus else f"one actor per {self.cpus_per_actor} CPU(s)"
        return (f"Ray cluster {self.address}: {self.nodes} node(s), {self.cpus} CPUs, {self.gpus} GPUs; "
                f"{per}, up to {self.slots} at once")


@contextmanager
def connected(address: str, cpus_per_actor: int) -> Iterator[ClusterShape]:
    """Connect to ``address`` (``local`` starts a Ray on this machine, bound to 127.0.0.1) for the block.

    A connection made here is closed at the end (a local Ray is stopped); one the process already had is kept.
    """
    require_ray()
    import ray

    logging.getLogger("ray").setLevel(logging.WARNING)
    owned = not ray.is_initialized()
    if owned:
        args = {"_node_ip_address": "127.0.0.1", "include_dashboard": False} if address == "local" else \
            {"address": address}
        try:
            ray.init(**args, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AtlasError(f"--ray {address}: cannot connect to a Ray cluster ({' '.join(str(exc).split())})") \
                from None
    try:
        _quiet_ray_data()
        resources = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        yield ClusterShape(address, nodes, int(resources.get("CPU", 0)), int(resources.get("GPU", 0)),
                           cpus_per_actor)
    finally:
        if owned:
            ray.shutdown()


def _quiet_ray_data() -> None:
    """Ray Data's own progress bars and start-up lines off: the build draws one bar per model."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Placement:
    """Where the workers get the images: from the driver's paths (shared storage) or shipped by the driver."""

    shared: bool
    line: str


def image_placement(images: list[ImageRecord]) -> Placement:
    """Ask every alive node whether it sees the images at the driver's paths (one small task per node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from atlas.models.ray_worker import sees_images

    if not images:
        return Placement(True, "Ray: no images to compute")
    folder = Path(images[0].path).parent
    paths = [os.fspath(record.path) for record in images]
    check = ray.remote(num_cpus=0)(sees_images)
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    answers = ray.get([check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                       .remote(paths, images[0].sha256) for node in nodes])
    blind = [node["NodeManagerAddress"] for node, sees in zip(nodes, answers, strict=True) if not sees]
    if not blind:
        return Placement(True, f"Ray: workers read the images from {folder} (visible on all {len(nodes)} node(s))")
    return Placement(False, f"Ray: the driver ships the image bytes ({folder} is not visible on "
                            f"{', '.join(sorted(set(blind)))})")
