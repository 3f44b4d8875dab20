"""The Ray cluster of ``atlas build --ray ADDRESS``: connecting, its resources, where the images come from.

Ray is an optional extra; nothing here imports it before it is needed, so ``--ray`` without it is one
line saying how to install it (exit 2).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from atlas.core.limits import PORT
from atlas.dataset.stage import ImageRecord
from ssl_attention.errors import AtlasError
from ssl_attention.integers import shown, whole_number

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'attention-atlas[ray]'"
PROBE_TIMEOUT = 5.0  # seconds for each step of the probe of a cluster's address (connect, first answer)
# An HTTP/2 client's connection preface and an empty SETTINGS frame: a Ray head's GCS (a gRPC server)
# answers with a frame of its own, which starts with a 3-byte length and the type 4 (SETTINGS).
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


class RayUnavailable(AtlasError):
    """``--ray`` was asked for but Ray (with Ray Data) cannot be imported."""


def require_ray() -> None:
    """Raise ``RayUnavailable`` (the install line) when ``ray`` or ``ray.data`` cannot be imported."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None


def check_address(address: str) -> tuple[str, int] | None:
    """``--ray``'s value checked before anything runs: None for ``auto`` or ``local``, else the HOST and
    PORT of ``HOST:PORT`` (``[::1]:PORT`` for IPv6); AtlasError (one line) for anything else."""
    if address in ("auto", "local"):
        return None
    host, sep, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    port = whole_number(port_text) if sep else None
    if not host or not all(c.isprintable() and not c.isspace() and c not in "/@?#[]" for c in host) or \
            port is None or not PORT.low <= port <= PORT.high:
        raise AtlasError(f"--ray: expected auto, local or HOST:PORT with a port from 1 to 65535 (e.g. "
                         f"10.0.0.5:6379), got {shown(address)}")
    return host, port


def probe_cluster(address: str) -> None:
    """Make sure a Ray head answers where ``ray.init(address=address)`` will connect, within seconds:
    AtlasError (one line) when nothing listens there, the host is unreachable, or what answers is no gRPC
    server. Ray itself would retry such an address for many minutes without a word. ``local`` starts its
    own Ray and is not probed."""
    if address == "local":
        return
    target = _dialed(address)
    if target is None:
        return
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", ""):
                conn.sendall(_HTTP2_HELLO)
                answer = conn.recv(9)
                if len(answer) < 4 or answer[3] != 4:
                    raise AtlasError(f"--ray {address}: what answers at {target} is not a Ray cluster (no gRPC "
                                     "server; is it the head's GCS port, 6379 by default?)")
    except (OSError, ValueError) as exc:
        reason = "no answer in time" if isinstance(exc, socket.timeout) else getattr(exc, "strerror", None) or exc
        raise AtlasError(f"--ray {address}: no Ray cluster answers at {target} ({reason})") from None


def _dialed(address: str) -> str | None:
    """The HOST:PORT that ``ray.init(address=address)`` connects to (``RAY_ADDRESS`` wins, ``auto`` is the
    cluster this machine belongs to, localhost is this machine's address), by Ray's own rules where
    they can be imported; None when that cannot be told."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # pragma: no cover - a Ray without this helper: probe what was given
        return os.environ.get("RAY_ADDRESS") or (None if address == "auto" else address)
    try:
        return canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError, OSError) as exc:
        raise AtlasError(f"--ray {address}: cannot connect to a Ray cluster ({' '.join(str(exc).split())})") \
            from None


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
