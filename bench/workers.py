"""Bench workers, each run in its own process by ``bench/run.py`` (so peak RSS is per phase).

    python bench/workers.py floor  --images DIR --models dinov2 clip --batch-size 8 --json OUT
    python bench/workers.py naive  --images DIR --models dinov2 clip --out PNGDIR --json OUT
    python bench/workers.py memory --images DIR --model dinov2 --batch-size 4 --mode reduce|store|sdpa
                                   [--image-size 518] [--count N] --json OUT

Every worker writes one JSON object: wall seconds of its parts and memory figures read from
/proc/self/status (VmRSS, VmHWM; the peak is reset after the model is built where that matters).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STARTED = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssl_attention.images import list_images, load_image  # noqa: E402
from ssl_attention.models import load_model, parse_model_request  # noqa: E402
from ssl_attention.preprocess import to_tensor  # noqa: E402

IMPORT_S = time.perf_counter() - STARTED


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` value 5); False where not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def to_sdpa(model) -> str:
    """Switch a loaded model to fused attention (no weights returned): the floor's configuration."""
    if model.kind != "vit":
        return "n/a (CNN)"
    module = model.module
    if hasattr(module, "set_attn_implementation") and hasattr(module, "config"):
        module.set_attn_implementation("sdpa")
        return module.config._attn_implementation
    for block in getattr(module, "blocks", []):
        block.attn.fused_attn = True
    return "timm fused_attn"


def _images(folder: str, count: int | None = None) -> list[Path]:
    paths = list_images(Path(folder))
    return paths[:count] if count else paths


# ------------------------------------------------------------------------------------------- floor
def floor(args) -> dict:
    """Bare forward passes: SDPA attention, no attentions returned, inference_mode, same batches as ours."""
    paths = _images(args.images)
    decode_t = time.perf_counter()
    images = [load_image(p) for p in paths]
    decode_s = time.perf_counter() - decode_t
    result = {"images": len(images), "batch_size": args.batch_size, "decode_s": decode_s, "models": {}}
    for name in args.models:
        t0 = time.perf_counter()
        model = load_model(parse_model_request(name), weights="random")
        attn = to_sdpa(model)
        load_s = time.perf_counter() - t0
        prep_s = forward_s = 0.0
        for start in range(0, len(images), args.batch_size):
            t1 = time.perf_counter()
            pixels = to_tensor(images[start:start + args.batch_size], model.preprocessing)
            t2 = time.perf_counter()
            with torch.inference_mode():
                model.run(pixels)
            t3 = time.perf_counter()
            prep_s += t2 - t1
            forward_s += t3 - t2
        result["models"][name] = {"attention": attn, "load_s": load_s, "preprocess_s": prep_s,
                                  "forward_s": forward_s, "input": list(model.preprocessing.size)}
        del model
    result["forward_s"] = sum(m["forward_s"] for m in result["models"].values())
    result["import_s"] = IMPORT_S
    result["in_process_s"] = time.perf_counter() - STARTED
    result.update(proc_status())
    return result


# ------------------------------------------------------------------------------------------- naive
def _naive_vit_maps(model, pixels) -> np.ndarray:
    """[layers, heads, gh, gw]: CLS attention (mean received attention for models without CLS)."""
    module = model.module
    if hasattr(module, "config"):  # transformers: output_attentions=True, eager attention
        module.config.output_attentions = True
        with torch.no_grad():
            attentions = model.run(pixels).attentions
        module.config.output_attentions = False
    else:  # timm: the softmax outputs through hooks on attn_drop (timm's AttentionExtract does the same)
        attentions = []
        handles = [m.register_forward_hook(lambda _m, _i, o: attentions.append(o)) for m, _ in model.attention_points]
        with torch.no_grad():
            model.run(pixels)
        for h in handles:
            h.remove()
    gh, gw = model.grid
    p = model.prefix_tokens
    maps = []
    for a in attentions:  # [1, heads, T, T]
        a = a[0]
        m = a[:, 0, p:] if model.has_cls else a[:, p:, p:].mean(dim=1)
        maps.append(m.reshape(-1, gh, gw))
    return torch.stack(maps).numpy()


def naive(args) -> dict:
    """What users do today: per image and model one eager forward with output_attentions=True, then one
    PNG per layer x head, upsampled to the input size (nearest) and saved with ``plt.imsave``, as in DINO's
    ``visualize_attention.py``. ResNet-50: Grad-CAM per image, one PNG per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssl_attention.gradcam import gradcam_maps

    paths = _images(args.images)
    out = Path(args.out)
    result = {"images": len(paths), "models": {}}
    maps_total = png_bytes = 0
    for name in args.models:
        t0 = time.perf_counter()
        model = load_model(parse_model_request(name), weights="random")  # eager: attentions available
        load_s = time.perf_counter() - t0
        forward_s = save_s = 0.0
        count = 0
        h, w = model.preprocessing.size
        for path in paths:
            t1 = time.perf_counter()
            pixels = to_tensor([load_image(path)], model.preprocessing)
            if model.kind == "cnn":
                cams = gradcam_maps(model, pixels)["gradcam"][0]  # [stages, gh, gw]
                maps = [(f"gradcam-s{s}", cams[s]) for s in range(cams.shape[0])]
            else:
                vit = _naive_vit_maps(model, pixels)
                maps = [(f"attn-l{li:02d}-h{hi:02d}", vit[li, hi]) for li in range(vit.shape[0])
                        for hi in range(vit.shape[1])]
            t2 = time.perf_counter()
            folder = out / name / path.stem
            folder.mkdir(parents=True, exist_ok=True)
            for label, m in maps:
                t = torch.from_numpy(np.ascontiguousarray(m))[None, None]
                big = torch.nn.functional.interpolate(t, size=(h, w), mode="nearest")[0, 0].numpy()
                target = folder / f"{label}.png"
                plt.imsave(target, big, format="png")
                png_bytes += target.stat().st_size
            t3 = time.perf_counter()
            forward_s += t2 - t1
            save_s += t3 - t2
            count += len(maps)
        result["models"][name] = {"load_s": load_s, "forward_s": forward_s, "save_s": save_s, "maps": count}
        maps_total += count
        del model
    result.update(maps=maps_total, png_bytes=png_bytes, import_s=IMPORT_S,
                  in_process_s=time.perf_counter() - STARTED)
    result.update(proc_status())
    return result


# ------------------------------------------------------------------------------------------ memory
def memory(args) -> dict:
    """Peak RSS above the loaded model for one configuration of the compute path.

    reduce: our extraction (hooks reduce each layer's attention as it is produced; ``compute_maps``);
    reduce-copy: the same with each kept slice copied (``.clone()``), so no slice keeps its layer's whole
            [B, heads, T, T] matrix alive (a what-if for ssl_attention/attention.py, patched here only);
    store:  ``output_attentions=True`` keeping every layer's [B, heads, T, T] matrix (the usual approach);
    sdpa:   the bare SDPA forward (floor).
    """
    from ssl_attention.maps import compute_maps

    if args.mode == "reduce-copy":
        _patch_reducer_copies()
    size = (args.image_size, args.image_size) if args.image_size else None
    model = load_model(parse_model_request(args.model), weights="random", image_size=size)
    if args.mode == "sdpa":
        to_sdpa(model)
    images = [load_image(p) for p in _images(args.images, args.count)]
    batches = [to_tensor(images[i:i + args.batch_size], model.preprocessing)
               for i in range(0, len(images), args.batch_size)]
    base = proc_status()
    reset_ok = reset_peak()
    t0 = time.perf_counter()
    kept = 0
    for pixels in batches:
        if args.mode in ("reduce", "reduce-copy"):
            maps = compute_maps(model, pixels)
            kept += sum(v.nbytes for v in maps.values())
        elif args.mode == "store":
            model.module.config.output_attentions = True
            with torch.no_grad():
                out = model.run(pixels)
            kept = sum(a.numel() * a.element_size() for a in out.attentions)
            del out
        else:
            with torch.inference_mode():
                model.run(pixels)
    seconds = time.perf_counter() - t0
    peak = proc_status()
    gh, gw = model.grid
    tokens = model.prefix_tokens + gh * gw
    one_layer = args.batch_size * model.heads * tokens * tokens * 4
    return {
        "model": args.model, "mode": args.mode, "batch_size": args.batch_size, "images": len(images),
        "input": list(model.preprocessing.size), "tokens": tokens, "seconds": seconds,
        "rss_before": base["VmRSS"], "peak_rss": peak["VmHWM"], "peak_reset": reset_ok,
        "peak_above_model": peak["VmHWM"] - base["VmRSS"],
        "attention_matrix_bytes_one_layer": one_layer,
        "attention_matrix_bytes_all_layers": one_layer * model.layers,
        "kept_bytes_last_batch" if args.mode == "store" else "kept_bytes": kept,
    }


def _patch_reducer_copies() -> None:
    """Make ssl_attention's hook reducer copy the slices it keeps (views keep the whole matrix alive)."""
    import ssl_attention.attention as attention

    base = attention._Reducer

    class CopyingReducer(base):
        def __call__(self, layer, attn):
            super().__call__(layer, attn)
            for method in ("cls", "mean", "rollout"):
                kept = self.out.get(method)
                if kept is not None and kept[layer] is not None:
                    kept[layer] = kept[layer].clone()

    attention._Reducer = CopyingReducer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("floor")
    p.add_argument("--images", required=True)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--json", required=True)
    p = sub.add_parser("naive")
    p.add_argument("--images", required=True)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--json", required=True)
    p = sub.add_parser("memory")
    p.add_argument("--images", required=True)
    p.add_argument("--model", default="dinov2")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--mode", choices=("reduce", "reduce-copy", "store", "sdpa"), default="reduce")
    p.add_argument("--json", required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(True)
    result = {"floor": floor, "naive": naive, "memory": memory}[args.cmd](args)
    result["torch_threads"] = torch.get_num_threads()
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
