"""Hypothesis through the whole ``atlas build``: generated image sets and annotation files, one tiny model.

Each example writes a folder of images (good ones of random sizes and modes, broken bytes with image
extensions) with odd file names (unicode, spaces, ``..``, HTML, console markup) and a COCO or
WikiChurches file whose boxes are structurally plausible but often broken, then runs the CLI. Whatever
is thrown at it: exit 0, every good image in ``maps/manifest.json`` with its good boxes, every file
either built or listed in ``report.json`` by name, every skipped line naming its file, and nothing
written outside the output folder (inputs, checkpoint and working directory untouched).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from atlas.cli import app

NAME_PARTS = ["..", " ", "a b", "é", "日本語", "<img src=x onerror=alert(1)>", "[bold]", "[link=x]", "[red]",
              "'\"&amp;", "%2e%2e", "\\..\\", ".", "-", "_"]  # fmt: skip
NAMES = st.lists(
    st.sampled_from(NAME_PARTS) | st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
                                          max_size=4),
    max_size=3,
).map("".join)
# mode -> extensions PIL writes it to
GOOD = {"RGB": [".jpg", ".JPG", ".png", ".webp", ".bmp", ".tiff"], "L": [".jpg", ".png"], "RGBA": [".png", ".webp"],
        "LA": [".png"], "P": [".png", ".gif", ".bmp"], "I;16": [".png", ".tif"], "CMYK": [".jpg"]}  # fmt: skip
BAD_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif"]
# A box reported as skipped for sure (not clamped), and boxes whose outcome is clamping or skipping.
SURE_SKIP = ["nan", "missing", "short", "text"]
BAD_BOXES = [*SURE_SKIP, "negative", "huge", "inf", "zero"]


@dataclass
class Inputs:
    """A generated build input: files (name -> bytes), the annotation JSON text and what must survive."""

    files: dict[str, bytes] = field(default_factory=dict)
    good: dict[str, int] = field(default_factory=dict)  # good image file name -> its number of good boxes
    annotation: str = ""
    sure_skips: int = 0  # box problems that must be reported
    whole_file_broken: bool = False  # a COCO annotation refers to an image id missing from 'images'


def _image_bytes(mode: str, size: tuple[int, int], ext: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (size[1], size[0]), dtype=np.uint16))
    else:
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=Image.registered_extensions()[ext.lower()])
    return buffer.getvalue()


def _bad_box(kind: str, relative: bool) -> dict | list | None:
    """A broken box: as COCO ``bbox`` (pixels) or WikiChurches element fields (relative)."""
    scale = 0.01 if relative else 1.0
    values = {"nan": ["NaN", 0, 5, 5], "short": [1, 2], "text": ["1px", "2", 3, 4], "negative": [-5, -5, 10, 10],
              "huge": [0, 0, 1e12, 1e12], "inf": [float("inf"), 0, 4, 4], "zero": [3, 3, 0, 0],
              "missing": None}[kind]  # fmt: skip
    if values is None:
        return None
    return [v * scale if isinstance(v, (int, float)) else v for v in values]


def _good_box(draw, width: int, height: int) -> list[float]:
    x = draw(st.integers(0, width // 2))
    y = draw(st.integers(0, height // 2))
    return [x, y, draw(st.integers(2, width - x)), draw(st.integers(2, height - y))]


@st.composite
def inputs(draw) -> Inputs:
    spec = Inputs()
    n_good, n_bad = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    order = draw(st.permutations(range(n_good + n_bad)))  # a unique 2-digit prefix: unique image ids
    sizes: dict[str, tuple[int, int]] = {}
    for i, rank in enumerate(order):
        stem = f"{rank:02d}{draw(NAMES)}"
        if i < n_good:
            mode = draw(st.sampled_from(sorted(GOOD)))
            ext = draw(st.sampled_from(GOOD[mode]))
            size = (draw(st.integers(16, 72)), draw(st.integers(16, 72)))
            spec.files[stem + ext] = _image_bytes(mode, size, ext, seed=i)
            spec.good[stem + ext] = 0
            sizes[stem + ext] = size
        else:
            ext = draw(st.sampled_from(BAD_EXTENSIONS))
            good = _image_bytes("RGB", (40, 30), ".png" if ext == ".tif" else ext, seed=i)
            blob = draw(st.binary(max_size=64) | st.integers(0, len(good) - 1).map(lambda n, g=good: g[:n]))
            spec.files[stem + ext] = blob
    coco = draw(st.booleans())
    boxes: list[tuple[str, str, object]] = []  # (image file name or a ghost, kind, box)
    for name, (width, height) in sizes.items():
        for _ in range(draw(st.integers(0, 2))):
            boxes.append((name, "good", _good_box(draw, width, height)))
            spec.good[name] += 1
    for kind in draw(st.lists(st.sampled_from(BAD_BOXES), max_size=3)):
        boxes.append((draw(st.sampled_from(sorted(sizes))), kind, _bad_box(kind, relative=not coco)))
        spec.sure_skips += kind in SURE_SKIP
    if draw(st.booleans()):  # boxes of an image that is not in the image set
        boxes.append(("ghost[/z] <b>.png", "good", [1, 1, 5, 5]))
        spec.sure_skips += 1
    make = _coco if coco else _wikichurches
    spec.annotation = json.dumps(make(draw, spec, sizes, boxes))
    return spec


def _coco(draw, spec: Inputs, sizes: dict[str, tuple[int, int]], boxes: list) -> dict:
    names = sorted({name for name, _, _ in boxes} | set(sizes))
    images = [{"id": i + 1, "file_name": name, "width": sizes.get(name, (64, 64))[0],
               "height": sizes.get(name, (64, 64))[1]} for i, name in enumerate(names)]  # fmt: skip
    ids = {name: i + 1 for i, name in enumerate(names)}
    annotations = []
    for a, (name, _kind, box) in enumerate(boxes):
        ann = {"id": a + 1, "image_id": ids[name], "category_id": 1}
        if box is not None:
            ann["bbox"] = box
        annotations.append(ann)
    if draw(st.booleans()) and draw(st.booleans()):  # refers to an image id that 'images' lacks
        annotations.append({"id": 999, "image_id": 999, "category_id": 1, "bbox": [1, 1, 2, 2]})
        spec.whole_file_broken = True
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "<b>part</b> [red]"}]}


def _wikichurches(draw, spec: Inputs, sizes: dict[str, tuple[int, int]], boxes: list) -> dict:
    annotations: dict[str, dict] = {}
    for name, kind, box in boxes:
        width, height = sizes.get(name, (64, 64))
        element = {"label": 0}
        if box is not None:
            values = box if kind != "good" else [box[0] / width, box[1] / height, box[2] / width, box[3] / height]
            element.update(zip(("left", "top", "width", "height"), values, strict=False))
        group = annotations.setdefault(name, {"styles": [], "bbox_groups": [{"group_label": 0, "elements": []}]})
        group["bbox_groups"][0]["elements"].append(element)
    return {"meta": [{"name": "[/y] <i>arch</i>", "parents": []}], "annotations": annotations}


def _snapshot(*roots: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for root in roots for p in sorted(root.rglob("*"))
            if skip != p and skip not in p.parents}  # fmt: skip


def _build(spec: Inputs, root: Path, checkpoint: Path, site: bool) -> tuple[Path, dict, dict]:
    """Write ``spec`` under ``root``, run ``atlas build`` from an empty working directory, check what it
    touched; returns (OUT, manifest, report)."""
    images, cwd, out = root / "in" / "images", root / "cwd", root / "out"
    images.mkdir(parents=True)
    cwd.mkdir()
    for name, data in spec.files.items():
        (images / name).write_bytes(data)
    annotation = root / "in" / "boxes <x> [bold].json"
    annotation.write_text(spec.annotation, encoding="utf-8")
    before = _snapshot(root, checkpoint, skip=out)
    args = ["build", "--images", str(images), "--annotations", str(annotation), "--model", f"d={checkpoint}",
            "--image-size", "32", "--batch-size", "2", "--out", str(out), *([] if site else ["--no-site"])]
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert _snapshot(root, checkpoint, skip=out) == before, "something was written outside the output folder"
    manifest = json.loads((out / "maps" / "manifest.json").read_text(encoding="utf-8"))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    _check(spec, annotation, manifest, report)
    return out, manifest, report


def _check(spec: Inputs, annotation: Path, manifest: dict, report: dict) -> None:
    built = {image["file"]: image for image in manifest["images"]}
    skipped = report["skipped"]
    assert all("\n" not in line for line in skipped)
    for line in skipped:  # every skipped item names its file
        assert annotation.name in line or any(name in line for name in spec.files), line
    for name in spec.files:  # nothing lost: built or listed
        assert name in built or any(name in line for line in skipped), name
    for name in spec.good:
        assert name in built, (name, skipped)
        assert set(manifest["models"][0]["maps"]) >= {built[name]["id"]}
    file_rejected = any(annotation.name in line and "building without boxes" in line for line in skipped)
    assert file_rejected == spec.whole_file_broken or (file_rejected and not any(spec.good.values())), skipped
    if not file_rejected:
        for name, count in spec.good.items():
            assert len(built[name]["boxes"]) >= count, (name, built[name]["boxes"], skipped)
        box_lines = [line for line in skipped if annotation.name in line]
        assert len(box_lines) >= spec.sure_skips, skipped
    assert report["images"] == len(built)


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(max_examples=20, **SETTINGS)
@given(spec=inputs())
def test_generated_inputs_never_crash_the_build_or_lose_output(tiny_checkpoints, tmp_path_factory, spec):
    _build(spec, tmp_path_factory.mktemp("fuzz"), tiny_checkpoints["dinov2"], site=False)


@settings(max_examples=3, **SETTINGS)
@given(spec=inputs())
def test_generated_inputs_through_the_site_stage(tiny_checkpoints, tmp_path_factory, spec):
    out, manifest, _ = _build(spec, tmp_path_factory.mktemp("fuzz-site"), tiny_checkpoints["dinov2"], site=True)
    assert (out / "site" / "index.html").is_file() and (out / "site" / "atlas" / "report" / "index.html").is_file()
    site = (out / "site").resolve()
    assert all(site in p.resolve().parents for p in site.rglob("*"))
    assert len(manifest["images"]) == len(list((out / "images").glob("*.jpg")))
