"""Attention Atlas benchmark: our `atlas build` against the forward-pass floor and a naive baseline.

Phases (each in its own process, one after the other, on the same synthetic images):

  floor   bare forward passes of the same models: random weights via ssl_attention's load_model, switched to
          SDPA attention (transformers: set_attn_implementation("sdpa"); timm: fused_attn = True), no
          attentions returned, torch.inference_mode, the same batch size as ours. ResNet-50: a plain forward.
  ours    `atlas build --weights random --out <fresh dir> --images <bench images>`: every method, layer and
          head, PNGs, pages and the MkDocs site (unless --no-site); then the same command again on the warm
          cache (incremental: nothing to recompute).
  naive   what users do today: per image, per model, one eager forward with output_attentions=True, then one
          PNG per layer x head of the CLS map (mean received attention for models without CLS; Grad-CAM per
          stage for ResNet-50), upsampled to the input size and saved separately with matplotlib's imsave.

Main point: --images N (default 32) with --models (default the seven ViT-B-sized defaults).
Scale sweep: --scale (default 8 32 128) with --scale-models (default dinov2 only: the seven-model sweep
would take over an hour on a 2-core CPU, and every ViT-B default costs about the same; see the README).
Optional: --memory (peak RSS vs batch size and image count; 518 px DINOv2 with and without storing all
attention matrices), --browser (image-page load and layer-toggle times in headless Chromium), --profile
(cProfile of `atlas build` at the main point; top functions printed and saved).

Map counts follow the export: per model and image, layers x heads per per-head method (cls, mean) plus
one fused map per layer and method, plus the rollout layers, or the 4 stages of Grad-CAM. Peak memory is
the maximum RSS of each phase's process (os.wait4). Ratios: ours/floor uses the floor's whole process
(imports, model builds, image decoding, forward passes) and, separately, its forward passes alone.

Examples:
  .venv/bin/python bench/run.py --quick                       # 2 models, 8 images, about a minute
  .venv/bin/python bench/run.py                               # the main point and the sweep
  .venv/bin/python bench/run.py --memory --browser --json build/bench/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from ssl_attention.methods import get_method  # noqa: E402  (after the path set-up)

DEFAULT_MODELS = ["dinov2", "dinov3", "mae", "clip", "siglip", "siglip2", "resnet50"]
QUICK_MODELS = ["dinov2", "resnet50"]
SCALE_MODELS = ["dinov2"]
GITHUB_PAGES_LIMIT = 1_000_000_000
WIKICHURCHES = {"images": 139, "models": 7}


# ------------------------------------------------------------------------------------------- helpers
def run_process(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` to completion; wall seconds, exit code and its own peak RSS (os.wait4)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"wall_s": wall, "rc": proc.returncode, "peak_rss": usage.ru_maxrss * 1024,
              "cpu_s": usage.ru_utime + usage.ru_stime, "log": str(log)}
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        print(f"  !! {' '.join(cmd[:4])}... exited {proc.returncode}; log {log}:\n{tail}", file=sys.stderr)
    return result


def worker(args: list[str], work: Path, tag: str) -> dict:
    out = work / f"{tag}.json"
    proc = run_process([sys.executable, str(BENCH / "workers.py"), *args, "--json", str(out)],
                       work / "logs" / f"{tag}.log")
    data = json.loads(out.read_text()) if out.exists() else {}
    data["process"] = proc
    return data


def machine() -> dict:
    import torch

    load = os.getloadavg()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "loadavg": [round(x, 2) for x in load]}


def tree_bytes(path: Path, pattern: str = "*") -> tuple[int, int]:
    """(files, bytes) under ``path`` matching ``pattern``; hard links counted in full (as deployed)."""
    files = size = 0
    for p in path.rglob(pattern):
        if p.is_file():
            files += 1
            size += p.stat().st_size
    return files, size


def count_maps(manifest: dict) -> dict[str, int]:
    """Maps per model as in the export (see the module docstring)."""
    counts = {}
    for entry in manifest["models"]:
        layers, heads = entry["layers"], entry["heads"]
        per_image = 0
        for method in entry["methods"]:
            per_image += layers  # the fused map of each layer (or Grad-CAM stage)
            if get_method(method).per_head and entry.get("per_head", True):
                per_image += layers * heads
        counts[entry["name"]] = per_image * len(entry["maps"])
    return counts


def site_sizes(out: Path, site: Path) -> dict:
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    maps = count_maps(manifest)
    total_maps = sum(maps.values())
    result = {"maps": total_maps, "maps_by_model": maps}
    if not (site / "index.html").exists():
        return result
    files, total = tree_bytes(site)
    pngs, png_bytes = tree_bytes(site / "atlas-data" / "maps", "*.png")
    raws, raw_bytes = tree_bytes(site / "atlas-data" / "maps", "*.f32")
    _, pages_bytes = tree_bytes(site / "atlas")
    _, photo_bytes = tree_bytes(site / "atlas-data", "*.jpg")
    query_files, query_bytes = tree_bytes(site / "atlas-data" / "maps", "query.bin")  # one per image x model
    by_model = {}
    for model_dir in sorted((site / "atlas-data" / "maps").iterdir()):
        n, b = tree_bytes(model_dir, "*.png")
        _, r = tree_bytes(model_dir, "*.f32")
        by_model[model_dir.name] = {"pngs": n, "png_bytes": b, "raw_bytes": r}
    images = len(manifest["images"])
    result.update(
        site_files=files, site_bytes=total, pngs=pngs, png_bytes=png_bytes, raw_files=raws, raw_bytes=raw_bytes,
        atlas_page_bytes=pages_bytes, photo_bytes=photo_bytes, images=images, by_model=by_model,
        query_files=query_files, query_bytes=query_bytes,
        png_bytes_per_map=png_bytes / max(1, total_maps), site_bytes_per_map=total / max(1, total_maps),
        fixed_bytes=total - png_bytes - raw_bytes - pages_bytes - photo_bytes,
    )
    return result


def project(sizes: dict, images: int, models: int) -> dict:
    """Site bytes for ``images`` x ``models``: fixed docs + per-image pages/photos + per pair maps."""
    n, m = sizes["images"], len(sizes["by_model"])
    per_pair = (sizes["png_bytes"] + sizes["raw_bytes"]) / (n * m)
    per_image = (sizes["photo_bytes"] + sizes["atlas_page_bytes"]) / n
    total = sizes["fixed_bytes"] + images * per_image + images * models * per_pair
    return {"images": images, "models": models, "per_pair_bytes": per_pair, "per_image_bytes": per_image,
            "fixed_bytes": sizes["fixed_bytes"], "projected_bytes": total,
            "share_of_github_pages_limit": total / GITHUB_PAGES_LIMIT}


# -------------------------------------------------------------------------------------------- phases
def wikichurches_phase(work: Path, args) -> dict:
    """The WikiChurches-shaped case: 139 images up to 800 px, ~600 relative boxes, the seven defaults,
    random weights; a cold build, then the warm one (maps cached: the post-compute stages plus fixed cost)."""
    from synth import make_images
    from wikichurches import IMAGES, write_annotations

    images = work / "wikichurches-images"
    paths = make_images(IMAGES, images, max_side=800)
    boxes = write_annotations(paths, work / "building_parts.json")
    out = work / "wikichurches-build"
    shutil.rmtree(out, ignore_errors=True)
    cmd = atlas_cmd(images, out, DEFAULT_MODELS, args, work / "building_parts.json")
    res: dict = {"images": IMAGES, "boxes": boxes, "models": DEFAULT_MODELS}
    print(f"[wikichurches] {IMAGES} images, {boxes} boxes, cold build ...", flush=True)
    res["cold"] = run_process(cmd, work / "logs" / "wikichurches-cold.log")
    print("[wikichurches] warm build ...", flush=True)
    res["warm"] = run_process(cmd, work / "logs" / "wikichurches-warm.log")
    pairs = IMAGES * len(DEFAULT_MODELS)
    res["warm_cpu_ms_per_pair"] = 1000 * res["warm"]["cpu_s"] / pairs
    res["warm_wall_ms_per_pair"] = 1000 * res["warm"]["wall_s"] / pairs
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    res["site_budget"] = report.get("site_budget")
    for build in ("cold", "warm"):  # the stages after the last forward pass, from the CLI's lines
        log = (work / "logs" / f"wikichurches-{build}.log").read_text(errors="replace")
        metrics = re.search(r"^Metrics: .* in ([0-9.]+) s", log, re.M)
        site = re.search(r"^Site: .* in ([0-9.]+) s \(render ([0-9.]+) s for (\d+) .*?(\d+) already encoded; "
                         r"MkDocs ([0-9.]+) s\)", log, re.M)
        if metrics and site:
            post = float(metrics[1]) + float(site[1])
            res[f"{build}_post_compute"] = {
                "metrics_s": float(metrics[1]), "site_s": float(site[1]), "render_s": float(site[2]),
                "rendered_pairs": int(site[3]), "pairs_encoded_during_compute": int(site[4]),
                "mkdocs_s": float(site[5]), "wall_s": post, "ms_per_pair": 1000 * post / pairs}
    return res


def atlas_cmd(images: Path, out: Path, models: list[str], args, annotations: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "atlas", "build", "--weights", "random", "--out", str(out), "--images", str(images),
           "--batch-size", str(args.batch_size), "--query-layers", args.query_layers]
    if annotations is not None:
        cmd += ["--annotations", str(annotations)]
    for m in models:
        cmd += ["--model", m]
    if args.no_site:
        cmd.append("--no-site")
    return cmd


def point(n: int, models: list[str], images: Path, work: Path, args, *, warm: bool, naive: bool) -> dict:
    """Floor, ours (cold, optionally warm) and naive for one image count and model list."""
    tag = f"n{n}-{'-'.join(models)}" if len(models) < 7 else f"n{n}-all{len(models)}"
    res: dict = {"images": n, "models": models, "batch_size": args.batch_size}
    print(f"[{tag}] floor ...", flush=True)
    res["floor"] = worker(["floor", "--images", str(images), "--models", *models,
                           "--batch-size", str(args.batch_size)], work, f"{tag}-floor")
    out = work / f"{tag}-build"
    shutil.rmtree(out, ignore_errors=True)
    print(f"[{tag}] ours (fresh cache) ...", flush=True)
    res["ours"] = run_process(atlas_cmd(images, out, models, args), work / "logs" / f"{tag}-ours.log")
    if warm:
        print(f"[{tag}] ours (warm cache) ...", flush=True)
        res["ours_warm"] = run_process(atlas_cmd(images, out, models, args), work / "logs" / f"{tag}-warm.log")
        report = out / "report.json"
        if report.exists():
            res["ours_warm"]["report"] = json.loads(report.read_text())
    res["sizes"] = site_sizes(out, out / "site") if (out / "maps" / "manifest.json").exists() else {}
    if naive:
        print(f"[{tag}] naive ...", flush=True)
        naive_dir = work / f"{tag}-naive"
        shutil.rmtree(naive_dir, ignore_errors=True)
        res["naive"] = worker(["naive", "--images", str(images), "--models", *models, "--out", str(naive_dir)],
                              work, f"{tag}-naive")
        if not args.keep:
            shutil.rmtree(naive_dir, ignore_errors=True)
    res["build_dir"] = str(out)
    derive(res)
    print(f"[{tag}] {summary_line(res)}", flush=True)
    return res


def derive(res: dict) -> None:
    floor_wall = res["floor"]["process"]["wall_s"]
    floor_fwd = res["floor"].get("forward_s")
    ours = res["ours"]["wall_s"]
    maps = res["sizes"].get("maps", 0)
    d = {"ours_over_floor": ours / floor_wall, "ours_over_floor_forward": ours / floor_fwd if floor_fwd else None,
         "ours_maps_per_s": maps / ours if maps else None, "maps": maps}
    if "ours_warm" in res:
        d["warm_over_cold"] = res["ours_warm"]["wall_s"] / ours
    if "naive" in res:
        naive = res["naive"]["process"]["wall_s"]
        d.update(naive_over_ours=naive / ours, naive_over_floor=naive / floor_wall,
                 naive_maps=res["naive"].get("maps"), naive_maps_per_s=res["naive"].get("maps", 0) / naive,
                 naive_png_bytes_per_map=res["naive"].get("png_bytes", 0) / max(1, res["naive"].get("maps", 1)))
    res["derived"] = d


def summary_line(res: dict) -> str:
    d = res["derived"]
    s = (f"floor {res['floor']['process']['wall_s']:.1f}s (forward {res['floor'].get('forward_s', 0):.1f}s), "
         f"ours {res['ours']['wall_s']:.1f}s = {d['ours_over_floor']:.2f}x floor")
    if "naive" in res:
        s += f", naive {res['naive']['process']['wall_s']:.1f}s = {d['naive_over_ours']:.2f}x ours"
    return s


def memory_phase(work: Path, args) -> dict:
    """Items 3: peak RSS of the compute path vs batch size, and 518 px DINOv2 reduce vs store."""
    from synth import make_images

    imgs = work / "images-mem"
    count = max(args.memory_images, max(args.memory_batches), args.memory_518_batch)
    if not imgs.exists():
        make_images(count, imgs)
    res: dict = {"batch": [], "size518": []}
    for b in args.memory_batches:
        print(f"[memory] dinov2 batch {b} ...", flush=True)
        r = worker(["memory", "--images", str(imgs), "--model", "dinov2", "--batch-size", str(b),
                    "--count", str(count), "--mode", "reduce"], work, f"mem-b{b}")
        res["batch"].append(r)
    for mode in ("sdpa", "reduce", "reduce-copy", "store"):
        print(f"[memory] dinov2 518 px, batch {args.memory_518_batch}, {mode} ...", flush=True)
        r = worker(["memory", "--images", str(imgs), "--model", "dinov2", "--batch-size", str(args.memory_518_batch),
                    "--count", str(args.memory_518_batch), "--image-size", "518", "--mode", mode], work,
                   f"mem518-{mode}")
        res["size518"].append(r)
    return res


def profile_phase(images: Path, models: list[str], work: Path, args) -> dict:
    """cProfile of a fresh `atlas build` (its wall time is inflated by the profiler's overhead)."""
    import pstats

    out = work / "profile-build"
    shutil.rmtree(out, ignore_errors=True)
    prof = work / "atlas-build.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "atlas", *atlas_cmd(images, out, models, args)[3:]]
    print("[profile] atlas build under cProfile ...", flush=True)
    proc = run_process(cmd, work / "logs" / "profile.log")
    stats = pstats.Stats(str(prof))
    total = proc["wall_s"]
    rows = []
    for (file, line, func), (_cc, _nc, tt, ct, _callers) in stats.stats.items():
        rows.append({"where": f"{_short(file)}:{line}:{func}", "cum_s": ct, "self_s": tt})
    by_cum = sorted(rows, key=lambda r: -r["cum_s"])
    by_self = sorted(rows, key=lambda r: -r["self_s"])
    text_path = work / "atlas-build-profile.txt"
    with open(text_path, "w") as fh:
        ps = pstats.Stats(str(prof), stream=fh)
        ps.sort_stats("cumulative").print_stats(60)
        ps.sort_stats("tottime").print_stats(40)
    return {"wall_s": total, "prof": str(prof), "text": str(text_path),
            "top_cumulative": by_cum[:60], "top_self": by_self[:40]}


def _short(file: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# --------------------------------------------------------------------------------------------- table
def fmt_bytes(n: float) -> str:
    """Decimal units (1 MB = 10^6 bytes), as GitHub Pages states its 1 GB limit."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def table(results: dict) -> str:
    lines = []
    head = ("| images | models | floor s (fwd) | ours s | warm s | naive s | ours/floor (/fwd) | naive/ours |"
            " CPU s floor / ours / naive | maps | ours maps/s | naive maps/s | peak RSS floor / ours / naive |"
            " PNG B/map | site |")
    lines += [head, "|" + "---|" * 15]
    nan = float("nan")
    for res in results["points"]:
        d, s = res["derived"], res["sizes"]
        floor, ours = res["floor"], res["ours"]
        naive = res.get("naive", {}).get("process", {})
        models = ",".join(res["models"]) if len(res["models"]) < 7 else f"all {len(res['models'])}"
        rss = (f"{fmt_bytes(floor['process']['peak_rss'])} / {fmt_bytes(ours['peak_rss'])}"
               f" / {fmt_bytes(naive['peak_rss']) if naive else '-'}")
        site = fmt_bytes(s["site_bytes"]) if "site_bytes" in s else "-"
        cpu = f"{floor['process']['cpu_s']:.0f} / {ours['cpu_s']:.0f} / {naive['cpu_s'] if naive else nan:.0f}"
        cells = [
            res["images"], models, f"{floor['process']['wall_s']:.1f} ({floor.get('forward_s', 0):.1f})",
            f"{ours['wall_s']:.1f}", f"{res.get('ours_warm', {}).get('wall_s', nan):.1f}",
            f"{naive.get('wall_s', nan):.1f}",
            f"{d['ours_over_floor']:.2f} ({d['ours_over_floor_forward'] or nan:.2f})",
            f"{d.get('naive_over_ours', nan):.2f}", cpu, d["maps"], f"{d['ours_maps_per_s'] or 0:.0f}",
            f"{d.get('naive_maps_per_s', nan):.0f}", rss, f"{s.get('png_bytes_per_map', nan):.0f}", site,
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for res in results["points"]:  # the query-patch rows (--query-layers), part of the per image x model data
        s = res["sizes"]
        if s.get("query_files"):
            layers = results.get("args", {}).get("query_layers", "last")
            lines.append(f"Query-patch rows ({res['images']} images, --query-layers {layers}): "
                         f"{fmt_bytes(s['query_bytes'] / s['query_files'])} per image x model ViT, "
                         f"{fmt_bytes(s['query_bytes'])} in {s['query_files']} files")
    mem = results.get("memory")
    if mem:
        lines.append("")
        lines.append("| memory: dinov2 compute | batch | images | input | peak RSS | peak above model | s |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in mem["batch"] + mem["size518"]:
            if "mode" not in r:
                continue
            lines.append(f"| {r['mode']} | {r['batch_size']} | {r['images']} | {r['input'][0]} | "
                         f"{fmt_bytes(r['peak_rss'])} | {fmt_bytes(r['peak_above_model'])} | {r['seconds']:.1f} |")
    proj = results.get("projection")
    if proj:
        lines.append("")
        lines.append(f"WikiChurches projection ({proj['images']} images x {proj['models']} models): "
                     f"{fmt_bytes(proj['projected_bytes'])} = {100 * proj['share_of_github_pages_limit']:.1f}% "
                     "of GitHub Pages' 1 GB")
    br = results.get("browser")
    if br and "load_ms" in br:
        load, toggle = br["load_ms"], br["toggle_ms"]
        lines.append(f"Browser: image page ready {load['median']:.0f} ms median"
                     f" (cold first {load['cold_first']:.0f} ms, {load['heatmaps_on_page']} heatmaps);"
                     f" layer toggle {toggle['first_visit_median']:.0f} ms median first visit,"
                     f" {toggle['cached_median']:.0f} ms cached")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                   help=f"models of the main point (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--images", type=int, default=32, help="image count of the main point (default 32)")
    p.add_argument("--scale", type=int, nargs="*", default=[8, 32, 128],
                   help="image counts of the scale sweep (default 8 32 128; give none to skip the sweep)")
    p.add_argument("--scale-models", nargs="+", default=SCALE_MODELS,
                   help=f"models of the scale sweep (default: {' '.join(SCALE_MODELS)})")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass, ours and floor (default 8)")
    p.add_argument("--query-layers", default="last",
                   help="`atlas build --query-layers` of our builds (default last, as for the bundled sample; "
                        "none to leave the query-patch rows out)")
    p.add_argument("--no-site", action="store_true", help="run `atlas build --no-site` (compute and cache only)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    p.add_argument("--no-warm", action="store_true", help="skip the second (warm cache) build")
    p.add_argument("--skip-main", action="store_true", help="run only the sweep (and the optional steps)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: models dinov2 resnet50, 8 images, no sweep (about a minute)")
    p.add_argument("--memory", action="store_true",
                   help="item 3: peak RSS of dinov2's compute vs batch size, and at 518 px: our hook reduction "
                        "(and the same with copied slices, reduce-copy) vs output_attentions=True (all layers stored) "
                        "vs the SDPA floor")
    p.add_argument("--memory-batches", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                   help="batch sizes of the memory sweep (default 1 2 4 8 16)")
    p.add_argument("--memory-images", type=int, default=16,
                   help="images per run of the batch-size memory sweep (default 16, at least the largest batch)")
    p.add_argument("--memory-518-batch", type=int, default=2, help="batch of the 518 px comparison (default 2)")
    p.add_argument("--browser", action="store_true",
                   help="image-page load and layer-toggle times in headless Chromium (/usr/bin/chromium)")
    p.add_argument("--wikichurches", action="store_true",
                   help="the WikiChurches-shaped case: 139 images up to 800 px, ~600 boxes, the seven defaults "
                   "(cold and warm build; site bytes per image x model, files, post-compute ms per image x model)")
    p.add_argument("--profile", action="store_true",
                   help="also run the main point's `atlas build` under cProfile; prints the top functions")
    p.add_argument("--profile-images", type=int, default=None,
                   help="image count of the profiled build (default: the main point's --images)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where images, builds and logs go (default: a fresh temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (default: removed at the end)")
    p.add_argument("--json", type=Path, default=ROOT / "build" / "bench" / "results.json",
                   help="where the full results go (default build/bench/results.json); the table is written "
                        "next to it as .md")
    p.add_argument("--report", type=Path, default=None, metavar="JSON",
                   help="print the table of an earlier run's results JSON and exit (runs nothing)")
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.images, args.scale = QUICK_MODELS, 8, []
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report:
        print(table(json.loads(args.report.read_text())))
        return 0
    from synth import make_images

    work = args.workdir or Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "args": {k: str(v) if isinstance(v, Path) else v
                                                    for k, v in vars(args).items()},
                     "started": time.strftime("%Y-%m-%d %H:%M:%S"), "points": []}
    print(f"work dir {work}; load average {results['machine']['loadavg']}", flush=True)
    t0 = time.perf_counter()
    image_dirs: dict[int, Path] = {}

    def images_for(n: int) -> Path:
        if n not in image_dirs:
            image_dirs[n] = work / f"images-{n}"
            make_images(n, image_dirs[n])
        return image_dirs[n]

    args.json.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every phase, so a long run interrupted late still leaves its figures
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")

    main_point = None
    if not args.skip_main:
        main_point = point(args.images, args.models, images_for(args.images), work, args, warm=not args.no_warm,
                           naive=not args.no_naive)
        main_point["role"] = "main"
        results["points"].append(main_point)
        if "site_bytes" in main_point["sizes"]:
            results["projection"] = project(main_point["sizes"], WIKICHURCHES["images"], WIKICHURCHES["models"])
        save()
    if args.browser and main_point and (Path(main_point["build_dir"]) / "site" / "index.html").exists():
        from browser import measure

        print("[browser] headless Chromium ...", flush=True)
        results["browser"] = measure(Path(main_point["build_dir"]) / "site")
        save()
    if args.memory:
        results["memory"] = memory_phase(work, args)
        save()
    if args.wikichurches:
        results["wikichurches"] = wikichurches_phase(work, args)
        save()
    for n in args.scale:
        if main_point and n == args.images and args.scale_models == args.models:
            continue
        res = point(n, args.scale_models, images_for(n), work, args, warm=False, naive=not args.no_naive)
        res["role"] = "scale"
        results["points"].append(res)
        save()
    if args.profile:
        n = args.profile_images or args.images
        results["profile"] = profile_phase(images_for(n), args.models, work, args)
        results["profile"]["images"] = n
        print("[profile] top cumulative (project code):")
        ours = [r for r in results["profile"]["top_cumulative"] if r["where"].startswith(("atlas/", "ssl_attention/"))]
        for r in ours[:15]:
            print(f"  {r['cum_s']:8.1f} s  {r['where']}")
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_s"] = time.perf_counter() - t0
    save()
    text = table(results)
    args.json.with_suffix(".md").write_text(text + "\n")
    if args.profile:
        shutil.copy(results["profile"]["text"], args.json.with_name("atlas-build-profile.txt"))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at start {results['machine']['loadavg']}, at end {results['machine']['loadavg_end']}; "
          f"{os.cpu_count()} CPUs; total {results['total_s']:.0f} s; JSON {args.json}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
