"""``--resize squash`` against ``keep`` (issue 24): forward time, metrics time and site bytes on the
WikiChurches-shaped set, and the memory peak of one forward pass at the ``--max-tokens`` cap.

  .venv/bin/python bench/aspect.py --images 32 --json build/bench/aspect.json       # the builds
  .venv/bin/python bench/aspect.py --memory --json build/bench/aspect-memory.json   # the memory peaks
  .venv/bin/python bench/aspect.py --figure site_src/assets/preprocessing.jpg       # the methods page's picture

Each configuration (squash at 224, keep at 224, keep at 448) is built three times through the CLI, in its
own process: cold without the site (forward passes + metrics), warm without the site (the cache reused:
metrics only, no model loaded) and warm with the site (its bytes). Forward time = cold - warm; metrics time
= warm (both include the same fixed start-up). Weights are random: the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIGS = {"squash@224": ("squash", 224), "keep@224": ("keep", 224), "keep@448": ("keep", 448)}


def _atlas(*args: str) -> float:
    """Run ``atlas build`` with ``args``; its wall time in seconds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", SOURCE_DATE_EPOCH="1700000000")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "atlas", "build", *args], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def builds(images: int, models: list[str], work: Path) -> dict:
    """The three builds of each configuration on ``images`` WikiChurches-shaped images."""
    from bench.synth import make_images
    from bench.wikichurches import BOXES, IMAGES, write_annotations

    paths = make_images(images, work / "images", max_side=800)
    write_annotations(paths, work / "building_parts.json", boxes=round(BOXES * images / IMAGES))
    results = {"images": images, "models": models, "cpus": os.cpu_count()}
    for name, (resize, side) in CONFIGS.items():
        out = work / name
        common = ["--images", str(work / "images"), "--annotations", str(work / "building_parts.json"),
                  "--weights", "random", "--device", "cpu", "--out", str(out), "--resize", resize,
                  "--image-size", str(side), *[a for m in models for a in ("--model", m)]]
        cold = _atlas(*common, "--no-site")
        warm = _atlas(*common, "--no-site")
        site = _atlas(*common)
        results[name] = {"cold_s": round(cold, 1), "forward_s": round(cold - warm, 1), "metrics_s": round(warm, 1),
                         "site_s": round(site, 1), "site_bytes": _bytes(out / "site"),
                         "maps_bytes": _bytes(out / "maps")}
        print(name, results[name], flush=True)
    return results


def memory_peak(tokens: int, model: str = "dinov2") -> dict:
    """One forward pass (every method, per head) of ``model`` on inputs of about ``tokens`` patch tokens,
    in a fresh process; its peak resident memory."""
    code = f"""
import json, resource, time, torch
from atlas.core.manifest import ModelEntry
from atlas.models.cache import forward_batch
from ssl_attention.aspect import keeping_aspect, at_input_size
from ssl_attention.maps import compute_maps
from ssl_attention.models import load_model
from ssl_attention.models.specs import parse_model_request
from ssl_attention.preprocess import keep_size
model = keeping_aspect(load_model(parse_model_request({model!r}), weights="random"), {tokens})
p = model.patch_size
size, capped = keep_size((4000, 1000), 4000, p, {tokens})  # a 4:1 panorama scaled down to the cap
seen = at_input_size(model, size)
n = forward_batch(ModelEntry.of_model(seen, seen.methods, None))
started = time.perf_counter()
with torch.inference_mode():
    compute_maps(model, torch.zeros(n, 3, *size))
print(json.dumps({{"tokens": (size[0] // p) * (size[1] // p), "input": list(size), "forward_batch": n,
                  "seconds": round(time.perf_counter() - started, 1),
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}}))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def figure(path: Path, photo: str = "rocket.jpg", side: int = 224, patch: int = 16) -> None:
    """The methods page's picture: one photo as the model sees it under squash and under keep, patch grid drawn."""
    from PIL import Image, ImageDraw

    from ssl_attention.preprocess import keep_size

    with Image.open(ROOT / "ssl_attention" / "sample_data" / "images" / photo) as im:
        image = im.convert("RGB")
    keep = keep_size(image.size, side, patch)[0]
    panels = [image.resize((side, side), Image.Resampling.BICUBIC),
              image.resize((keep[1], keep[0]), Image.Resampling.BICUBIC)]
    gap = 24
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap, max(p.height for p in panels)), "white")
    x = 0
    for panel in panels:
        draw = ImageDraw.Draw(panel)
        for gx in range(0, panel.width + 1, patch):
            draw.line([(gx, 0), (gx, panel.height)], fill=(255, 255, 255), width=1)
        for gy in range(0, panel.height + 1, patch):
            draw.line([(0, gy), (panel.width, gy)], fill=(255, 255, 255), width=1)
        sheet.paste(panel, (x, 0))
        x += panel.width + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=85, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32, help="WikiChurches-shaped images (139 in the full set)")
    parser.add_argument("--models", nargs="+", default=["dinov2"])
    parser.add_argument("--memory", action="store_true", help="the memory peaks at --max-tokens 1024, 2048, 4096")
    parser.add_argument("--figure", type=Path, help="write the methods page's squash/keep picture here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.figure:
        figure(args.figure)
        return
    if args.memory:
        results = {"memory": [memory_peak(t) for t in (1024, 2048, 4096)],
                   "peak_mib_of_this_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
        print(json.dumps(results, indent=1))
    else:
        with tempfile.TemporaryDirectory(prefix="atlas-aspect-") as work:
            results = builds(args.images, args.models, Path(work))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
