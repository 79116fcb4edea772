"""TensorFlow Datasets: a builder found by name, its image and label features, its splits.

`tensorflow_datasets` is imported only here and only when a name is looked up, so array and
IDX input never pay for it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_vae.data.arrays import Arrays
from keras_vae.data.dataset_info import DatasetInfo

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)

# TFDS datasets whose uint8 images already hold 0/1 rather than 0..255.
BINARY_DATASETS = frozenset({"binarized_mnist"})


@dataclasses.dataclass
class TfdsSource:
    """One split of a TFDS dataset and the features `load()` reads from it."""

    builder: Any
    name: str
    split: str
    image_key: str
    label_key: str | None
    scale: float
    binary: bool
    image_shape: tuple[int, ...]

    def as_dataset(self, **kwargs) -> tf.data.Dataset:
        try:
            return self.builder.as_dataset(split=self.split, shuffle_files=False, **kwargs)
        except (ValueError, KeyError, NotImplementedError) as error:
            raise ValueError(
                f"Unknown or invalid split {self.split!r} for TFDS dataset {self.name!r}: {error}"
            ) from error


def find_builder(name: str, data_dir: str | os.PathLike | None) -> tuple[Any, str]:
    """TFDS' builder for `name` in `data_dir`: `(builder, "")`, or `(None, why there is none)`."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:  # pragma: no cover - tensorflow-datasets is a dependency
        return None, f"tensorflow_datasets cannot be imported ({error})"
    try:
        return tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir)), ""
    except Exception as error:  # unknown name, bad config or version, ...
        return None, f"no dataset builder for {name!r} ({one_line(error)})"


def is_prepared(builder: Any) -> bool:
    """Whether the dataset's files are in the builder's data directory (nothing downloads)."""
    # Checking the folder first spares TFDS' warning about a missing dataset_info.json.
    try:
        if not builder.data_path.exists():  # an etils path: local or cloud storage
            return False
    except Exception:  # a builder without a local path: let TFDS decide
        pass
    return builder.is_prepared()


def download(builder: Any) -> str | None:
    """Runs TFDS' `download_and_prepare()`; returns `None`, or the error in one line."""
    try:
        builder.download_and_prepare()
    except Exception as error:  # offline, missing optional dependency, ...
        logger.warning("TFDS could not download %r: %s", builder.name, one_line(error))
        return one_line(error)
    return None


def one_line(error: BaseException, limit: int = 200) -> str:
    """`"TypeName: first line of the message"`, at most `limit` characters of message."""
    text = str(error).strip().splitlines()
    text = text[0] if text else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def source(builder: Any, name: str, split: str) -> TfdsSource:
    """The image feature (`"image"`, else the first), label feature and scale of `split`."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    image_key = "image" if "image" in features else None
    if image_key is None or not isinstance(features[image_key], tfds.features.Image):
        image_keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
        if not image_keys:
            raise ValueError(f"TFDS dataset {name!r} has no image feature: {features}")
        image_key = image_keys[0]
    image = features[image_key]
    shape = tuple(image.shape)
    if any(dim is None for dim in shape):
        raise ValueError(
            f"TFDS dataset {name!r} has images of variable size {shape}; "
            "keras_vae.data needs fixed-size images."
        )
    label_keys = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    label_key = "label" if "label" in label_keys else (label_keys[0] if label_keys else None)
    dtype = np.dtype(image.np_dtype)
    binary = builder.name in BINARY_DATASETS
    if binary or not np.issubdtype(dtype, np.integer):
        scale = 1.0
    else:
        scale = 1.0 / float(np.iinfo(dtype).max)
    return TfdsSource(builder, name, split, image_key, label_key, scale, binary, shape)


def read_arrays(source: TfdsSource) -> Arrays:
    """Reads a whole TFDS split into memory, in batches of decoded images."""
    keys = [source.image_key] + ([source.label_key] if source.label_key else [])
    ds = source.as_dataset().map(lambda example: tuple(example[key] for key in keys))
    batches = list(ds.batch(4096).as_numpy_iterator())
    if not batches:
        raise ValueError(f"Split {source.split!r} of {source.name!r} holds no examples.")
    images = np.concatenate([batch[0] for batch in batches])
    if source.binary:
        images = (images > 0).astype(np.uint8)
    labels = None
    if source.label_key:
        labels = np.concatenate([batch[1] for batch in batches]).astype(np.int32)
    return Arrays(images, labels, source.scale, "tfds")


def describe(builder: Any, name: str) -> DatasetInfo:
    """`info()` of a TFDS dataset, from its code and, once prepared, its `dataset_info.json`."""
    features = source(builder, name, "train")
    label = builder.info.features[features.label_key] if features.label_key else None
    splits = {key: int(value.num_examples) for key, value in builder.info.splits.items()}
    return DatasetInfo(
        name,
        features.image_shape,
        None if label is None else label.num_classes,
        splits,
        "tfds",
        None if label is None else tuple(str(class_name) for class_name in label.names),
    )
