"""Bad and unusual input: one clear line each, and the rest of the build goes on."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from atlas.cli import app
from atlas.dataset.stage import load_dataset
from ssl_attention.errors import AtlasError, ImageError, ModelLoadError
from ssl_attention.images import MAX_DECODE_SIDE, MAX_DECODED_BYTES, MAX_ID_LENGTH, decode_image, image_id
from ssl_attention.models import ModelRequest, load_model

runner = CliRunner()


def _gradient(width: int, height: int) -> np.ndarray:
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)


def _exif_rotated(path: Path) -> None:
    """A 60x30 stored JPEG whose EXIF says 'rotate 90 CW': the user sees 30x60, white block on top."""
    array = np.zeros((30, 60, 3), dtype=np.uint8)
    array[:, :20] = 255  # left third of the stored image = top third once rotated 90 degrees clockwise
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, exif=exif, quality=95)


def make_odd_images(folder: Path) -> dict[str, str]:
    """Write one file per kind of input; returns id -> expected outcome ('ok' or a message part)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_gradient(64, 48)).save(folder / "good.jpg")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(folder / "sixteen.png")
    Image.fromarray(_gradient(40, 40)).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(_gradient(40, 40)).convert("P").save(folder / "palette.png")
    rgba = Image.fromarray(_gradient(40, 40)).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    Image.fromarray(_gradient(40, 40)).convert("L").save(folder / "grey.png")
    _exif_rotated(folder / "rotated.jpg")
    Image.fromarray(_gradient(8, 8)).save(folder / "tiny.png")
    (folder / "fake.jpg").write_text("this is not a JPEG")
    data = io.BytesIO()
    Image.fromarray(_gradient(64, 64)).save(data, format="JPEG")
    (folder / "truncated.jpg").write_bytes(data.getvalue()[: len(data.getvalue()) // 3])
    Image.fromarray(_gradient(32, 32)).save(folder / "dup.png")
    Image.fromarray(_gradient(32, 32)).save(folder / "dup.jpg")
    return {"good": "ok", "sixteen": "ok", "cmyk": "ok", "palette": "ok", "alpha": "ok", "grey": "ok",
            "rotated": "ok", "dup": "ok", "tiny": "smaller than 16 px", "fake": "cannot decode image",
            "truncated": "cannot decode image"}


def test_every_kind_of_image_decodes_or_fails_in_one_line(tmp_path):
    expected = make_odd_images(tmp_path)
    for path in sorted(tmp_path.iterdir()):
        outcome = expected[path.stem]
        if outcome == "ok":
            decoded = decode_image(path)
            assert decoded.image.mode == "RGB"
        else:
            with pytest.raises(ImageError) as err:
                decode_image(path)
            message = str(err.value)
            assert "\n" not in message and str(path) in message and outcome in message


def test_16_bit_and_alpha_are_converted_sensibly(tmp_path):
    make_odd_images(tmp_path)
    sixteen = np.asarray(decode_image(tmp_path / "sixteen.png").image)
    assert sixteen.max() > 200 and sixteen.min() < 10  # full 16-bit range mapped to 8 bits, not clipped
    alpha = np.asarray(decode_image(tmp_path / "alpha.png").image).astype(int)
    assert alpha.min() >= 120  # half-transparent over white: nothing darker than about half grey


def test_exif_rotation_is_what_the_user_sees(tmp_path):
    _exif_rotated(tmp_path / "r.jpg")
    decoded = decode_image(tmp_path / "r.jpg")
    assert (decoded.width, decoded.height) == (30, 60)
    array = np.asarray(decoded.image).mean(axis=(1, 2))
    assert array[:15].mean() > 200 and array[-15:].mean() < 50  # the white block is on top


def test_exif_rotated_boxes_follow_the_rotation(tmp_path, tiny_checkpoints):
    """Boxes drawn on the rotated view (top third) stay on the top third of the display copy."""
    images = tmp_path / "images"
    images.mkdir()
    _exif_rotated(images / "r.jpg")
    coco = {"images": [{"id": 1, "file_name": "r.jpg", "width": 30, "height": 60}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 30, 20], "area": 600,
                             "iscrowd": 0}],
            "categories": [{"id": 1, "name": "white"}]}
    (tmp_path / "boxes.json").write_text(json.dumps(coco))
    out = tmp_path / "out"
    result = runner.invoke(app, ["build", "--images", str(images), "--annotations", str(tmp_path / "boxes.json"),
                                 "--model", f"d={tiny_checkpoints['dinov2']}", "--image-size", "32",
                                 "--out", str(out), "--no-site"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    image = manifest["images"][0]
    assert (image["width"], image["height"]) == (30, 60)
    assert image["boxes"] == [{"label": "white", "bbox": [0.0, 0.0, 30.0, 20.0]}]
    display = np.asarray(Image.open(out / image["display"]).convert("L")).astype(float)
    assert display.shape == (60, 30)
    assert display[:20].mean() > 200 and display[20:].mean() < 50


def test_huge_jpeg_is_decoded_reduced_with_its_full_size_kept(tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("RGB", (20000, 1000), (10, 200, 30)).save(path, quality=70)
    decoded = decode_image(path)
    assert (decoded.width, decoded.height) == (20000, 1000)
    assert max(decoded.image.size) <= MAX_DECODE_SIDE
    assert abs(decoded.image.size[0] / decoded.image.size[1] - 20) < 0.5


def _write_blank_png(path: Path, width: int, height: int, depth: int = 16, colour: int = 0) -> None:
    """A PNG of black pixels (greyscale ``colour`` 0, or palette 3 with a 256-colour palette) of ``depth``
    bits per pixel, compressed row by row: a tiny file of a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze, row = zlib.compressobj(9), bytes(1 + (width * depth + 7) // 8)  # filter byte 0, then the pixels
    idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    palette = chunk(b"PLTE", bytes(range(256)) * 3) if colour == 3 else b""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + palette + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


# Peak RSS of a fresh process around one decode: VmHWM, not getrusage's ru_maxrss, which Linux carries over
# from the forking (pytest) process, hiding a peak smaller than pytest's own size.
_PEAK_RSS = """
import re, sys
from pathlib import Path
from ssl_attention.images import decode_image
def peak():
    return int(re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
before = peak()
decoded = decode_image(Path(sys.argv[1]))
print(decoded.width, decoded.height, max(decoded.image.size), decoded.image.mode, peak() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak RSS from Linux's /proc")
def test_16_bit_image_huge_in_pixels_small_in_bytes_decodes_in_bounded_memory(tmp_path):
    # 80 MP of 16-bit grey is 160 MB decoded (now peaking at about 420 MB); the float64 copies of the full
    # image peaked at 2.9 GB
    width, height = 10_000, 8_000
    path = tmp_path / "huge16.png"
    _write_blank_png(path, width, height)
    assert path.stat().st_size < 1_000_000
    result = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True)
    w, h, side, mode, grown = result.stdout.split()
    assert (int(w), int(h), int(side), mode) == (width, height, MAX_DECODE_SIDE, "RGB")
    decoded_bytes = 2 * width * height
    assert int(grown) < 4 * decoded_bytes, f"peak RSS grew by {int(grown) / 1e6:.0f} MB"  # was 2.9 GB


@pytest.mark.skipif(not Path("/usr/bin/time").is_file(), reason="measures the peak with GNU time")
@pytest.mark.parametrize(("depth", "colour", "mode"), [(8, 3, "P"), (1, 0, "1")])
def test_palette_and_1_bit_bombs_decode_under_the_decoded_bytes_bound(tmp_path, depth, colour, mode):
    """20000 x 20000 px (400 MP, the pixel limit) of 8-bit palette or 1-bit pixels: 400 MB decoded (1 byte
    each), under the bound, but converted to RGB(A) at full size they peaked at 9.0 GB and 2.6 GB. The
    whole process's peak, measured by ``/usr/bin/time -v``, stays under MAX_DECODED_BYTES. (The address
    space is capped at twice the bound, so the unbounded conversion fails fast instead of using 9 GB.)"""
    path = tmp_path / f"bomb-{mode}.png"
    _write_blank_png(path, 20_000, 20_000, depth, colour)
    assert path.stat().st_size < 1_000_000
    script = ("import resource, sys\nfrom pathlib import Path\nfrom ssl_attention.images import decode_image\n"
              f"resource.setrlimit(resource.RLIMIT_AS, ({2 * MAX_DECODED_BYTES}, resource.RLIM_INFINITY))\n"
              "d = decode_image(Path(sys.argv[1]))\nprint(d.width, d.height, max(d.image.size), d.image.mode)")
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", script, str(path)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["20000", "20000", str(MAX_DECODE_SIDE), "RGB"]
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) * 1024
    assert peak < MAX_DECODED_BYTES, f"peak RSS {peak / 1e9:.2f} GB"


def test_block_averaged_16_bit_image_keeps_its_grey_levels(tmp_path):
    # 8200 x 100 px, left half 0x4040 (-> 64), right half 0xFFFF (-> 255): shrunk by blocks of 3 pixels
    values = np.full((100, 8200), 0xFFFF, dtype=np.uint16)
    values[:, :4100] = 0x4040
    path = tmp_path / "wide16.png"
    Image.fromarray(values).save(path)
    decoded = decode_image(path)
    assert (decoded.width, decoded.height) == (8200, 100) and decoded.image.size == (MAX_DECODE_SIDE, 50)
    grey = np.asarray(decoded.image)[:, :, 0]
    assert grey[0, 0] == 64 and grey[0, -1] == 255


def test_images_too_large_once_decoded_are_refused_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(_gradient(200, 100)).save(path)
    monkeypatch.setattr("ssl_attention.images.MAX_DECODED_BYTES", 200 * 100 * 4 - 1)
    with pytest.raises(ImageError) as exc_info:
        decode_image(path)
    message = str(exc_info.value)
    assert str(path) in message and "200x100 px of mode RGB would take" in message and "limit" in message


def test_image_ids_cannot_escape_the_output_folder():
    for name in ["../../etc/passwd.png", "..png", ".hidden.png", "a b<script>.png", "é.png"]:
        ident = image_id(Path(name))
        assert "/" not in ident and not ident.startswith(".") and ident not in ("", "..")
        assert all(c.isalnum() or c in "._-" for c in ident)


def test_long_ids_are_bounded_distinct_and_normal_ids_unchanged():
    assert image_id(Path("church_01.jpg")) == "church_01"
    assert image_id(Path("x" * MAX_ID_LENGTH + ".png")) == "x" * MAX_ID_LENGTH
    long_a, long_b = image_id(Path("a" * 250 + ".png")), image_id(Path("a" * 249 + "b.png"))
    spaced, underscored = image_id(Path("a b" * 80 + ".png")), image_id(Path("a_b" * 80 + ".png"))
    assert len({long_a, long_b, spaced, underscored}) == 4
    assert all(len(i) <= MAX_ID_LENGTH for i in (long_a, long_b, spaced, underscored))
    assert long_a.startswith("a" * 100) and long_a == image_id(Path("a" * 250 + ".jpg"))  # stable


def test_file_names_near_the_255_byte_limit_build_and_rebuild(tmp_path, tiny_checkpoints):
    images = tmp_path / "images"
    images.mkdir()
    names = ["n" * 251 + ".png", "n" * 245 + "_Q .png", "short.png"]  # 255 and 252 characters, one normal
    for k, name in enumerate(names):
        Image.fromarray(_gradient(40 + k, 40)).save(images / name)
    out = tmp_path / "out"
    args = ["build", "--images", str(images), "--model", f"d={tiny_checkpoints['dinov2']}",
            "--image-size", "32", "--out", str(out)]
    for _ in range(2):  # the rerun reuses the cache and the temp-file names again
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    assert sorted(img["file"] for img in manifest["images"]) == sorted(names)
    ids = [img["id"] for img in manifest["images"]]
    assert len(set(ids)) == 3 and "short" in ids and all(len(i) <= MAX_ID_LENGTH for i in ids)
    assert json.loads((out / "report.json").read_text())["skipped"] == []
    pages = list((out / "site" / "atlas" / "images").iterdir())
    assert len(pages) == 3


def test_no_usable_images_says_what_the_folder_held(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "notes.txt").write_text("hello")
    (images / "boxes.json").write_text("{}")
    (images / "broken.jpg").write_bytes(b"not a JPEG")
    (images / "nested").mkdir()
    with pytest.raises(AtlasError) as exc_info:
        load_dataset(images, None, tmp_path / "out")
    message = str(exc_info.value)
    assert "\n" not in message and message.startswith(f"{images}: no usable images found: 4 entries")
    assert "2 not images" in message and "1 refused (first: broken.jpg: cannot decode image" in message
    assert "1 subfolders (not searched" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AtlasError, match="the folder is empty"):
        load_dataset(empty, None, tmp_path / "out")


def test_links_loops_and_fifos_in_the_folder_get_one_line_each(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(_gradient(40, 40)).save(images / "good.png")
    (images / "dangling.png").symlink_to(tmp_path / "gone.png")
    (images / "loop.jpg").symlink_to(images / "loop.jpg")
    os.mkfifo(images / "pipe.png")  # opening it would block forever
    dataset = load_dataset(images, None, tmp_path / "out")
    assert [r.id for r in dataset.images] == ["good"]
    assert len(dataset.skipped) == 3 and {skip.stage for skip in dataset.skipped} == {"images"}
    lines = dict(zip(["dangling.png", "loop.jpg", "pipe.png"], [skip.line for skip in dataset.skipped], strict=True))
    assert "dangling symbolic link" in lines["dangling.png"] and "gone.png" in lines["dangling.png"]
    assert "symbolic link loop" in lines["loop.jpg"]
    assert "a FIFO, not a regular file" in lines["pipe.png"]
    assert all(str(images / name) in line for name, line in lines.items())


def test_prompts_naming_a_fifo_is_one_line_not_a_hang(tmp_path):
    """`--prompts FIFO` waited forever for a writer (issue 28, item 15): refused from its type, never opened.
    One subprocess with a time limit, so a hang fails the test instead of stalling the suite."""
    fifo = tmp_path / "prompts.txt"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "atlas", "build", "--model", "clip", "--method", "relevance",
                           "--prompts", str(fifo), "--images", str(_images(tmp_path / "imgs")), "--out", str(out),
                           "--no-site"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {fifo}: the prompts file is a FIFO, not a regular file"
    assert time.monotonic() - started < 30 and not out.exists()


def test_dataset_skips_carry_their_stage_and_the_former_lines(tmp_path):
    """Refused images are stage "images", the reader's skips stage "annotations"; the lines are unchanged."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(_gradient(40, 32)).save(images / "a b.png")
    Image.fromarray(_gradient(40, 32)).save(images / "a_b.jpg")  # the same id as "a b.png"
    Image.fromarray(_gradient(8, 8)).save(images / "tiny.png")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"images": [{"id": 1, "file_name": "a_b.png"}, {"id": 2, "file_name": "x.png"}],
                                 "annotations": [{"image_id": 1, "bbox": [1, 1, 5, 5]}]}))
    dataset = load_dataset(images, boxes, tmp_path / "out")
    assert [(r.id, len(r.boxes)) for r in dataset.images] == [("a_b", 1)]
    assert [(skip.stage, skip.line) for skip in dataset.skipped] == [
        ("images", f"{images / 'a_b.jpg'}: duplicate image id 'a_b' (also a b.png); skipped"),
        ("images", f"{images / 'tiny.png'}: 8x8 px is smaller than 16 px, less than one patch"),
        ("annotations", f"{boxes}: images[1] (x.png): not in the image set; its boxes are skipped"),
    ]
    boxes.write_text("{")
    (skip,) = load_dataset(images, boxes, tmp_path / "out").skipped[2:]
    assert skip.stage == "annotations" and skip.line.startswith(f"{boxes}: not valid JSON (")
    assert skip.line.endswith("; building without boxes")


def test_build_goes_on_past_bad_images_and_lists_them(tmp_path, tiny_checkpoints):
    expected = make_odd_images(tmp_path / "images")
    out = tmp_path / "out"
    args = ["build", "--images", str(tmp_path / "images"), "--model", f"d={tiny_checkpoints['dinov2']}",
            "--image-size", "32", "--out", str(out), "--no-site"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "maps" / "manifest.json").read_text())
    built = sorted(img["id"] for img in manifest["images"])
    assert built == sorted(k for k, v in expected.items() if v == "ok")
    assert sorted(manifest["models"][0]["maps"]) == built
    report = json.loads((out / "report.json").read_text())
    for name in ("tiny.png", "fake.jpg", "truncated.jpg", "dup.png"):
        assert sum(name in line for line in report["skipped"]) == 1, name
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1 and "--strict: 4 items skipped" in strict.stderr


def test_names_that_look_like_console_markup_are_printed_verbatim(tmp_path, tiny_checkpoints):
    """File names and annotation keys are user text: '[/x]' or '[bold]' must neither crash nor vanish."""
    images = tmp_path / "[bold]imgs"
    images.mkdir()
    Image.fromarray(_gradient(40, 40)).save(images / "a[red].png")
    (images / "b[italic].jpg").write_text("not a JPEG")
    boxes = {"meta": [{"name": "[/y]", "parents": []}],
             "annotations": {"ghost[/z]": {"styles": [], "bbox_groups": []},
                             "a[red]": {"styles": ["[b]Gothic"], "bbox_groups": [{"group_label": 0, "elements": [
                                 {"left": 0.1, "top": 0.1, "width": 0.5, "height": 0.5, "label": 0}]}]}}}
    (tmp_path / "parts.json").write_text(json.dumps(boxes))
    result = runner.invoke(app, ["build", "--images", str(images), "--annotations", str(tmp_path / "parts.json"),
                                 "--model", f"d={tiny_checkpoints['dinov2']}", "--image-size", "32",
                                 "--out", str(tmp_path / "out"), "--no-site"])
    assert result.exit_code == 0, result.output
    output = "".join(result.output.split())  # the console wraps long lines anywhere
    assert "b[italic].jpg" in output and "ghost[/z]" in output and "[bold]imgs" in output
    manifest = json.loads((tmp_path / "out" / "maps" / "manifest.json").read_text())
    assert [img["id"] for img in manifest["images"]] == ["a_red"]  # ids are sanitised file stems
    assert [box["label"] for box in manifest["images"][0]["boxes"]] == ["[/y]"]  # WikiChurches key "a[red]"
    assert manifest["images"][0]["tags"] == ["[b]Gothic"]  # its styles, for the gallery's tag filter
    assert json.loads((tmp_path / "out" / "report.json").read_text())["images"] == 1


def test_one_bad_checkpoint_does_not_stop_the_others(tmp_path, tiny_checkpoints):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("[]")
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(_gradient(40, 40)).save(images / "a.png")
    result = runner.invoke(app, ["build", "--images", str(images), "--model", f"bad={broken}",
                                 "--model", f"good={tiny_checkpoints['dinov2']}", "--image-size", "32",
                                 "--out", str(tmp_path / "out"), "--no-site"])
    assert result.exit_code == 0, result.output
    assert "skipped: model bad" in result.output.replace("\n", " ")
    manifest = json.loads((tmp_path / "out" / "maps" / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["good"]


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(_Exploit.target),))


def test_pickled_weights_never_execute(tmp_path):
    """A .pt weights file with a pickle payload is refused (weights_only) and the payload does not run."""
    _Exploit.target = str(tmp_path / "pwned")
    weights = tmp_path / "weights.pt"
    weights.write_bytes(pickle.dumps({"state_dict": _Exploit()}))
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("x", f"timm:test_vit@{weights}"), weights="pretrained")
    assert str(weights) in str(err.value)
    assert not (tmp_path / "pwned").exists()


def test_the_refusal_of_a_pickled_pth_is_one_whole_sentence_without_torchs_advice(tmp_path):
    """torch's own message (cut mid-sentence at 240 characters) advised passing weights_only=False, which would
    run the payload: the refusal is the tool's own sentence, the same as for transformers checkpoints, and
    torch's warning about the pickle protocol is not printed beside it."""
    import warnings

    from ssl_attention.errors import PICKLED_WEIGHTS_REFUSED

    _Exploit.target = str(tmp_path / "pwned")
    weights = tmp_path / "weights.pth"
    weights.write_bytes(pickle.dumps({"state_dict": _Exploit()}))
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ModelLoadError) as err:
        warnings.simplefilter("always")
        load_model(ModelRequest("x", f"timm:test_vit@{weights}"), weights="pretrained")
    assert str(err.value) == f"{weights}: {PICKLED_WEIGHTS_REFUSED}"
    assert PICKLED_WEIGHTS_REFUSED.endswith("convert the checkpoint to safetensors")
    assert "weights_only" not in str(err.value)
    assert [str(w.message) for w in caught] == [] and not (tmp_path / "pwned").exists()


def _hf_folder_with_pickled_weights(source: Path, folder: Path, payload: object | None) -> Path:
    """A copy of an HF save_pretrained folder whose weights are a torch pickle (plus ``payload`` if given)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(source, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save({**state, "payload": payload} if payload is not None else state, folder / "pytorch_model.bin")
    return folder


def test_hf_pickled_weights_never_execute(tmp_path, tiny_checkpoints):
    """pytorch_model.bin with a pickle payload: refused in one line naming the file; the payload never runs.
    The same file without the payload loads (weights_only semantics, not a blanket refusal of .bin)."""
    import torch

    _Exploit.target = str(tmp_path / "pwned")
    folder = _hf_folder_with_pickled_weights(tiny_checkpoints["dinov2"], tmp_path / "evil", _Exploit())
    for weights in ("pretrained", "auto"):
        with pytest.raises(ModelLoadError) as err:
            load_model(ModelRequest("x", str(folder)), weights=weights)
        message = str(err.value)
        assert str(folder / "pytorch_model.bin") in message and "\n" not in message, message
        assert not (tmp_path / "pwned").exists()
    plain = _hf_folder_with_pickled_weights(tiny_checkpoints["dinov2"], tmp_path / "plain", None)
    model = load_model(ModelRequest("x", str(plain)), weights="pretrained")
    expected = load_model(ModelRequest("x", str(tiny_checkpoints["dinov2"])), weights="pretrained")
    for key, value in expected.module.state_dict().items():
        torch.testing.assert_close(model.module.state_dict()[key], value)
    torch.load(folder / "pytorch_model.bin", weights_only=False)  # positive control: the payload is live
    assert (tmp_path / "pwned").exists()


@pytest.mark.parametrize("model_type", ["dinov2", "custom-vit"])
def test_hf_custom_code_is_never_imported(tmp_path, tiny_checkpoints, monkeypatch, model_type):
    """config.json and preprocessor_config.json name code in the folder (auto_map): it is never imported,
    not even when the user would answer 'yes' to transformers' trust_remote_code prompt."""
    import runpy
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints["dinov2"], folder)
    marker = tmp_path / "pwned"
    (folder / "custom_vit.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "from transformers import Dinov2Config, Dinov2Model, BaseImageProcessor\n"
        "class CustomConfig(Dinov2Config):\n    model_type = 'custom-vit'\n"
        "class CustomModel(Dinov2Model):\n    config_class = CustomConfig\n"
        "class CustomProcessor(BaseImageProcessor):\n    pass\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "custom_vit.CustomConfig", "AutoModel": "custom_vit.CustomModel",
                          "AutoImageProcessor": "custom_vit.CustomProcessor"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "CustomProcessor", "auto_map": {"AutoImageProcessor": "custom_vit.CustomProcessor"}}
    ))
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt="": prompts.append(prompt) or "yes")
    for weights in ("pretrained", "random", "auto"):
        try:
            model = load_model(ModelRequest("x", str(folder)), weights=weights)
        except ModelLoadError as exc:  # a model type only its own code defines: refused in one line
            assert model_type == "custom-vit" and "\n" not in str(exc) and str(folder) in str(exc), exc
            assert "trust_remote_code" in str(exc)
        else:  # a known model type: the built-in class, whatever auto_map says
            assert model_type == "dinov2" and type(model.module).__name__ == "Dinov2Model"
        assert prompts == [] and not marker.exists(), weights
    runpy.run_path(str(folder / "custom_vit.py"))  # positive control: importing the file leaves the mark
    assert marker.exists()


def test_timm_safetensors_weights_load(tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(5)
    source = timm.create_model("test_vit")
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    model = load_model(ModelRequest("x", f"timm:test_vit@{tmp_path / 'w.safetensors'}"), weights="pretrained")
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.module.state_dict()[key], value)
    assert model.revision.startswith("local:")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=2048), cut=st.integers(min_value=0, max_value=4000),
       fmt=st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"]))
def test_fuzzed_image_bytes_never_crash(tmp_path, data, cut, fmt):
    """Garbage, truncated or bit-flipped files decode or raise ImageError; nothing else."""
    buffer = io.BytesIO()
    Image.fromarray(_gradient(40, 30)).save(buffer, format=fmt)
    raw = bytearray(buffer.getvalue())
    raw = raw[:cut] if cut < len(raw) else raw
    for i, byte in enumerate(data[:64]):
        if raw:
            raw[(i * 7919) % len(raw)] ^= byte
    path = tmp_path / f"fuzz.{fmt.lower()}"
    path.write_bytes(bytes(raw) + data[64:])
    try:
        decoded = decode_image(path)
    except ImageError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert decoded.image.mode == "RGB" and min(decoded.width, decoded.height) >= 16


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blobs=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
       annotation=st.one_of(st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                            st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                                         lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c,
                                                                                              max_size=3),
                                         max_leaves=12).map(json.dumps)))
def test_dataset_stage_survives_generated_garbage(tmp_path_factory, blobs, annotation):
    """Broken files beside good images and a garbage annotation file: no crash, no good image lost."""
    from atlas.dataset.stage import load_dataset

    folder = tmp_path_factory.mktemp("garbage")
    images = folder / "images"
    images.mkdir()
    for name in ("good1.png", "good2.jpg"):
        Image.fromarray(_gradient(40, 32)).save(images / name)
    for i, blob in enumerate(blobs):
        (images / f"broken{i}.{['jpg', 'png', 'webp', 'gif'][i % 4]}").write_bytes(blob)
    (folder / "boxes.json").write_text(annotation, encoding="utf-8")
    dataset = load_dataset(images, folder / "boxes.json", folder / "out")
    ids = {record.id for record in dataset.images}
    assert {"good1", "good2"} <= ids
    lines = [skip.line for skip in dataset.skipped]
    assert all("\n" not in line for line in lines)
    for i in range(len(blobs)):
        name = f"broken{i}"
        listed = [line for line in lines if f"{name}." in line]
        assert (name in ids) != (len(listed) == 1), (name, lines)


# --- models that fail: one skip line each, the other models built, nothing of theirs published ---


def _images(folder: Path, count: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(_gradient(40 + i, 40)).save(folder / f"img{i}.png")
    return folder


def _compute_maps(model, images, maps_dir: Path, render=None):
    """The local executor over ``images`` with every method of a model the test loaded, one image per batch."""
    import torch

    from atlas.core.manifest import ModelEntry
    from atlas.models.compute import compute_model_maps
    from atlas.models.plan import MapsOptions, ModelJob
    from atlas.models.sink import MapsSink

    entry = ModelEntry.of_model(model, model.methods, None)
    job = ModelJob(ModelRequest(model.name, model.checkpoint), MapsOptions()).with_entry(entry, images, maps_dir)
    return compute_model_maps(model, job, MapsSink(job, maps_dir, render), batch_size=1, device=torch.device("cpu"))


def _copy_checkpoint(source: Path, folder: Path, **config_changes) -> Path:
    import shutil

    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **config_changes}))
    return folder


def _build_with(tmp_path: Path, models: dict[str, Path], *extra: str):
    args = ["build", "--images", str(_images(tmp_path / "images", 2)), "--image-size", "32",
            "--weights", "pretrained", "--out", str(tmp_path / "out"), "--no-site", *extra]
    for name, folder in models.items():
        args += ["--model", f"{name}={folder}"]
    return runner.invoke(app, args)


def _assert_only_good_built(tmp_path: Path, result, bad_line: str) -> None:
    """Exit 0, one skip line for model 'bad' (in report.json), 'good' in the manifest, no maps of 'bad'."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    lines = [line for line in report["skipped"] if line.startswith("model bad")]
    assert len(lines) == 1 and bad_line in lines[0], report["skipped"]
    manifest = json.loads((tmp_path / "out" / "maps" / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["good"]
    assert not list((tmp_path / "out" / "maps").glob("bad/*"))  # neither maps nor its model.json cache entry


def test_truncated_safetensors_is_one_skip_line_naming_the_file(tmp_path, tiny_checkpoints):
    bad = _copy_checkpoint(tiny_checkpoints["dinov2"], tmp_path / "bad")
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = _build_with(tmp_path, {"bad": bad, "good": tiny_checkpoints["vit"]})
    _assert_only_good_built(tmp_path, result, f"{weights}: truncated or corrupt safetensors file (")


def test_model_failing_in_its_forward_pass_is_skipped(tmp_path, tiny_checkpoints):
    """num_channels=1: the checkpoint loads (the patch conv has 1 input channel) but RGB input fails."""
    from safetensors.torch import load_file, save_file

    bad = _copy_checkpoint(tiny_checkpoints["dinov2"], tmp_path / "bad", num_channels=1)
    state = load_file(bad / "model.safetensors")
    key = "embeddings.patch_embeddings.projection.weight"
    state[key] = state[key][:, :1].contiguous()
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    load_model(ModelRequest("bad", str(bad)), weights="pretrained")  # it does load
    result = _build_with(tmp_path, {"bad": bad, "good": tiny_checkpoints["vit"]})
    _assert_only_good_built(tmp_path, result, "model bad: computing its maps failed (ValueError: ")
    alone = _build_with(tmp_path / "alone", {"bad": bad})
    assert alone.exit_code == 2, alone.output
    lines = [line for line in alone.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "computing its maps failed" in lines[0], alone.stderr


def test_non_finite_maps_fail_their_model(tmp_path, tiny_checkpoints):
    """NaN weights give NaN maps: reported in one line, never published as flat heatmaps."""
    from safetensors.torch import load_file, save_file

    bad = _copy_checkpoint(tiny_checkpoints["dinov2"], tmp_path / "bad")
    state = load_file(bad / "model.safetensors")
    state["embeddings.patch_embeddings.projection.bias"][:] = float("nan")
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    result = _build_with(tmp_path, {"bad": bad, "good": tiny_checkpoints["vit"]})
    _assert_only_good_built(tmp_path, result, "non-finite (NaN or infinite)")


def test_every_source_of_the_input_size_is_capped(tmp_path, tiny_checkpoints):
    """The 1024 px side limit and the token limit hold for the checkpoint's own sizes too: a crop_size of
    100,000 in preprocessor_config.json ended in MemoryError; --image-size overrides it. A config's
    image_size, and 1024 px at patch 4 (65,536 tokens), are refused in one line naming the source."""
    from ssl_attention.preprocess import MAX_TOKENS

    crop = _copy_checkpoint(tiny_checkpoints["dinov2"], tmp_path / "crop")
    (crop / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "BitImageProcessor", "do_center_crop": True, "size": {"shortest_edge": 100_000},
        "crop_size": {"height": 100_000, "width": 100_000}}))
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("x", str(crop)), weights="pretrained")
    assert str(err.value) == (f"{crop / 'preprocessor_config.json'} (crop_size): input size 100000x100000 px is "
                              "larger than the 1024 px per side limit; choose one with --image-size")
    chosen = load_model(ModelRequest("x", str(crop)), weights="pretrained", image_size=(32, 32))
    assert chosen.preprocessing.size == (32, 32)
    native = _copy_checkpoint(tiny_checkpoints["vit"], tmp_path / "native", image_size=2048)
    with pytest.raises(ModelLoadError, match=re.escape(f"{native / 'config.json'} (image_size): input size 2048x2048")):
        load_model(ModelRequest("x", str(native)), weights="random")
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("x", str(tiny_checkpoints["timm_vit"])), weights="pretrained", image_size=(1024, 1024))
    assert str(err.value) == ("--image-size: input size 1024x1024 px at patch 4 px is 65,536 patch tokens, more than "
                              f"the {MAX_TOKENS:,} limit; choose a smaller --image-size")
    # in a build: that model is skipped in one line, the other is built
    args = ["build", "--images", str(_images(tmp_path / "images", 2)), "--weights", "pretrained", "--no-site",
            "--out", str(tmp_path / "out"), "--model", f"bad={crop}", "--model", f"good={tiny_checkpoints['vit']}"]
    _assert_only_good_built(tmp_path, runner.invoke(app, args), "(crop_size): input size 100000x100000 px")


# Linux only: the address space of the build is capped, so that a regression fails fast instead of filling memory
_CAPPED = "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.RLIM_INFINITY)); " \
          "sys.argv = ['atlas', *sys.argv[1:]]; runpy.run_module('atlas', run_name='__main__')"


@pytest.mark.parametrize("kind", ["transformers", "timm"])
def test_an_absurd_model_config_is_refused_by_its_parameter_count_before_allocating(tmp_path, tiny_checkpoints,
                                                                                     kind):
    """hidden size 8192 x 64 layers (34 billion parameters, 137 GB of float32: built from the config, each
    layer's weights were allocated and initialised until memory ran out), or a timm embed_dim of 65536:
    refused from the config in one line, before any weight is allocated; the build goes on."""
    from tests.fixtures.interrupt import clean_env

    if kind == "transformers":
        bad = _copy_checkpoint(tiny_checkpoints["dinov2"], tmp_path / "bad", hidden_size=8192, num_hidden_layers=64,
                               num_attention_heads=8)
    else:
        bad = _copy_checkpoint(tiny_checkpoints["timm_vit"], tmp_path / "bad")
        config = json.loads((bad / "config.json").read_text())
        config["model_args"] = {**config["model_args"], "embed_dim": 65536, "depth": 64, "num_heads": 8}
        (bad / "config.json").write_text(json.dumps(config))
    args = ["build", "--images", str(_images(tmp_path / "images", 2)), "--image-size", "32", "--weights",
            "random", "--out", str(tmp_path / "out"), "--no-site", "--model", f"bad={bad}",
            "--model", f"good={tiny_checkpoints['vit']}"]  # random weights: built from the config alone
    result = subprocess.run([sys.executable, "-c", _CAPPED, *args], capture_output=True, text=True, env=clean_env(),
                            timeout=300)
    built = SimpleNamespace(exit_code=result.returncode, output=result.stdout + result.stderr)
    _assert_only_good_built(tmp_path, built, f"{bad / 'config.json'}: the config describes a model of ")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "billion; refused before allocating it" in " ".join(report["skipped"])


def test_a_model_failing_part_way_leaves_none_of_its_new_maps(tmp_path, tiny_checkpoints):
    """Batch 1 written, batch 2 fails: batch 1's files are removed; maps reused from the cache stay."""
    from atlas.dataset.stage import load_dataset

    dataset = load_dataset(_images(tmp_path / "images", 3), None, tmp_path / "out")
    maps_dir = tmp_path / "out" / "maps"
    model = load_model(ModelRequest("m", str(tiny_checkpoints["dinov2"])), weights="pretrained",
                       image_size=(32, 32))
    first = _compute_maps(model, dataset.images[:1], maps_dir)
    run, calls = model.run, []

    def fail_second(pixels):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return run(pixels)

    model.run = fail_second
    with pytest.raises(RuntimeError, match="boom"):
        _compute_maps(model, dataset.images, maps_dir)
    assert len(calls) == 2  # image 0 reused, image 1 computed and written, image 2 failed
    assert sorted(p.name for p in (maps_dir / "m").glob("*.npz")) == [Path(first.maps[dataset.images[0].id]).name]


def test_zero_or_non_finite_normalisation_is_refused(tmp_path, tiny_checkpoints):
    """image_std 0 would divide every input by zero (NaN maps): refused naming the file and the key."""
    for key, value in (("image_std", [0.2, 0.0, 0.2]), ("image_mean", [0.5, float("nan"), 0.5])):
        folder = _copy_checkpoint(tiny_checkpoints["dinov2"], tmp_path / key)
        config = {"image_processor_type": "BitImageProcessor", "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
                  "size": {"shortest_edge": 32}, key: value}
        (folder / "preprocessor_config.json").write_text(json.dumps(config))
        for weights in ("pretrained", "random"):
            with pytest.raises(ModelLoadError) as err:
                load_model(ModelRequest("x", str(folder)), weights=weights)
            message = str(err.value)
            assert str(folder / "preprocessor_config.json") in message and key in message, message
            assert "\n" not in message


def test_timm_zero_std_is_refused_naming_its_config(tmp_path, tiny_checkpoints):
    """The same rule for a timm folder: its config.json's pretrained_cfg std."""
    import shutil

    folder = tmp_path / "timm"
    shutil.copytree(tiny_checkpoints["timm_vit"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"]["std"] = [0.2, 0.0, 0.2]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelRequest("x", str(folder)), weights="pretrained")
    assert str(err.value) == (f"{folder / 'config.json'} (pretrained_cfg): std must be > 0 "
                              "(inputs are divided by it), got [0.2, 0.0, 0.2]")
