"""The overhead of `atlas build --ray local` against a local build of the same inputs (maps only).

Each build runs in its own process on a fresh --out, on the same synthetic bench images, with random
weights and --no-site (the site stage is the same code either way). Reports the wall seconds of each
build process, its CPU seconds as os.wait4 gives them (with --ray local, Ray's worker processes may
escape that count: compare wall times), the ratio, and whether the maps are byte-identical.

  .venv/bin/python bench/ray_overhead.py                          # dinov2 + resnet50, 32 images
  .venv/bin/python bench/ray_overhead.py --models dinov2 --images 8 --json build/bench/ray.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import atlas_cmd, machine, run_process
from synth import make_images


def _maps(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "maps").rglob("*")) if p.is_file()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["dinov2", "resnet50"])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="builds of each kind (the fastest is reported)")
    parser.add_argument("--json", type=Path, default=Path("build/bench/ray_overhead.json"))
    args = parser.parse_args(argv)
    args.no_site = True
    work = Path(tempfile.mkdtemp(prefix="atlas-ray-bench-"))
    try:
        images = work / "images"
        make_images(args.images, images)
        runs: dict[str, list[dict]] = {"local": [], "ray local": []}
        for i in range(args.repeat):
            for kind in runs:
                out = work / f"{kind.replace(' ', '-')}-{i}"
                cmd = atlas_cmd(images, out, args.models, args) + (["--ray", "local"] if kind != "local" else [])
                result = run_process(cmd, work / "logs" / f"{out.name}.log")
                result["maps"] = _maps(out)
                runs[kind].append(result)
                print(f"{kind:10s} run {i + 1}: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} CPU s, "
                      f"rc {result['rc']}", flush=True)
        best = {kind: min(results, key=lambda r: r["wall_s"]) for kind, results in runs.items()}
        identical = all(r["maps"] == runs["local"][0]["maps"] for results in runs.values() for r in results)
        report = {
            "machine": machine(), "models": args.models, "images": args.images, "batch_size": args.batch_size,
            "local_wall_s": round(best["local"]["wall_s"], 2), "ray_wall_s": round(best["ray local"]["wall_s"], 2),
            "local_cpu_s": round(best["local"]["cpu_s"], 2), "ray_driver_cpu_s": round(best["ray local"]["cpu_s"], 2),
            "overhead_s": round(best["ray local"]["wall_s"] - best["local"]["wall_s"], 2),
            "ratio": round(best["ray local"]["wall_s"] / best["local"]["wall_s"], 2),
            "maps_identical": identical, "rc": [r["rc"] for results in runs.values() for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))
        return 0 if identical and not any(report["rc"]) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
