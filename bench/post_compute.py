"""Post-compute stages at scale, without forward passes: fake maps of the seven default models' shapes
written through the export format (as the site tests do), then the metrics and site stages timed.

The fake export has what a build of ``--images N`` with the seven defaults would cache: ViT-B maps
(12 layers x 12 heads, cls + mean per head and fused, rollout; SigLIP/SigLIP2 mean + rollout) on a
16 x 16 grid, ResNet-50 Grad-CAM (4 stages, 7 x 7), and about 4.3 boxes per image in WikiChurches'
proportions. The photos are real ones: variants of the bundled sample (``synth.py``, at most 640 px),
published through the dataset stage's display copies. Reported: wall and CPU seconds (this process
and its pool workers) of each stage, per image x model, site bytes and files.

``--pipelined`` writes the fake export the way the models stage's writer pool does in a build: each
npz, then that pair's sprite sheets (``atlas.site.render.PairRenderer``) and its earth mover's distances
(``atlas.metrics.emd_memo.presolve``; ``--no-presolve`` leaves them to the metrics stage, as before issue
27's memo). That work is reported on its own line (in a build it runs while the next batch computes), and
the site stage then finds the sprites done, the metrics stage the EMDs solved.

  .venv/bin/python bench/post_compute.py --images 139 --pipelined     # the WikiChurches-shaped case
  .venv/bin/python bench/post_compute.py --images 139                 # sprites rendered by the site stage
  .venv/bin/python bench/post_compute.py --images 1000 --render-only  # metrics + render only
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # synth

VIT = {"kind": "vit", "layers": 12, "heads": 12, "patch_size": 16, "grid": [16, 16], "weights": "random"}
MODELS = [
    dict(VIT, name="dinov2", family="dinov2", checkpoint="facebook/dinov2-with-registers-base", patch_size=14,
         prefix_tokens=5, num_registers=4, has_cls=True, methods=["cls", "mean", "rollout"]),
    dict(VIT, name="dinov3", family="dinov3", checkpoint="facebook/dinov3-vitb16-pretrain-lvd1689m",
         prefix_tokens=5, num_registers=4, has_cls=True, methods=["cls", "mean", "rollout"]),
    dict(VIT, name="mae", family="mae", checkpoint="facebook/vit-mae-base", prefix_tokens=1, num_registers=0,
         has_cls=True, methods=["cls", "mean", "rollout"]),
    dict(VIT, name="clip", family="clip", checkpoint="openai/clip-vit-base-patch16", prefix_tokens=1,
         num_registers=0, has_cls=True, methods=["cls", "mean", "rollout"]),
    dict(VIT, name="siglip", family="siglip", checkpoint="google/siglip-base-patch16-224", prefix_tokens=0,
         num_registers=0, has_cls=False, methods=["mean", "rollout"]),
    dict(VIT, name="siglip2", family="siglip2", checkpoint="google/siglip2-base-patch16-224", prefix_tokens=0,
         num_registers=0, has_cls=False, methods=["mean", "rollout"]),
    dict(name="resnet50", family="resnet", checkpoint="timm/resnet50.a1_in1k", weights="random", kind="cnn",
         layers=4, heads=0, patch_size=32, grid=[7, 7], prefix_tokens=0, num_registers=0, has_cls=False,
         methods=["gradcam"]),
]
LABELS = ["Portal", "Tower", "Rose window", "Window", "Arch", "Buttress", "Spire"]


class WriterPool:
    """What the models stage's writer pool does after each npz: render the pair's sprite sheets, then (with
    ``presolve``) solve its EMDs; the CPU seconds of the latter are counted apart."""

    def __init__(self, build: Path, boxes: dict, presolve: bool) -> None:
        from atlas.site.render import PairRenderer

        self.render, self.boxes, self.presolve, self.emd_cpu_s = PairRenderer(build / "render"), boxes, presolve, 0.0

    def __call__(self, entry, image_id: str, arrays: dict, npz: Path) -> None:
        from atlas.metrics.emd_memo import presolve

        self.render(entry, image_id, arrays, npz)
        if self.presolve:
            started = time.process_time()
            presolve(entry, arrays, *self.boxes[image_id], npz)
            self.emd_cpu_s += time.process_time() - started


def write_export(build: Path, n_images: int, seed: int = 0, pipelined: bool = False,
                 presolve: bool = True) -> WriterPool | None:
    """A BUILD dir (images, maps/manifest.json, npz per model x image) of ``n_images`` fake images, written
    by the tests' fake export (``tests/fixtures/fake_maps.py``); with ``pipelined``, each pair's sprite
    sheets rendered (and with ``presolve`` its EMDs solved) right after its npz, as the models stage does."""
    from synth import make_images

    from ssl_attention.annotations import Box
    from tests.fixtures.fake_maps import write_fake_build

    rng = np.random.default_rng([seed, 1])
    images, photos = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, source in enumerate(make_images(n_images, Path(tmp))):
            image_id = f"img-{i:05d}"
            with Image.open(source) as im:
                width, height = im.size
            boxes = []
            for _ in range(int(rng.integers(2, 7))):  # WikiChurches: 594 boxes on 139 images
                w, h = rng.uniform(0.1, 0.5) * width, rng.uniform(0.1, 0.5) * height
                x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
                boxes.append((LABELS[int(rng.integers(len(LABELS)))], [x, y, w, h]))
            images.append((image_id, (width, height), boxes))
            photos[image_id] = source
        pool = WriterPool(build, {image_id: (tuple(Box(*xywh, label=label) for label, xywh in boxes), size)
                                  for image_id, size, boxes in images}, presolve) if pipelined else None
        write_fake_build(build, seed, images=images, specs=MODELS, photos=photos, render=pool)
    return pool


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the stages' process pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn):
    wall, cpu = time.perf_counter(), _cpu()
    result = fn()
    return result, time.perf_counter() - wall, _cpu() - cpu


def tree(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=139)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-post")
    parser.add_argument("--no-site", action="store_true", help="time the metrics stage only")
    parser.add_argument("--render-only", action="store_true",
                        help="site stage: render the sprite sheets and photos only (no pages, no MkDocs)")
    parser.add_argument("--pipelined", action="store_true",
                        help="render each pair's sprites as its npz is written, as the models stage does")
    parser.add_argument("--no-presolve", action="store_true",
                        help="with --pipelined: leave the EMDs to the metrics stage (as before the memo)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from atlas.metrics.stage import compute_metrics
    from atlas.site.stage import build_site

    build = args.work / f"n{args.images}"
    shutil.rmtree(build, ignore_errors=True)
    pairs = args.images * len(MODELS)
    result: dict = {"images": args.images, "models": len(MODELS), "pairs": pairs, "pipelined": args.pipelined}
    if args.pipelined:  # the export alone first, to tell the writer pool's rendering from it
        _, base_wall, base_cpu = _timed(lambda: write_export(build, args.images))
        shutil.rmtree(build)
    pool, wall, cpu = _timed(lambda: write_export(build, args.images, pipelined=args.pipelined,
                                                  presolve=not args.no_presolve))
    print(f"fake export of {args.images} images x {len(MODELS)} models: {wall:.1f} s", flush=True)
    if pool is not None:
        render_cpu = cpu - base_cpu - pool.emd_cpu_s
        result["presolve"] = not args.no_presolve
        result["writer_pool_render"] = {"wall_s": wall - base_wall, "cpu_s": render_cpu,
                                        "ms_per_pair": 1000 * render_cpu / pairs}
        result["writer_pool_emd"] = {"cpu_s": pool.emd_cpu_s, "ms_per_pair": 1000 * pool.emd_cpu_s / pairs}
        print(f"the writer pool's share (overlapped with compute in a build), as each npz is written: sprites "
              f"{render_cpu:.2f} s CPU = {1000 * render_cpu / pairs:.1f} ms per image x model; EMDs "
              f"{pool.emd_cpu_s:.2f} s CPU = {1000 * pool.emd_cpu_s / pairs:.1f} ms", flush=True)
    report, wall, cpu = _timed(lambda: compute_metrics(build))
    result["metrics"] = {"wall_s": wall, "cpu_s": cpu, "rows": report.rows, "ms_per_pair": 1000 * wall / pairs}
    files, size = tree(build / "metrics")
    result["metrics"].update(files=files, bytes=size)
    print(f"metrics: {report.rows} rows in {wall:.2f} s wall, {cpu:.2f} s CPU ({1000 * wall / pairs:.1f} ms per "
          f"image x model); {files} files, {size / 1e6:.1f} MB", flush=True)
    if args.render_only and not args.no_site:
        from atlas.site.catalog import load_catalog
        from atlas.site.render import render_all

        stats, wall, cpu = _timed(lambda: render_all(load_catalog(build), build / "render"))
        files, size = tree(build / "render")
        result["render"] = {"wall_s": wall, "cpu_s": cpu, "files": files, "bytes": size,
                            "bytes_per_pair": size / pairs, "ms_per_pair": 1000 * wall / pairs}
        print(f"render: {wall:.2f} s wall, {cpu:.2f} s CPU; {files} files, {size / 1e6:.1f} MB = "
              f"{size / pairs / 1e3:.1f} KB per image x model (sprites {stats.png_bytes / pairs / 1e3:.1f} KB)",
              flush=True)
    elif not args.no_site:
        site, wall, cpu = _timed(lambda: build_site(build, build / "site"))
        files, size = tree(build / "site")
        _, data_bytes = tree(build / "site" / "atlas-data" / "maps")
        result["site"] = {"wall_s": wall, "cpu_s": cpu, "render_s": site.render_seconds,
                          "rendered_pairs": site.rendered_pairs, "cached_pairs": site.cached_pairs,
                          "mkdocs_s": site.mkdocs_seconds, "files": files, "bytes": size,
                          "map_bytes": data_bytes, "bytes_per_pair": size / pairs,
                          "map_bytes_per_pair": data_bytes / pairs,
                          "ms_per_pair": 1000 * wall / pairs}
        print(f"site: {wall:.2f} s wall, {cpu:.2f} s CPU (render {site.render_seconds:.1f} s, MkDocs "
              f"{site.mkdocs_seconds:.1f} s); {files} files, {size / 1e6:.1f} MB = {size / pairs / 1e3:.1f} KB per "
              f"image x model (sprites {data_bytes / pairs / 1e3:.1f} KB)", flush=True)
    post = result["metrics"]["wall_s"] + result.get("site", {}).get("wall_s", 0.0)
    result["post_compute"] = {"wall_s": post, "ms_per_pair": 1000 * post / pairs}
    print(f"post-compute stages (metrics + site): {post:.2f} s wall = {1000 * post / pairs:.1f} ms per image x model",
          flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
