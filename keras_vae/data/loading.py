"""The public entry points, `load`, `load_numpy` and `info`, and the checks of their arguments.

Each one finds its data through `keras_vae.data.lookup.locate` (one lookup order for all three)
and reads it through `arrays`, `idx` or `tfds`; `load` then builds a `pipelines` pipeline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_vae.data import arrays, idx, lookup, tfds
from keras_vae.data.arrays import ArrayInput, Arrays
from keras_vae.data.dataset_info import DatasetInfo
from keras_vae.data.pipelines import NumpyIterable, array_pipeline, tfds_pipeline
from keras_vae.data.splits import parse_split
from keras_vae.data.tfds import TfdsSource

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)

_BINARIZE_MODES = (None, "static", "dynamic")


def load(
    name: str | ArrayInput = "fashion_mnist",
    split: str = "train",
    batch_size: int = 128,
    *,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    binarize: str | None = None,
    with_labels: bool = False,
    shuffle: bool | None = None,
    shuffle_buffer: int | None = None,
    cache: bool | str = True,
    drop_remainder: bool = False,
    seed: int | None = None,
    flatten: bool = False,
    as_numpy: bool = False,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset | NumpyIterable:
    """Returns a batched, prefetched `tf.data.Dataset` of images in `[0, 1]`, ready for `fit`.

    The dataset yields `x` (float32, `(batch, H, W, C)`, or `(batch, H * W * C)` with
    `flatten=True`); the autoencoders use `x` as their own target. With `with_labels=True` it
    yields `(x, label)` with int32 labels, e.g. for a conditional VAE. The pipeline decodes,
    caches, shuffles, batches, scales, binarises and prefetches, in that order, so the random
    steps are redone every epoch and the decoding only once. In-memory sources (arrays, IDX
    files) skip the cache: they are already in memory.

    Args:
        name: a TFDS image dataset name (`"mnist"`, `"fashion_mnist"`, `"binarized_mnist"`,
            `"cifar10"`, ...), a NumPy array of images `(N, H, W[, C])` or `(N, D)`, or a pair
            `(x, y)` of images and integer labels. uint8 images are divided by 255; float
            images must already lie in `[0, 1]`. `keras_vae.data.lookup` says where names
            are looked up.
        split: split name with optional TFDS-style slice: `"train"`, `"test"`,
            `"train[:90%]"`, `"train[90%:]"`, `"train[:1000]"`, `"train+test"`. For arrays only
            the slice is used.
        batch_size: positive number of examples per batch.
        data_dir: TFDS data directory; `None` uses TFDS' default (`~/tensorflow_datasets`).
        idx_dir: a directory of MNIST-format IDX files, tried first.
        download: whether TFDS may download and prepare the dataset when neither TFDS nor a
            local IDX directory has it.
        binarize: `None` keeps grey levels; `"static"` sets pixels above 0.5 to 1 and the
            others to 0, once; `"dynamic"` draws every pixel from `Bernoulli(x)` afresh each
            epoch (seeded by `seed`), the usual trick for a Bernoulli likelihood.
        with_labels: yield `(x, label)` instead of `x`.
        shuffle: shuffle every epoch; defaults to `True` for splits starting with `"train"`.
        shuffle_buffer: TFDS path only: shuffle buffer size; defaults to the whole split
            (at most 100,000 examples).
        cache: cache the decoded images in memory (`True`) or in this file (a path).
        drop_remainder: drop the last, smaller batch.
        seed: seed of the shuffle and of the dynamic binarisation; the same seed gives the same
            epochs, in the same order.
        flatten: yield flat vectors `(batch, H * W * C)`, e.g. for MLP encoders.
        as_numpy: return a re-iterable of NumPy batches instead of the `tf.data.Dataset`.
        epoch: `None`, or a scalar integer `tf.Variable` that holds the epoch about to be
            iterated, such as `keras_vae.callbacks.DataEpoch().variable` (which `fit` keeps
            up to date). With it, a pass's shuffle order and dynamic binarisation are drawn
            from `(seed, epoch)` alone, not from how many passes this process has made, so a
            run resumed at epoch `e` in a fresh process sees the data an uninterrupted run
            saw in epoch `e`. Needs a `seed`; a TFDS split is then read into memory (as
            `load_numpy` does) and `cache` is not used.

    Returns:
        A `tf.data.Dataset` (or, with `as_numpy=True`, an iterable of NumPy batches).

    Raises:
        DatasetNotFoundError: the dataset is nowhere to be found (the message says where it
            looked and how to get it).
        ValueError: a bad `batch_size`, `binarize` or `split`, labels asked of a dataset
            without labels, or float images outside `[0, 1]`.

    Example:

    >>> from keras_vae import data
    >>> train = data.load("fashion_mnist", "train[:90%]", 128, binarize="dynamic", seed=0)
    >>> train.element_spec
    TensorSpec(shape=(None, 28, 28, 1), dtype=tf.float32, name=None)
    >>> x = np.random.default_rng(0).integers(0, 256, (100, 28, 28), dtype=np.uint8)
    >>> batch = next(iter(data.load((x, np.arange(100) % 10), batch_size=32, with_labels=True)))
    >>> [tuple(t.shape) for t in batch]
    [(32, 28, 28, 1), (32,)]

    Epochs drawn from `(seed, epoch)`, as a resumed run needs them:

    >>> from keras_vae.callbacks import DataEpoch
    >>> data_epoch = DataEpoch()  # in fit's callbacks, it holds the current epoch
    >>> ds = data.load(x, batch_size=100, seed=0, epoch=data_epoch.variable)
    >>> _ = data_epoch.variable.assign(2)
    >>> epoch_2 = next(iter(ds))
    >>> _ = [next(iter(ds)) for _ in range(3)]  # more passes, still epoch 2: the same order
    >>> np.array_equal(epoch_2, next(iter(ds)))
    True
    """
    batch_size = _check_batch_size(batch_size)
    mode = _check_binarize(binarize)
    _check_epoch(epoch, seed)
    if shuffle_buffer is not None and (
        isinstance(shuffle_buffer, bool)
        or not isinstance(shuffle_buffer, (int, np.integer))
        or shuffle_buffer <= 0
    ):
        raise ValueError(
            f"`shuffle_buffer` must be a positive integer. Received: {shuffle_buffer!r}"
        )
    source = _find_source(name, split, data_dir=data_dir, idx_dir=idx_dir, download=download)
    if shuffle is None:
        shuffle = split.strip().startswith("train")
    has_labels = source.labels is not None if isinstance(source, Arrays) else source.label_key
    if with_labels and not has_labels:
        raise ValueError(f"`with_labels=True`, but dataset {_describe(name)} has no labels.")
    if epoch is not None and isinstance(source, TfdsSource):
        source = tfds.read_arrays(source)  # the order of an epoch is a permutation: random access
    if isinstance(source, Arrays):
        if len(source.images) == 0:
            raise ValueError(f"Split {split!r} of {_describe(name)} selects no examples.")
        ds = array_pipeline(
            source,
            batch_size=batch_size,
            mode=mode,
            with_labels=with_labels,
            shuffle=shuffle,
            drop_remainder=drop_remainder,
            seed=seed,
            flatten=flatten,
            epoch=epoch,
        )
    else:
        ds = tfds_pipeline(
            source,
            batch_size=batch_size,
            mode=mode,
            with_labels=with_labels,
            shuffle=shuffle,
            shuffle_buffer=shuffle_buffer,
            cache=cache,
            drop_remainder=drop_remainder,
            seed=seed,
            flatten=flatten,
        )
    return NumpyIterable(ds) if as_numpy else ds


def load_numpy(
    name: str | ArrayInput = "fashion_mnist",
    split: str = "train",
    *,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = True,
    binarize: str | None = None,
    flatten: bool = False,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns a whole split as NumPy arrays: float32 images in `[0, 1]` and int32 labels.

    Same lookup order and arguments as `load()`; handy for benchmarks, evaluation and plots.

    Args:
        name: a dataset name, an image array or an `(x, y)` pair, as in `load()`.
        split: split name with optional slice, as in `load()`.
        data_dir: TFDS data directory.
        idx_dir: a directory of MNIST-format IDX files, tried first.
        download: whether TFDS may download the dataset when nothing local has it.
        binarize: `None`, `"static"` (threshold 0.5) or `"dynamic"` (one Bernoulli draw,
            seeded by `seed`).
        flatten: return images of shape `(N, H * W * C)`.
        seed: seed of the dynamic binarisation.

    Returns:
        `(x, y)`: `x` float32 of shape `(N, H, W, C)` (or `(N, D)`), `y` int32 of shape `(N,)`,
        or `None` when the dataset has no labels (e.g. `binarized_mnist`).

    Example:

    >>> x_test, y_test = load_numpy("fashion_mnist", "test")
    >>> x_test.shape, x_test.dtype, y_test.dtype
    ((10000, 28, 28, 1), dtype('float32'), dtype('int32'))
    """
    mode = _check_binarize(binarize)
    source = _find_source(name, split, data_dir=data_dir, idx_dir=idx_dir, download=download)
    if isinstance(source, TfdsSource):
        source = tfds.read_arrays(source)
    images = source.images.astype(np.float32)
    if source.scale != 1.0:
        images *= np.float32(source.scale)
    if mode == "static":
        images = (images > 0.5).astype(np.float32)
    elif mode == "dynamic":
        noise = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
        images = (noise < images).astype(np.float32)
    if flatten:
        images = images.reshape(len(images), -1)
    return images, source.labels


def info(
    name: str | ArrayInput = "fashion_mnist",
    *,
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
) -> DatasetInfo:
    """Tells a dataset's image shape, classes and split sizes, without reading the images.

    Never downloads. Finds the dataset where `load()` would (the order of
    `keras_vae.data.lookup`); a TFDS dataset that is not prepared and has no IDX files still
    gets its shapes and classes from the TFDS code, with empty `num_examples`.

    Args:
        name: a dataset name, an image array or an `(x, y)` pair.
        data_dir: TFDS data directory.
        idx_dir: a directory of MNIST-format IDX files, tried first.

    Returns:
        A `DatasetInfo`.

    Example:

    >>> described = info("fashion_mnist")
    >>> described.image_shape, described.num_classes, described.class_names[:3]
    ((28, 28, 1), 10, ('T-shirt/top', 'Trouser', 'Pullover'))
    """
    if not isinstance(name, str):
        return arrays.describe(name)
    found = lookup.locate(name, None, data_dir=data_dir, idx_dir=idx_dir)
    if isinstance(found, Path):
        return idx.describe(name, found)
    return tfds.describe(found, name)


# --------------------------------------------------------------------------------------------
# Finding the data and checking the arguments.


def _find_source(
    name: Any,
    split: str,
    *,
    data_dir: str | os.PathLike | None,
    idx_dir: str | os.PathLike | None,
    download: bool,
) -> Arrays | TfdsSource:
    """The split of `name` as in-memory arrays (arrays, IDX files) or a TFDS split."""
    parts = parse_split(split)
    if not isinstance(name, str):
        return arrays.from_input(name, parts)
    found = lookup.locate(
        name, parts, split=split, data_dir=data_dir, idx_dir=idx_dir, download=download
    )
    if isinstance(found, Path):
        logger.info("Reading %r from IDX files in %s", name, found)
        return idx.read_arrays(found, parts)
    return tfds.source(found, name, split)


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    return int(batch_size)


def _check_binarize(binarize: Any) -> str | None:
    if binarize is False:
        return None
    if binarize not in _BINARIZE_MODES or isinstance(binarize, bool):
        raise ValueError(
            f"`binarize` must be one of {_BINARIZE_MODES} (or False). Received: {binarize!r}"
        )
    return binarize


def _check_epoch(epoch: Any, seed: int | None) -> None:
    if epoch is None:
        return
    import tensorflow as tf

    if not isinstance(epoch, tf.Variable) or not epoch.dtype.is_integer or epoch.shape.rank != 0:
        raise ValueError(
            "`epoch` must be a scalar integer `tf.Variable`, such as "
            f"`keras_vae.callbacks.DataEpoch().variable`. Received: {epoch!r}"
        )
    if seed is None:
        raise ValueError("`epoch` needs a `seed`: the order of epoch e is drawn from (seed, e).")


def _describe(name: Any) -> str:
    return repr(name) if isinstance(name, str) else "(array input)"
