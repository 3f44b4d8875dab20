"""Byte-identity check for refactors: hash every file a build writes, to compare two commits.

Builds (1) the bundled sample with the seven default models (random weights, offline) through the
``atlas`` CLI, and (2) the tests' fake-map export (``tests/fixtures/fake_maps.py``) through the metrics
and site stages, then writes one JSON of ``{path: sha256}`` for ``site/``, ``maps/``, ``metrics/`` and
``report.json`` of each. A refactor that changes no behaviour gives the same JSON before and after:

  .venv/bin/python bench/identity.py --out /tmp/before.json      # on the old commit
  .venv/bin/python bench/identity.py --out /tmp/after.json       # on the new one
  .venv/bin/python bench/identity.py --compare /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("site", "maps", "metrics", "report.json")
EPOCH = "1700000000"


def hashes(build: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under the build's published and exported parts."""
    out: dict[str, str] = {}
    for part in PARTS:
        root = build / part
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            out[path.relative_to(build).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def sample_build(work: Path) -> Path:
    """The sample atlas, seven default models, random weights, through the CLI as a user runs it."""
    out = work / "sample"
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH, HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "atlas", "build", "--out", str(out), "--weights", "random"],
                   check=True, env=env, cwd=work)
    return out


def fake_build(work: Path) -> Path:
    """The tests' fake export, then the metrics and site stages (no forward pass)."""
    out = work / "fake"
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, __file__, "--fake-stages", str(out)], check=True, env=env, cwd=ROOT)
    return out


def run_fake_stages(out: Path) -> None:
    """Write the fake export into ``out`` and run the metrics and site stages on it."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.fake_maps import write_fake_build

    write_fake_build(out)
    try:  # the stage packages (atlas.metrics, atlas.site.stage) or the flat modules before them
        from atlas.metrics import compute_metrics
    except ImportError:
        from atlas.metrics.stage import compute_metrics
    from atlas.site.stage import build_site

    compute_metrics(out)
    build_site(out, out / "site")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the hashes here")
    parser.add_argument("--work", type=Path, help="build here (default: a temporary folder)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--fake-stages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_stages:
        run_fake_stages(args.fake_stages)
        return
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        for kind in sorted(set(before) | set(after)):
            a, b = before.get(kind, {}), after.get(kind, {})
            changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            print(f"{kind}: {len(a)} files before, {len(b)} after, {len(changed)} differ")
            for name in changed[:20]:
                print(f"  {name}: {'missing' if name not in a else a[name][:10]} -> "
                      f"{'missing' if name not in b else b[name][:10]}")
        sys.exit(1 if before != after else 0)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = {"sample": hashes(sample_build(work)), "fake": hashes(fake_build(work))}
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text)
    print(f"sample: {len(result['sample'])} files, fake: {len(result['fake'])} files")


if __name__ == "__main__":
    main()
