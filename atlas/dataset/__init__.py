"""The dataset stage: images, boxes and tags in, a ``Dataset`` out (``load_dataset``)."""

from atlas.dataset.stage import Dataset, ImageRecord, load_dataset, sample_paths

__all__ = ["Dataset", "ImageRecord", "load_dataset", "sample_paths"]
