"""tf.data pipelines: in-memory arrays or a TFDS split to batches of images in `[0, 1]`.

Both pipelines cache or hold the images as stored (uint8 where possible), shuffle, batch, and
then per batch scale to float32, flatten and draw the dynamic binarisation, so the random steps
are redone every epoch and the decoding only once. With an epoch variable, the array pipeline
draws each pass from `(seed, epoch)` alone, as a resumed run needs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_vae.data.arrays import Arrays
from keras_vae.data.tfds import TfdsSource

if TYPE_CHECKING:
    import tensorflow as tf


def _tf():
    import tensorflow as tf

    return tf


def _batch_transform(
    *, scale: float, flatten: bool, dynamic: bool, with_labels: bool, image_shape: Sequence[int]
):
    """The per-batch map: uint8/float -> float32 in [0, 1], flatten, dynamic binarisation."""
    tf = _tf()
    flat_size = math.prod(image_shape)

    def transform(images, labels=None, rng=None):
        x = tf.cast(images, tf.float32)
        if scale != 1.0:
            x = x * scale
        if flatten:
            x = tf.reshape(x, (-1, flat_size))
        if dynamic:
            # A fresh, seeded Bernoulli draw per batch; `rng` changes every epoch.
            noise = tf.random.stateless_uniform(tf.shape(x), seed=rng, dtype=tf.float32)
            x = tf.cast(noise < x, tf.float32)
        if with_labels:
            return x, tf.cast(labels, tf.int32)
        return x

    return transform


def _with_rng(ds: tf.data.Dataset, seed: int | None) -> tf.data.Dataset:
    """Pairs every batch with a stateless seed, new each epoch, reproducible given `seed`."""
    tf = _tf()
    rng = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((ds, rng))


def _epoch_batches(
    epoch: tf.Variable,
    seed: int,
    num_examples: int,
    *,
    batch_size: int,
    drop_remainder: bool,
    shuffle: bool,
    dynamic: bool,
) -> tf.data.Dataset:
    """Batches of example indices (and per-batch seeds) drawn from ``(seed, epoch value)`` only.

    The variable is read when a pass begins, so the pass's order depends on the epoch it holds
    and not on how many passes this process has made (tf.data's own reshuffling counts those).
    """
    tf = _tf()
    fold_in = tf.random.experimental.stateless_fold_in
    base = tf.constant([seed % 2**63, 0], tf.int64)
    if drop_remainder:
        num_batches = num_examples // batch_size
    else:
        num_batches = math.ceil(num_examples / batch_size)

    def one_epoch(key):
        order = tf.range(num_examples, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=fold_in(key, 0))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder)
        if not dynamic:
            return batches
        rngs = tf.data.Dataset.range(num_batches).map(lambda index: fold_in(fold_in(key, 1), index))
        return tf.data.Dataset.zip((batches, rngs))

    keys = tf.data.Dataset.range(1).map(
        lambda _: fold_in(base, tf.cast(epoch.read_value(), tf.int64))
    )
    # flat_map hides the length; fit needs it for its progress bar and steps per epoch.
    return keys.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(num_batches))


def array_pipeline(
    arrays: Arrays,
    *,
    batch_size: int,
    mode: str | None,
    with_labels: bool,
    shuffle: bool,
    drop_remainder: bool,
    seed: int | None,
    flatten: bool,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
    """Batches of in-memory images: shuffled indices, each batch gathered at once."""
    tf = _tf()
    images, scale = arrays.images, arrays.scale
    if mode == "static":
        images, scale = (images > 0.5 / scale).astype(np.uint8), 1.0
    num_examples = len(images)
    # Shuffle and batch indices, then gather whole batches: fast and no per-example copies.
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(arrays.labels) if with_labels else None
    if epoch is not None:
        ds = _epoch_batches(
            epoch,
            seed,
            num_examples,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            shuffle=shuffle,
            dynamic=mode == "dynamic",
        )
    else:
        ds = tf.data.Dataset.range(num_examples)
        if shuffle:
            ds = ds.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if mode == "dynamic":
            ds = _with_rng(ds, seed)
    transform = _batch_transform(
        scale=scale,
        flatten=flatten,
        dynamic=mode == "dynamic",
        with_labels=with_labels,
        image_shape=arrays.images.shape[1:],
    )

    def gather(index, rng=None):
        batch_labels = tf.gather(labels, index) if with_labels else None
        return transform(tf.gather(images, index), batch_labels, rng)

    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def tfds_pipeline(
    source: TfdsSource,
    *,
    batch_size: int,
    mode: str | None,
    with_labels: bool,
    shuffle: bool,
    shuffle_buffer: int | None,
    cache: bool | str,
    drop_remainder: bool,
    seed: int | None,
    flatten: bool,
) -> tf.data.Dataset:
    """Batches of a TFDS split: decoded (and statically binarised) once, cached, shuffled."""
    tf = _tf()
    scale = source.scale
    static = mode == "static"
    image_key, label_key = source.image_key, source.label_key

    def decode(example):
        image = example[image_key]
        if source.binary:
            image = tf.cast(image > 0, tf.uint8)
        elif static:
            image = tf.cast(tf.cast(image, tf.float32) * scale > 0.5, tf.uint8)
        if with_labels:
            return image, example[label_key]
        return (image,)

    ds = source.as_dataset().map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        # Images are cached as stored (uint8: 4x smaller than float32); the scale to [0, 1]
        # is one multiply per batch below.
        ds = ds.cache("" if cache is True else os.fspath(cache))
    if shuffle:
        if shuffle_buffer is None:
            cardinality = int(ds.cardinality())
            shuffle_buffer = min(cardinality, 100_000) if cardinality > 0 else 10_000
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    transform = _batch_transform(
        scale=1.0 if (static or source.binary) else scale,
        flatten=flatten,
        dynamic=mode == "dynamic",
        with_labels=with_labels,
        image_shape=source.image_shape,
    )

    def finish(batch, rng=None):
        return transform(batch[0], batch[1] if with_labels else None, rng)

    if mode == "dynamic":
        ds = _with_rng(ds, seed).map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda *batch: finish(batch), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class NumpyIterable:
    """Re-iterable view of a dataset as NumPy batches (one pass per `iter()`)."""

    def __init__(self, dataset: tf.data.Dataset):
        self.dataset = dataset

    def __iter__(self) -> Iterator[Any]:
        return iter(self.dataset.as_numpy_iterator())

    def __len__(self) -> int:
        cardinality = int(self.dataset.cardinality())
        if cardinality < 0:
            raise TypeError("The number of batches is unknown.")
        return cardinality
