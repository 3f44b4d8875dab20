"""The models stage is pipelined: a batch's npz files are written by a thread pool while the next batch
runs through the model, and they hold the same maps as a batch computed and written on its own."""

from __future__ import annotations

import json
import threading

import numpy as np
import torch

import atlas.compute as compute
from atlas.dataset import load_dataset
from ssl_attention.images import load_image
from ssl_attention.maps import compute_maps
from ssl_attention.models import ModelRequest, load_model
from ssl_attention.preprocess import to_tensor
from tests.test_bad_input import _images


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

    write, writers = compute.write_maps, []

    def write_once_the_next_batch_runs(path, arrays, meta):
        writers.append(threading.current_thread().name)
        if meta["image"] == dataset.images[0].id:  # sequential writing would wait here forever
            assert second_batch.wait(120), "batch 1 was not written while batch 2 computed"
        write(path, arrays, meta)

    model.run = counting_run
    monkeypatch.setattr(compute, "write_maps", write_once_the_next_batch_runs)
    result = compute.compute_model_maps(model, dataset.images, maps_dir, methods=model.methods, batch_size=1,
                                        device=torch.device("cpu"))
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
