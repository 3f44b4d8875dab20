"""The models stage is pipelined: a batch's npz files are written by a thread pool while the next batch
runs through the model, and they hold the same maps as a batch computed and written on its own."""

from __future__ import annotations

import json
import threading

import numpy as np

import atlas.models.compute as compute
import atlas.models.sink as sink
from atlas.core import layout
from atlas.dataset.stage import load_dataset
from ssl_attention.images import load_image
from ssl_attention.maps import compute_maps
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import to_tensor
from tests.test_bad_input import _compute_maps, _images


def test_a_batch_is_written_while_the_next_one_computes(tmp_path, tiny_checkpoints, monkeypatch):
    dataset = load_dataset(_images(tmp_path / "images", 3), None, tmp_path / "out")
    maps_dir = tmp_path / "out" / "maps"
    model = load_model(ModelRequest("m", str(tiny_checkpoints["dinov2"])), weights="pretrained", image_size=(32, 32))
    run, calls, second_batch = model.run, [], threading.Event()

    def counting_run(pixels):
        calls.append(1)
        if len(calls) == 2:
            second_batch.set()
        return run(pixels)

    write, writers = sink.write_maps, []

    def write_once_the_next_batch_runs(path, arrays, meta):
        writers.append(threading.current_thread().name)
        if meta["image"] == dataset.images[0].id:  # sequential writing would wait here forever
            assert second_batch.wait(120), "batch 1 was not written while batch 2 computed"
        write(path, arrays, meta)

    model.run = counting_run
    monkeypatch.setattr(sink, "write_maps", write_once_the_next_batch_runs)
    result = _compute_maps(model, dataset.images, maps_dir)
    assert result.computed == 3 and list(result.maps) == [r.id for r in dataset.images]
    assert len(writers) == 3 and all(name.startswith("atlas-npz") for name in writers)
    model.run = run
    for record in dataset.images:
        expected = compute_maps(model, to_tensor([load_image(record.path)], model.preprocessing), model.methods, None)
        with np.load(maps_dir / result.maps[record.id]) as npz:
            assert json.loads(str(npz["meta"]))["image"] == record.id
            assert set(npz.files) - {"meta"} == set(expected)
            for name, values in expected.items():
                assert np.array_equal(npz[name], values[0]), name


def test_sprites_are_encoded_as_the_maps_are_written(tmp_path, tiny_checkpoints):
    """With a renderer, the writer pool encodes each pair's sprite sheets right after its npz: the render
    stage then finds every pair up to date, and the files are the bytes it would have rendered itself."""
    from atlas.site.catalog import load_catalog
    from atlas.site.render import PairRenderer, render_all

    dataset = load_dataset(_images(tmp_path / "images", 3), None, tmp_path / "out")
    maps_dir = tmp_path / "out" / "maps"
    model = load_model(ModelRequest("m", str(tiny_checkpoints["dinov2"])), weights="pretrained", image_size=(32, 32))
    published = frozenset(r.id for r in dataset.images[:2])
    render_dir = tmp_path / "out" / "render"
    result = _compute_maps(model, dataset.images, maps_dir, PairRenderer(render_dir, published))
    compute.write_manifest(maps_dir, dataset.images, [result])
    catalog = load_catalog(tmp_path / "out")
    sprites = sorted(p.relative_to(render_dir) for p in render_dir.rglob("*.png") if "maps" in p.parts)
    assert {p.parts[-2] for p in sprites} == {layout.slug(i) for i in published}  # only the published images
    stats = render_all(catalog, render_dir)
    assert (stats.cached_pairs, stats.rendered_pairs) == (2, 1)  # the unpublished one is rendered now
    fresh = tmp_path / "fresh" / "render"
    assert render_all(catalog, fresh).rendered_pairs == 3
    after = sorted(p.relative_to(render_dir) for p in render_dir.rglob("*.png") if "maps" in p.parts)
    assert after == sorted(p.relative_to(fresh) for p in fresh.rglob("*.png") if "maps" in p.parts)
    for rel in after:
        assert (render_dir / rel).read_bytes() == (fresh / rel).read_bytes(), rel
