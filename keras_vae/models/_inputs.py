"""Checked input at the boundary of ``fit``, ``evaluate`` and ``predict``.

What a model expects comes from the model itself (`BaseAutoencoder.check_batch`: the data shape
of its encoder, whether its likelihood needs values in [0, 1], what ``y`` means); this module
applies those checks to every form of data Keras takes:

* numpy arrays and tensors: checked whole, before training starts (two reductions over ``x``:
  ``min`` and ``max`` find NaN, inf and the range at once);
* ``tf.data.Dataset``: the element spec is checked before training starts, and every batch on
  the host as it is drawn (a ``tf.numpy_function`` in a parallel ``map``), so a bad batch
  raises before its step and is never trained on. This runs on every Keras backend: tf.data
  executes in TensorFlow whichever backend trains, and compiled code (XLA, JAX) never sees
  the bad batch;
* Python generators and `keras.utils.PyDataset`: every batch, as it is drawn.

A bad value raises `InvalidInputError` (a ``ValueError``) that names the argument, what was
expected and what was received. Errors raised inside tf.data reach Keras as TensorFlow
``InvalidArgumentError``s; `raising_input_errors` re-raises the original error instead.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np


class InvalidInputError(ValueError):
    """Data handed to a keras_vae model that it cannot train or evaluate on."""


# ------------------------------------------------------------------ single arrays
def as_numpy(value: Any, name: str) -> np.ndarray:
    """``value`` as a numpy array (numpy, lists, TF/JAX/torch tensors), without a copy where
    the framework allows one."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (dict, str, bytes)) or value is None:
        raise InvalidInputError(
            f"`{name}` must be an array; received {type(value).__name__}: {_short(value)}"
        )
    if is_batched_source(value):
        raise InvalidInputError(
            f"`{name}` must be an array of whole examples; received a "
            f"{type(value).__name__}, which this method does not draw batches from (fit, "
            "evaluate and predict do). Collect it first, e.g. "
            "np.concatenate([batch for batch in dataset.as_numpy_iterator()])."
        )
    if isinstance(value, (list, tuple)) and value and _is_array_like(value[0]):
        raise InvalidInputError(
            f"`{name}` must be one array of shape (n, ...); received a {type(value).__name__} "
            f"of {len(value)} arrays. (A CVAE takes its labels as y: fit(x, labels).)"
        )
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        return np.asarray(keras.ops.convert_to_numpy(value))


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shape_text(shape) -> str:
    return "(" + ", ".join("n" if d is None else str(d) for d in shape) + ")"


def check_spec(spec, name: str, example_shape: tuple | None, what: str) -> None:
    """A dataset's ``TensorSpec`` for ``name``: numeric, batched, of ``(n, *example_shape)``."""
    dtype = np.dtype(spec.dtype.as_numpy_dtype) if spec.dtype.is_numpy_compatible else None
    if dtype is None or dtype.kind not in "biuf":
        raise InvalidInputError(f"`{name}` must hold numbers; the data yield dtype {spec.dtype}.")
    if example_shape is None or spec.shape.rank is None:
        return
    shape = tuple(spec.shape)
    expected = (None, *example_shape)
    if len(shape) == len(example_shape) and all(
        a is None or a == b for a, b in zip(shape, example_shape)
    ):
        raise InvalidInputError(
            f"`{name}` must come in batches of shape {shape_text(expected)} ({what}); the data "
            f"yield single examples of shape {shape_text(shape)}: batch them, e.g. "
            "dataset.batch(128)."
        )
    if len(shape) != len(expected) or any(
        a is not None and a != b for a, b in zip(shape[1:], example_shape)
    ):
        raise InvalidInputError(
            f"`{name}` must have shape {shape_text(expected)} ({what}); the data yield shape "
            f"{shape_text(shape)}."
        )


def check_weight_spec(spec, name: str = "sample_weight") -> None:
    check_spec(spec, name, None, "")
    if spec.shape.rank is not None and not (
        spec.shape.rank == 1 or (spec.shape.rank == 2 and spec.shape[1] == 1)
    ):
        raise InvalidInputError(
            f"`{name}` must have shape (n,), one weight per example; the data yield shape "
            f"{shape_text(tuple(spec.shape))}."
        )


def check_numeric(array: np.ndarray, name: str) -> None:
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(f"`{name}` must hold numbers; received dtype {array.dtype}.")


def check_not_empty(array: np.ndarray, name: str) -> None:
    if array.ndim == 0:
        raise InvalidInputError(f"`{name}` must have a batch axis; received a scalar.")
    if array.shape[0] == 0:
        raise InvalidInputError(
            f"`{name}` is empty: it holds 0 examples (shape {array.shape}); pass at least one."
        )


def check_shape(array: np.ndarray, name: str, example_shape: tuple, what: str) -> None:
    """``array`` must be ``(n, *example_shape)``; the message suggests the usual fixes."""
    if array.ndim == len(example_shape) + 1 and tuple(array.shape[1:]) == tuple(example_shape):
        return
    expected = shape_text((None, *example_shape))
    hint = ""
    if tuple(array.shape[1:]) + (1,) == tuple(example_shape):
        hint = f" Add the channel axis: {name}[..., None]."
    elif tuple(array.shape[1:]) == tuple(example_shape) + (1,):
        hint = f" Drop the trailing axis: {name}[..., 0]."
    elif array.ndim == len(example_shape) and tuple(array.shape) == tuple(example_shape):
        hint = f" This looks like one example: pass {name}[None] for a batch of one."
    raise InvalidInputError(
        f"`{name}` must have shape {expected} ({what}); received shape {array.shape}.{hint}"
    )


def check_finite_range(
    array: np.ndarray, name: str, unit_interval: bool = False, what: str = ""
) -> tuple:
    """No NaN or inf; values in [0, 1] where ``unit_interval`` (the Bernoulli likelihood).

    Returns ``(min, max)``, which the check computed anyway.
    """
    low, high = array.min(), array.max()  # both propagate NaN; inf shows as a bound
    if array.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        bad = ~np.isfinite(array)
        first = np.unravel_index(int(np.argmax(bad)), array.shape)
        raise InvalidInputError(
            f"`{name}` must hold finite numbers; received {int(bad.sum())} NaN or inf "
            f"value(s), the first at index {tuple(int(i) for i in first)} "
            f"({array[first].item()!r})."
        )
    if unit_interval and (low < 0 or high > 1):
        hint = " Scale it to [0, 1] first"
        if array.dtype == np.uint8 or (high <= 255 and low >= 0):
            hint += f" (8-bit images: {name} / 255, or binarise them)"
        raise InvalidInputError(
            f"`{name}` must hold values in [0, 1] for {what or 'the Bernoulli likelihood'}; "
            f"received values from {low} to {high} (dtype {array.dtype}).{hint}. "
            "Or pick reconstruction_loss='gaussian' or 'mse' for unbounded data."
        )
    return low, high


def check_binary(array: np.ndarray, name: str, method: str) -> None:
    """Values exactly 0 or 1: the Bernoulli likelihood is a probability only of binary data."""
    grey = (array != 0) & (array != 1)
    if grey.any():
        first = np.unravel_index(int(np.argmax(grey)), array.shape)
        raise InvalidInputError(
            f"`{name}` must be binary (0 or 1) for {method}() under the Bernoulli likelihood; "
            f"received {int(grey.sum())} other value(s), the first {array[first].item()!r} at "
            f"index {tuple(int(i) for i in first)}. A Bernoulli cross-entropy on grey levels "
            "is not a log-probability: binarise the data (e.g. keras_vae.data.load_numpy(..., "
            "binarize='dynamic', seed=0) draws each pixel once)."
        )


def check_class_indices(labels: np.ndarray, name: str, num_classes: int | None) -> np.ndarray:
    """1-D numeric ``labels`` as int32 class indices: finite whole numbers (floats only when
    they hold whole numbers) in ``[0, num_classes)``, or ``>= 0`` where ``num_classes`` is
    `None`. Raises `InvalidInputError` naming ``name``; nothing is truncated or wrapped."""
    if labels.size:
        low, high = check_finite_range(labels, name)
        if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
            bad = int(np.argmax(np.mod(labels, 1) != 0))
            raise InvalidInputError(
                f"`{name}` must be whole class indices; received {labels[bad].item()!r} at "
                f"index {bad} (dtype {labels.dtype})."
            )
        if num_classes is None and low < 0:
            raise InvalidInputError(
                f"`{name}` must be class indices >= 0; received values from {low} to {high}."
            )
        if num_classes is not None and (low < 0 or high >= num_classes):
            raise InvalidInputError(
                f"`{name}` must lie in [0, {num_classes}) (num_classes={num_classes}); "
                f"received values from {low} to {high}."
            )
    return labels.astype("int32")


def check_sample_weight(value: Any, count: int, name: str = "sample_weight") -> np.ndarray:
    array = as_numpy(value, name)
    check_numeric(array, name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(
            f"`{name}` must have shape (n,), one weight per example; received {array.shape}."
        )
    check_count(array, name, count)
    if len(array):
        low, _ = check_finite_range(array, name)
        if low < 0:
            raise InvalidInputError(f"`{name}` must be >= 0; received a minimum of {low}.")
    return array


def check_count(array: np.ndarray, name: str, count: int, of: str = "x") -> None:
    if len(array) != count:
        raise InvalidInputError(
            f"`{name}` must have one entry per example of `{of}` ({count}); received {len(array)}."
        )


# ------------------------------------------------------------------ batches of data
def batch_parts(batch: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` of a batch: bare ``x`` or a tuple of 1 to 3 parts."""
    if isinstance(batch, tuple):
        if not 1 <= len(batch) <= 3:
            raise InvalidInputError(
                f"a batch must be x, (x,), (x, y) or (x, y, sample_weight); received a tuple of "
                f"{len(batch)} parts."
            )
        return tuple(batch) + (None,) * (3 - len(batch))
    if isinstance(batch, list) and len(batch) in (2, 3) and all(map(_is_array_like, batch)):
        return tuple(batch) + (None,) * (3 - len(batch))
    return batch, None, None


class BatchChecker:
    """``check(batch)``, remembering the error of the earliest bad batch it saw.

    tf.data runs the check in its own threads and hands Keras a TensorFlow error; the first
    batch (in data order) whose check failed is kept here so that its original error can be
    raised (`raising_input_errors`).
    """

    def __init__(self, check: Callable[[Any, Any, Any], None], source: str):
        self.check = check
        self.source = source
        self._lock = threading.Lock()
        self.errors: dict[int, InvalidInputError] = {}

    def __call__(self, batch: Any, index: int) -> None:
        try:
            self.check(*batch_parts(batch))
        except InvalidInputError as error:
            error = InvalidInputError(f"batch {index} of {self.source}: {error}")
            with self._lock:
                self.errors.setdefault(index, error)
            raise error from None

    def first_error(self) -> InvalidInputError | None:
        with self._lock:
            return self.errors[min(self.errors)] if self.errors else None


def checked_generator(generator: Iterator, checker: BatchChecker) -> Iterator:
    """Yields the batches of ``generator`` as tuples, each checked first."""
    try:
        first = next(generator)
    except StopIteration:
        raise InvalidInputError(f"{checker.source} yielded no batches.") from None

    def batches():
        for index, batch in enumerate(itertools.chain([first], generator)):
            checker(batch, index)
            yield batch if isinstance(batch, tuple) else (batch,)

    return batches()


class _CheckedPyDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` whose batches are checked as they are drawn."""

    def __init__(self, inner: keras.utils.PyDataset, checker: BatchChecker):
        super().__init__(
            workers=inner.workers,
            use_multiprocessing=inner.use_multiprocessing,
            max_queue_size=inner.max_queue_size,
        )
        self.inner = inner
        self.checker = checker

    def __getitem__(self, index):
        batch = self.inner[index]
        self.checker(batch, index)
        return batch

    def __len__(self):
        return len(self.inner)

    @property
    def num_batches(self):
        return self.inner.num_batches

    def on_epoch_begin(self):
        self.inner.on_epoch_begin()

    def on_epoch_end(self):
        self.inner.on_epoch_end()


def _is_tf_dataset(value: Any) -> bool:
    tf = _tensorflow_if_loaded()
    return tf is not None and isinstance(value, tf.data.Dataset)


def _tensorflow_if_loaded():
    # A tf.data.Dataset exists only where TensorFlow is imported already: never import it here.
    return sys.modules.get("tensorflow")


def _check_dataset_spec(dataset, check_spec: Callable[[Any, Any, Any], None], source: str):
    tf = _tensorflow_if_loaded()
    spec = dataset.element_spec
    if isinstance(spec, dict) or (
        isinstance(spec, tuple) and any(isinstance(part, dict) for part in spec)
    ):
        raise InvalidInputError(
            f"{source} must yield x, (x,), (x, y) or (x, y, sample_weight) tensors; its elements "
            f"are dicts: {spec}."
        )
    if dataset.cardinality() == 0:
        raise InvalidInputError(f"{source} is empty: it yields no batches.")
    parts = batch_parts(spec)
    for part in parts:
        if part is not None and not isinstance(part, tf.TensorSpec):
            raise InvalidInputError(
                f"{source} must yield dense tensors; received an element spec of {spec}."
            )
    check_spec(*parts)


def checked_dataset(dataset, checker: BatchChecker, check_spec: Callable):
    """``dataset`` with every batch checked on the host before Keras receives it."""
    tf = _tensorflow_if_loaded()
    _check_dataset_spec(dataset, check_spec, checker.source)
    spec = dataset.element_spec
    single = not isinstance(spec, tuple)

    def check(index, *tensors):
        checker(tuple(tensors) if not single else tensors[0], int(index))
        return np.bool_(True)

    def checked(index, element):
        tensors = element if isinstance(element, tuple) else (element,)
        ok = tf.numpy_function(check, [index, *tensors], tf.bool, name="keras_vae_check_batch")
        with tf.control_dependencies([ok]):
            tensors = tuple(tf.identity(t) for t in tensors)
        return tensors[0] if single else tensors

    indexed = tf.data.Dataset.zip((tf.data.Dataset.counter(), dataset))
    return indexed.map(checked, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def checked_data(
    data: Any, checker: BatchChecker, check_spec: Callable, map_datasets: bool = True
) -> Any:
    """Wraps a dataset, generator or PyDataset so each batch is checked; other data as it is.

    ``map_datasets=False`` checks a dataset's element spec alone (where a ``map`` would hide
    the batch size that a multi-process distribution shards it by).
    """
    if _is_tf_dataset(data):
        if not map_datasets:
            _check_dataset_spec(data, check_spec, checker.source)
            return data
        return checked_dataset(data, checker, check_spec)
    if isinstance(data, types.GeneratorType):
        return checked_generator(data, checker)
    if isinstance(data, keras.utils.PyDataset):
        return _CheckedPyDataset(data, checker)
    return data


def is_batched_source(data: Any) -> bool:
    """Whether ``data`` comes in batches that `checked_data` can wrap."""
    return _is_tf_dataset(data) or isinstance(data, (types.GeneratorType, keras.utils.PyDataset))


@contextlib.contextmanager
def raising_input_errors(*checkers: BatchChecker | None):
    """Re-raises a checker's own error where TensorFlow wrapped it in one of its own."""
    try:
        yield
    except InvalidInputError:
        raise
    except Exception:
        for checker in checkers:
            error = checker.first_error() if checker is not None else None
            if error is not None:
                raise error from None
        raise
