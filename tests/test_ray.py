"""``atlas build --ray``: a real two-node Ray cluster on 127.0.0.1, maps byte-identical to a local build.

The cluster (a head and a second node of one CPU each, ``ray.cluster_utils.Cluster``) is started once for
the module, bound to the loopback address, and shut down by the module (also by a finalizer if a test
fails); no process of it may outlive it. Run only these with ``pytest -m ray``. They skip when Ray is not
installed, except with CI=true, where they must run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atlas.cli import app
from tests.fixtures.trees import build_args, tree

# Ray reads this once, when it is first imported: with "0" every Ray process of this test process (the
# cluster's and the build's driver) binds and dials 127.0.0.1, never the machine's external address.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

pytestmark = pytest.mark.ray
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _ray():
    """The ``ray`` module, or a skip (a failure with CI=true) when it is not installed."""
    try:
        import ray
        import ray.cluster_utils
        import ray.data
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Ray is not installed (pip install 'attention-atlas[ray]'); the --ray tests need it")
    return ray


# -- processes and sockets, read from /proc ----------------------------------------------------------------

def _descendants(roots: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening_addresses(pids: set[int]) -> set[str]:
    """The local IP addresses (hex, as in /proc/net/tcp*) of the TCP sockets ``pids`` listen on."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        inodes |= {m.group(1) for link in links if (m := re.fullmatch(r"socket:\[(\d+)\]", link))}
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                addresses.add(fields[1].rsplit(":", 1)[0])
    return addresses


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


class LoopbackCluster:
    """A head and one more node, one CPU each, on 127.0.0.1; ``pids()`` are all its processes now."""

    def __init__(self) -> None:
        ray = _ray()
        from ray._private import ray_constants

        assert not ray_constants.ENABLE_RAY_CLUSTER, "Ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0"
        self.saved = {"PYTHONPATH": os.environ.get("PYTHONPATH")}
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.saved["PYTHONPATH"]]))  # workers
        self.cluster = ray.cluster_utils.Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
        self.cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        self.address = self.cluster.address
        self.seen: set[int] = set()

    def pids(self) -> set[int]:
        roots = {info.process.pid for node in self.cluster.list_all_nodes()
                 for infos in node.all_processes.values() for info in infos if info.process is not None}
        self.seen |= _descendants(roots)
        return self.seen

    def shutdown(self) -> None:
        if self.cluster is None:
            return
        self.pids()
        self.cluster.shutdown()
        self.cluster = None
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def cluster(request):
    cluster = LoopbackCluster()
    request.addfinalizer(cluster.shutdown)  # also when a test fails
    yield cluster
    cluster.shutdown()
    deadline = time.monotonic() + 60  # workers exit once they notice their raylet is gone
    while (stray := sorted(pid for pid in cluster.seen if _alive(pid))) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stray == [], f"Ray processes left after the cluster's shutdown: {stray}"


def _args(tiny_checkpoints, broken: Path | None, out: Path) -> list[str]:
    """Two tiny models and (unless None) a checkpoint that cannot be loaded; broken None: dinov2 alone."""
    more = {} if broken is None else {"broken": broken, "resnet": tiny_checkpoints["timm_resnet"]}
    return build_args(out, {"dinov2": tiny_checkpoints["dinov2_registers"], **more}, "--batch-size", "2")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def local_build(tiny_checkpoints, tmp_path_factory):
    """A local build of two tiny models and a checkpoint that cannot be loaded (skipped with one line)."""
    root = tmp_path_factory.mktemp("ray-local")
    broken = root / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{")
    out = root / "out"
    result = runner.invoke(app, _args(tiny_checkpoints, broken, out))
    assert result.exit_code == 0, result.output
    return broken, out


def _same_as_local(out: Path, local: Path) -> None:
    mine, theirs = tree(out, frozenset({"report.json"})), tree(local, frozenset({"report.json"}))
    assert sorted(mine) == sorted(theirs)
    assert [name for name in mine if mine[name] != theirs[name]] == []
    assert sum(name.startswith("maps/") and name.endswith(".npz") for name in mine) == 24  # 12 images x 2 models
    report = _report(out)
    workers = report.pop("ray_workers")
    assert report == _report(local)  # the same skip lines, in the same order
    for model in ("dinov2", "resnet"):
        assert sum(row["images"] for row in workers if row["model"] == model) >= 12
        assert all(row["images_per_s"] > 0 for row in workers)


def test_two_node_build_gives_the_local_bytes(cluster, tiny_checkpoints, local_build, tmp_path):
    broken, local = local_build
    out = tmp_path / "out"
    result = runner.invoke(app, [*_args(tiny_checkpoints, broken, out), "--ray", cluster.address])
    assert result.exit_code == 0, result.output
    _same_as_local(out, local)
    output = " ".join(result.output.split())
    assert "2 node(s), 2 CPUs, 0 GPUs; one actor per 1 CPU(s), up to 2 at once" in output
    assert "workers read the images from" in output and "(visible on all 2 node(s))" in output
    assert output.count("skipped: model broken:") == 1  # it cannot be loaded: one line, the others built
    assert "Ray workers (images/s while computing)" in output
    addresses = _listening_addresses(cluster.pids())
    assert addresses and addresses <= LOOPBACK, f"Ray listens beyond 127.0.0.1: {addresses}"


def _dinov2_maps(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("maps/dinov2/*.npz"))}


def test_killed_worker_is_retried_and_a_rerun_resumes(cluster, tiny_checkpoints, local_build, tmp_path,
                                                      monkeypatch):
    """SIGKILL the worker process of the actor as it answers its first batch (its pid comes from the actor):
    its other batches are retried on a restarted actor and the maps are still the local bytes. Then a rerun
    over a cache that lost some maps (what a killed driver leaves) computes only those."""
    ray = _ray()
    import atlas.models.ray_stage

    _, local = local_build
    take, killed = atlas.models.ray_stage._take, []

    def take_and_kill(sink, batch, throughput):
        take(sink, batch, throughput)
        if not killed:
            pid = int(batch.worker.rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append((sink.job.entry.name, pid))

    monkeypatch.setattr(atlas.models.ray_stage, "_take", take_and_kill)
    out = tmp_path / "out"
    ray.init(address=cluster.address, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "tests.ray_hooks.slow_batches"})
    try:
        result = runner.invoke(app, [*_args(tiny_checkpoints, None, out), "--ray", cluster.address])
    finally:
        ray.shutdown()
    assert result.exit_code == 0, result.output
    (model, pid), = killed
    assert not _alive(pid)
    workers = [row["worker"] for row in _report(out)["ray_workers"] if row["model"] == model]
    assert f"{pid}" in " ".join(workers) and len(workers) >= 2, workers  # the batches went on elsewhere
    assert len(_dinov2_maps(out)) == 12 and _dinov2_maps(out) == _dinov2_maps(local)

    # Three maps lost, from two of the first batches: recomputed in batches of other images than the first
    # build's (the forward passes have one shape, so a map does not depend on its batch), the others reused.
    monkeypatch.setattr(atlas.models.ray_stage, "_take", take)
    lost = [image["id"] for image in json.loads((local / "maps" / "manifest.json").read_text())["images"][1:4]]
    for image in lost:
        (out / "maps" / "dinov2" / f"{image}.npz").unlink()
    result = runner.invoke(app, [*_args(tiny_checkpoints, None, out), "--ray", cluster.address])
    assert result.exit_code == 0, result.output
    assert re.search(r"dinov2 .* 3 +│ 9 ", result.output), result.output  # computed 3, reused 9
    assert _dinov2_maps(out) == _dinov2_maps(local)


def test_without_ray_says_how_to_install_it(monkeypatch, tmp_path):
    """Ray missing (its import fails): one line with the pip command, exit code 2, before anything runs."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    result = runner.invoke(app, ["build", "--ray", "local", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "pip install 'attention-atlas[ray]'" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("listener", ["closed", "silent"])
def test_an_address_where_no_cluster_answers_is_one_line_within_30_s(tmp_path, listener):
    """`--ray 127.0.0.1:PORT` with nothing listening (a real closed port), or a listener that never answers:
    Ray itself retries for many minutes without a word (issue 28, item 15). The build probes the address
    before anything runs: one line, exit code 2, within 30 s. One subprocess with a time limit, so a hang
    fails the test instead of stalling the suite."""
    import socket
    import subprocess

    _ray()
    server = socket.socket()
    server.bind(("0.0.0.0", 0))  # every interface: Ray may dial this machine's address for 127.0.0.1
    port = server.getsockname()[1]
    if listener == "closed":
        server.close()
    else:
        server.listen(1)  # connections complete in the kernel's backlog; nothing is ever sent back
    out = tmp_path / "out"
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "atlas", "build", "--ray", f"127.0.0.1:{port}", "--model",
                               "dinov2", "--out", str(out), "--no-site"], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        server.close()
    seconds = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    reason = "Connection refused" if listener == "closed" else "no answer in time"
    assert len(lines) == 1 and re.fullmatch(rf"error: --ray 127\.0\.0\.1:{port}: no Ray cluster answers at "
                                            rf"\S+:{port} \({reason}\)", lines[0]), proc.stderr
    assert seconds < 30 and not out.exists()


def test_shipped_bytes_give_the_maps_of_a_read_path(tiny_checkpoints, tmp_path):
    """The actor's two ways to get an image (read from the path, or bytes the driver shipped) give the same
    maps; a node that does not see the images (or sees other bytes) answers no. No cluster needed."""
    import hashlib

    from atlas.dataset.stage import ImageRecord, sample_paths
    from atlas.models.plan import Recipe
    from atlas.models.ray_worker import Job, LoadOptions, MapsActor, sees_images
    from ssl_attention.models import ModelRequest

    paths = sorted(sample_paths()[0].glob("*.jpg"))[:2]
    records = [ImageRecord(p.stem, p, 1, 1, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]
    actor = MapsActor(ModelRequest("dinov2", str(tiny_checkpoints["dinov2_registers"])),
                      LoadOptions("pretrained", (32, 32), "cpu"), Recipe(("cls", "rollout")))
    read = actor.run(Job(tuple((r, "key", None) for r in records)))
    shipped = actor.run(Job(tuple((r, "key", r.path.read_bytes()) for r in records)))
    assert read.images == shipped.images == 2 and read.skipped == shipped.skipped == ()
    assert read.error is None and read.worker == shipped.worker != ""
    for (rel_a, arrays_a, meta_a), (rel_b, arrays_b, meta_b) in zip(read.maps, shipped.maps, strict=True):
        assert rel_a == rel_b and meta_a == meta_b and sorted(arrays_a) == sorted(arrays_b)
        assert all(arrays_a[name].tobytes() == arrays_b[name].tobytes() for name in arrays_a)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    bad = actor.run(Job(((ImageRecord("broken", broken, 1, 1, "x"), "key", broken.read_bytes()),)))
    assert bad.maps == () and len(bad.skipped) == 1 and str(broken) in bad.skipped[0]  # names the file

    names = [str(p) for p in paths]
    assert sees_images(names, records[0].sha256)
    assert not sees_images(names, "0" * 64)  # other bytes at the same path
    assert not sees_images([*names, str(tmp_path / "absent.jpg")], records[0].sha256)


def test_one_actor_per_gpu_else_per_ray_cpus():
    """With GPUs every actor takes one (num_gpus=1); without, --ray-cpus CPUs each; slots = actors at once."""
    from atlas.models.ray_cluster import ClusterShape

    gpus = ClusterShape("auto", nodes=2, cpus=32, gpus=4, cpus_per_actor=8)
    assert gpus.actor_resources == {"num_gpus": 1, "num_cpus": 1} and gpus.slots == 4
    assert "one actor per GPU, up to 4 at once" in gpus.line()
    cpus = ClusterShape("auto", nodes=2, cpus=16, gpus=0, cpus_per_actor=4)
    assert cpus.actor_resources == {"num_cpus": 4} and cpus.slots == 4
    assert ClusterShape("local", nodes=1, cpus=2, gpus=0, cpus_per_actor=8).slots == 1  # at least one


def test_a_keep_build_on_ray_gives_the_local_bytes(cluster, tiny_checkpoints, tmp_path):
    """--resize keep (issue 24): the workers keep the aspect too and form the same buckets of one input size,
    so the npz files, the manifest's per-image grids and the cap's lines are the local build's."""
    keep = ("--resize", "keep", "--max-tokens", "80", "--batch-size", "3")
    models = {"dinov2": tiny_checkpoints["dinov2_registers"]}
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert runner.invoke(app, build_args(local, models, *keep)).exit_code == 0
    result = runner.invoke(app, [*build_args(remote, models, *keep), "--ray", cluster.address])
    assert result.exit_code == 0, result.output
    mine, theirs = tree(remote, frozenset({"report.json"})), tree(local, frozenset({"report.json"}))
    assert mine == theirs
    manifest = json.loads((local / "maps" / "manifest.json").read_text())
    grids = manifest["models"][0]["grids"]
    assert len(grids) == 12 and len({tuple(g) for g in grids.values()}) > 2  # several input sizes
    report = _report(remote)
    report.pop("ray_workers")
    assert report == _report(local) and any("--max-tokens 80" in line for line in report["skipped"])
