"""In-memory images: NumPy input checked and the `Arrays` every local source reads into.

NumPy input, IDX files and a TFDS split read whole (`load(..., epoch=...)`, `load_numpy`) all
end as `Arrays`: the images as stored (`uint8`, or float32 already in `[0, 1]`) and the factor
that scales them to `[0, 1]`, applied per batch so a cached copy stays 4x smaller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_vae.data.dataset_info import DatasetInfo
from keras_vae.data.splits import SplitPart, parse_split

ArrayInput = np.ndarray | tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass
class Arrays:
    """Images as stored (`uint8`, or float32 already in [0, 1]) and the factor to [0, 1]."""

    images: np.ndarray
    labels: np.ndarray | None
    scale: float
    source: str


def as_images(images: Any) -> tuple[np.ndarray, float]:
    """Validates in-memory images; returns them as stored plus the factor to [0, 1]."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(
            "Images must be an array of shape (N, H, W), (N, H, W, C) or (N, D). "
            f"Received shape: {images.shape}"
        )
    if images.ndim == 3:  # (N, H, W) -> (N, H, W, 1), a view
        images = images[..., np.newaxis]
    if images.dtype == np.bool_:
        return images.astype(np.uint8), 1.0
    if np.issubdtype(images.dtype, np.integer):
        if images.dtype != np.uint8:
            if images.size and (images.min() < 0 or images.max() > 255):
                raise ValueError(
                    "Integer images must lie in the range [0, 255]. Received values in "
                    f"[{images.min()}, {images.max()}]."
                )
            images = images.astype(np.uint8)
        return images, 1.0 / 255.0
    if np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32, copy=False)
        if images.size:
            low, high = float(np.min(images)), float(np.max(images))
            if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
                raise ValueError(
                    "Float images must lie in the range [0, 1] (divide uint8 pixels by 255). "
                    f"Received values in the range [{low}, {high}]."
                )
        return images, 1.0
    raise ValueError(f"Images must be integer, bool or float. Received dtype: {images.dtype}")


def as_labels(labels: Any, num_examples: int) -> np.ndarray:
    """Validates integer class ids, one per image; returns them as int32."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != num_examples:
        raise ValueError(
            f"Labels must be integer class ids of shape ({num_examples},). "
            f"Received shape: {labels.shape}"
        )
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            raise ValueError(f"Labels must be integer class ids. Received dtype: {labels.dtype}")
    return labels.astype(np.int32)


def from_input(value: Any, parts: Sequence[SplitPart]) -> Arrays:
    """`x` or `(x, y)` as `Arrays`, sliced by the one part of the split."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                "Array input must be `x` or a pair `(x, y)`. "
                f"Received a {type(value).__name__} of length {len(value)}."
            )
        images, scale = as_images(value[0])
        labels = None if value[1] is None else as_labels(value[1], len(images))
    else:
        images, scale = as_images(value)
        labels = None
    if len(parts) != 1:
        raise ValueError("Array input accepts one split slice, e.g. 'train[:90%]', not a sum.")
    selection = parts[0].indices(len(images))
    labels = None if labels is None else labels[selection]
    return Arrays(images[selection], labels, scale, "array")


def describe(value: Any) -> DatasetInfo:
    """`info()` of NumPy input: its shape and the classes its labels use, as split `"train"`."""
    arrays = from_input(value, parse_split("train"))
    labels = arrays.labels
    num_classes = None if labels is None or not labels.size else int(labels.max()) + 1
    shape = tuple(arrays.images.shape[1:])
    return DatasetInfo("array", shape, num_classes, {"train": len(arrays.images)}, "array")
