"""Dataset pipelines: TFDS image datasets, local MNIST-format IDX files and NumPy arrays.

`load()` returns a ready `tf.data.Dataset` for `Model.fit`: float32 images scaled to `[0, 1]`
with shape `(H, W, C)` (or flat vectors), optionally binarised for a Bernoulli likelihood and
optionally paired with int32 labels. `load_numpy()` returns the same images as NumPy arrays and
`info()` tells the image shape and number of classes without reading the images.

A dataset name is looked up in this order, the first hit wins:

1. the `idx_dir` argument (MNIST-format IDX files, see below);
2. TFDS, if the dataset is already prepared in `data_dir` (TFDS' default when `None`);
3. the directory named by the environment variable `KERAS_VAE_DATA_DIR`, then the system
   directories of `SYSTEM_IDX_DIRS` (Debian's package `dataset-fashion-mnist` installs
   `/usr/share/datasets/fashion-mnist`);
4. TFDS `download_and_prepare()`, only when `download=True` (the default);
5. otherwise `DatasetNotFoundError` lists every place looked at and how to get the data.

Local files are tried before a download because, offline, TFDS' downloader can retry for minutes
before it gives up. An IDX directory holds `train-images-idx3-ubyte[.gz]`,
`train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`
(split `"train"` reads the `train-*` files, `"test"` the `t10k-*` files), either directly or
in a subfolder named after the dataset (`fashion_mnist` or `fashion-mnist`).

Example:

```python
from keras_vae import data

train = data.load("fashion_mnist", "train[:90%]", batch_size=128, binarize="dynamic", seed=0)
val = data.load("fashion_mnist", "train[90%:]", batch_size=512, binarize="static")
x_test, y_test = data.load_numpy("fashion_mnist", "test")
```
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import math
import os
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DatasetInfo",
    "DatasetNotFoundError",
    "ENV_VAR",
    "SYSTEM_IDX_DIRS",
    "info",
    "load",
    "load_numpy",
    "read_idx",
]

logger = logging.getLogger(__name__)

ENV_VAR = "KERAS_VAE_DATA_DIR"
"""Environment variable naming a directory of IDX files (or of one subfolder per dataset)."""

SYSTEM_IDX_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
}
"""System-wide IDX directories per dataset name, looked at after `KERAS_VAE_DATA_DIR`."""

_SYSTEM_DIR_NOTES = {"/usr/share/datasets/fashion-mnist": "Debian package dataset-fashion-mnist"}

# TFDS datasets whose uint8 images already hold 0/1 rather than 0..255.
_BINARY_TFDS_DATASETS = frozenset({"binarized_mnist"})

_BINARIZE_MODES = (None, "static", "dynamic")

# Split name -> file prefix of the MNIST-format IDX files.
_IDX_SPLITS = {"train": "train", "test": "t10k"}

# IDX type codes (third magic byte) -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_SPLIT_RE = re.compile(
    r"^\s*(?P<name>[\w.-]+)\s*"
    r"(?:\[\s*(?P<start>[+-]?\d+(?:\.\d+)?%?)?\s*:\s*(?P<stop>[+-]?\d+(?:\.\d+)?%?)?\s*\])?\s*$"
)

ArrayInput = np.ndarray | tuple[np.ndarray, np.ndarray]


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset is neither in TFDS nor in a local IDX directory.

    The message names the dataset, every place that was looked at and how to get the data.

    Args:
        name: the dataset name that was asked for.
        split: the split that was asked for.
        places: one line per place looked at, saying what was missing there.
    """

    def __init__(self, name: str, split: str, places: Sequence[str]):
        self.name = name
        self.split = split
        self.places = list(places)
        looked = "\n".join(f"  - {place}" for place in self.places) or "  (nowhere)"
        folders = " or ".join(repr(f) for f in dict.fromkeys([name, name.replace("_", "-")]))
        message = (
            f"Dataset {name!r} (split {split!r}) was not found. Looked in:\n{looked}\n"
            "To get the data, any one of:\n"
            "  - Fashion-MNIST on Debian/Ubuntu: `apt-get install dataset-fashion-mnist` "
            "(installs /usr/share/datasets/fashion-mnist);\n"
            "  - put MNIST-format IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
            f"in a directory and set {ENV_VAR} to it (or to its parent, with the files in a "
            f"subfolder named {folders}), or pass idx_dir=...;\n"
            "  - run once with network access and download=True so TFDS can download and "
            f"prepare {name!r} in data_dir."
        )
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.name, self.split, self.places))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `info()` tells about a dataset.

    Args:
        name: dataset name (`"array"` for NumPy input).
        image_shape: shape of one image, `(H, W, C)` (or `(D,)` for flat input).
        num_classes: number of label classes, or `None` when there are no labels.
        num_examples: examples per split, empty when unknown (TFDS dataset not prepared).
        source: where the data come from: `"tfds"`, `"idx:<directory>"` or `"array"`.
    """

    name: str
    image_shape: tuple[int, ...]
    num_classes: int | None
    num_examples: dict[str, int]
    source: str


# --------------------------------------------------------------------------------------------
# Argument checks and split parsing.


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


@dataclasses.dataclass(frozen=True)
class _SplitPart:
    name: str
    start: str | None
    stop: str | None

    def indices(self, num_examples: int) -> slice:
        """The Python slice this part selects from `num_examples` examples (TFDS rounding)."""
        if self.start is None and self.stop is None:
            return slice(None)
        return slice(self._bound(self.start, num_examples), self._bound(self.stop, num_examples))

    @staticmethod
    def _bound(text: str | None, num_examples: int) -> int | None:
        if text is None:
            return None
        if text.endswith("%"):
            # Same "closest" rounding as TFDS, so both paths select the same examples.
            return int(round(float(text[:-1]) * num_examples / 100.0))
        return int(text)


def _parse_split(split: Any) -> list[_SplitPart]:
    """Parses `"train"`, `"train[:90%]"`, `"train[1000:2000]"`, `"train+test[:50%]"`."""
    if not isinstance(split, str) or not split.strip():
        raise ValueError(f"`split` must be a non-empty string. Received: {split!r}")
    parts = []
    for text in split.split("+"):
        match = _SPLIT_RE.match(text)
        if match is None:
            raise ValueError(
                f"Invalid split {split!r}: expected a split name with an optional slice, e.g. "
                "'train', 'test', 'train[:90%]', 'train[90%:]', 'train[1000:2000]', 'train+test'."
            )
        start, stop = match["start"], match["stop"]
        units = {bound.endswith("%") for bound in (start, stop) if bound is not None}
        if len(units) > 1:
            raise ValueError(
                f"Invalid split {split!r}: do not mix percent and absolute bounds in one slice."
            )
        for bound in (start, stop):
            if bound is not None and bound.endswith("%") and abs(float(bound[:-1])) > 100:
                raise ValueError(f"Invalid split {split!r}: percent bound {bound} is beyond 100%.")
        if "[" in text and start is None and stop is None:
            raise ValueError(f"Invalid split {split!r}: a slice needs at least one bound.")
        parts.append(_SplitPart(match["name"], start, stop))
    return parts


# --------------------------------------------------------------------------------------------
# IDX files.


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one MNIST-format IDX file (gzip-compressed or not) into a NumPy array.

    The array keeps the file's dtype (`uint8` for MNIST images and labels) in native byte
    order and is read-only when no byte swap was needed.

    Args:
        path: path of the file, e.g. `train-images-idx3-ubyte.gz`.

    Returns:
        The array, shape `(N, H, W)` for images and `(N,)` for labels.

    Example:

    >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    >>> images.shape, images.dtype
    ((10000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        raw = gzip.decompress(raw)
    shape, dtype, header = _parse_idx_header(raw, path)
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"IDX file {path} is truncated or corrupt: header says shape {shape} "
            f"({count * dtype.itemsize} bytes) but {len(raw) - header} bytes follow it."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header, count=count).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _parse_idx_header(raw: bytes, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: magic number {raw[:4].hex()!r}, expected "
            "00000803 (images) or 00000801 (labels)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated inside its header.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    return tuple(shape), np.dtype(_IDX_DTYPES[raw[2]]), header


def _read_idx_shape(path: Path) -> tuple[int, ...]:
    """Reads only the header of an IDX file."""
    with path.open("rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as handle:
        head = handle.read(4)
        head += handle.read(4 * head[3]) if len(head) == 4 else b""
    return _parse_idx_header(head, path)[0]


def _idx_file(directory: Path, prefix: str, kind: str) -> Path | None:
    """Finds `<prefix>-<kind>-idx<n>-ubyte[.gz]` (or the `.idx` spelling) in `directory`."""
    number = 3 if kind == "images" else 1
    for stem in (f"{prefix}-{kind}-idx{number}-ubyte", f"{prefix}-{kind}.idx{number}-ubyte"):
        for suffix in (".gz", ""):
            candidate = directory / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _idx_candidates(name: str, base: Path) -> list[Path]:
    """A dataset's subfolders of `base` (most specific first), then `base` itself."""
    names = dict.fromkeys([name, name.replace("_", "-"), name.replace("-", "_")])
    return [base / folder for folder in names if folder and "/" not in folder] + [base]


def _find_idx_dir(
    name: str, base: Path, prefixes: Sequence[str], label: str, places: list[str]
) -> Path | None:
    """The first candidate directory under `base` holding the images of all `prefixes`."""
    missing = []
    for directory in _idx_candidates(name, base):
        if not directory.is_dir():
            continue
        absent = [p for p in prefixes if _idx_file(directory, p, "images") is None]
        if not absent:
            return directory
        missing.append(f"{directory} has no {', '.join(_idx_pattern(p) for p in absent)}")
    if not missing:
        places.append(f"{label}: {base} (no such directory)")
    else:
        places.append(f"{label}: " + "; ".join(missing))
    return None


def _idx_pattern(prefix: str) -> str:
    return f"{prefix}-images-idx3-ubyte[.gz]"


def _idx_prefixes(parts: Sequence[_SplitPart]) -> list[str]:
    unknown = [part.name for part in parts if part.name not in _IDX_SPLITS]
    if unknown:
        raise ValueError(
            f"Unknown split {unknown[0]!r} for MNIST-format IDX files: expected one of "
            f"{sorted(_IDX_SPLITS)} (optionally sliced, e.g. 'train[:90%]')."
        )
    return list(dict.fromkeys(_IDX_SPLITS[part.name] for part in parts))


# --------------------------------------------------------------------------------------------
# Sources: in-memory arrays or a TFDS builder.


@dataclasses.dataclass
class _Arrays:
    """Images as stored (`uint8`, or float32 already in [0, 1]) and the factor to [0, 1]."""

    images: np.ndarray
    labels: np.ndarray | None
    scale: float
    source: str


@dataclasses.dataclass
class _Tfds:
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


def _as_images(images: Any) -> tuple[np.ndarray, float]:
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


def _as_labels(labels: Any, num_examples: int) -> np.ndarray:
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


def _arrays_from_input(value: Any, parts: Sequence[_SplitPart]) -> _Arrays:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                "Array input must be `x` or a pair `(x, y)`. "
                f"Received a {type(value).__name__} of length {len(value)}."
            )
        images, scale = _as_images(value[0])
        labels = None if value[1] is None else _as_labels(value[1], len(images))
    else:
        images, scale = _as_images(value)
        labels = None
    if len(parts) != 1:
        raise ValueError("Array input accepts one split slice, e.g. 'train[:90%]', not a sum.")
    selection = parts[0].indices(len(images))
    labels = None if labels is None else labels[selection]
    return _Arrays(images[selection], labels, scale, "array")


def _arrays_from_idx(directory: Path, parts: Sequence[_SplitPart]) -> _Arrays:
    images, labels = [], []
    for part in parts:
        prefix = _IDX_SPLITS[part.name]
        part_images = read_idx(_idx_file(directory, prefix, "images"))
        label_file = _idx_file(directory, prefix, "labels")
        part_labels = None if label_file is None else read_idx(label_file)
        if part_labels is not None and len(part_labels) != len(part_images):
            raise ValueError(
                f"{label_file} holds {len(part_labels)} labels for {len(part_images)} images."
            )
        selection = part.indices(len(part_images))
        images.append(part_images[selection])
        labels.append(None if part_labels is None else part_labels[selection])
    stored = images[0] if len(images) == 1 else np.concatenate(images)
    stored, scale = _as_images(stored)
    if any(part_labels is None for part_labels in labels):
        all_labels = None
    else:
        all_labels = (labels[0] if len(labels) == 1 else np.concatenate(labels)).astype(np.int32)
    return _Arrays(stored, all_labels, scale, f"idx:{directory}")


def _tfds_source(builder: Any, name: str, split: str) -> _Tfds:
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
    binary = builder.name in _BINARY_TFDS_DATASETS
    if binary or not np.issubdtype(dtype, np.integer):
        scale = 1.0
    else:
        scale = 1.0 / float(np.iinfo(dtype).max)
    return _Tfds(builder, name, split, image_key, label_key, scale, binary, shape)


def _tfds_builder(name: str, data_dir: str | os.PathLike | None, places: list[str]) -> Any:
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:  # pragma: no cover - tensorflow-datasets is a dependency
        places.append(f"TFDS: tensorflow_datasets cannot be imported ({error})")
        return None
    try:
        return tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    except Exception as error:  # unknown name, bad config or version, ...
        places.append(f"TFDS: no dataset builder for {name!r} ({_one_line(error)})")
        return None


def _is_prepared(builder: Any) -> bool:
    # Checking the folder first spares TFDS' warning about a missing dataset_info.json.
    try:
        if not builder.data_path.exists():  # an etils path: local or cloud storage
            return False
    except Exception:  # a builder without a local path: let TFDS decide
        pass
    return builder.is_prepared()


def _one_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    text = text[0] if text else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _env_and_system_dirs(name: str) -> list[tuple[str, Path]]:
    bases = []
    env_dir = os.environ.get(ENV_VAR)
    if env_dir:
        bases.append((f"{ENV_VAR}={env_dir}", Path(env_dir).expanduser()))
    for directory in SYSTEM_IDX_DIRS.get(name, ()):
        note = _SYSTEM_DIR_NOTES.get(directory, "system directory")
        bases.append((f"{note}", Path(directory)))
    return bases


def _resolve(
    name: Any,
    split: str,
    *,
    data_dir: str | os.PathLike | None,
    idx_dir: str | os.PathLike | None,
    download: bool,
) -> _Arrays | _Tfds:
    """Finds the data, in the order told in the module docstring."""
    parts = _parse_split(split)
    if not isinstance(name, str):
        return _arrays_from_input(name, parts)
    if not name.strip():
        raise ValueError(f"`name` must be a dataset name or an array. Received: {name!r}")

    places: list[str] = []
    if idx_dir is not None:
        directory = _find_idx_dir(name, Path(idx_dir), _idx_prefixes(parts), "idx_dir", places)
        if directory is not None:
            logger.info("Reading %r from IDX files in %s", name, directory)
            return _arrays_from_idx(directory, parts)

    builder = _tfds_builder(name, data_dir, places)
    if builder is not None:
        if _is_prepared(builder):
            return _tfds_source(builder, name, split)
        places.append(f"TFDS: {builder.data_dir} (not prepared)")

    bases = _env_and_system_dirs(name)
    if not os.environ.get(ENV_VAR):
        places.append(f"{ENV_VAR}: not set")
    if bases and any(part.name not in _IDX_SPLITS for part in parts) and builder is not None:
        bases = []  # a TFDS-only split name such as "validation": IDX files cannot hold it
    for label, base in bases:
        directory = _find_idx_dir(name, base, _idx_prefixes(parts), label, places)
        if directory is not None:
            logger.info("Reading %r from IDX files in %s", name, directory)
            return _arrays_from_idx(directory, parts)

    if builder is not None:
        if not download:
            places.append("TFDS download: not tried (download=False)")
        else:
            try:
                builder.download_and_prepare()
            except Exception as error:  # offline, missing optional dependency, ...
                logger.warning("TFDS could not download %r: %s", name, _one_line(error))
                places.append(f"TFDS download_and_prepare: failed ({_one_line(error)})")
            else:
                return _tfds_source(builder, name, split)
    raise DatasetNotFoundError(name, split, places)


# --------------------------------------------------------------------------------------------
# tf.data pipelines.


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


def _check_epoch(epoch: Any, seed: int | None) -> None:
    if epoch is None:
        return
    tf = _tf()
    if not isinstance(epoch, tf.Variable) or not epoch.dtype.is_integer or epoch.shape.rank != 0:
        raise ValueError(
            "`epoch` must be a scalar integer `tf.Variable`, such as "
            f"`keras_vae.callbacks.DataEpoch().variable`. Received: {epoch!r}"
        )
    if seed is None:
        raise ValueError("`epoch` needs a `seed`: the order of epoch e is drawn from (seed, e).")


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


def _array_pipeline(
    arrays: _Arrays,
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


def _tfds_pipeline(
    source: _Tfds,
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


def _tfds_arrays(source: _Tfds) -> _Arrays:
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
    return _Arrays(images, labels, source.scale, "tfds")


class _NumpyIterable:
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


# --------------------------------------------------------------------------------------------
# Public API.


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
) -> tf.data.Dataset | _NumpyIterable:
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
            images must already lie in `[0, 1]`. See the module docstring for where names
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
    source = _resolve(name, split, data_dir=data_dir, idx_dir=idx_dir, download=download)
    if shuffle is None:
        shuffle = split.strip().startswith("train")
    has_labels = source.labels is not None if isinstance(source, _Arrays) else source.label_key
    if with_labels and not has_labels:
        raise ValueError(f"`with_labels=True`, but dataset {_describe(name)} has no labels.")
    if epoch is not None and isinstance(source, _Tfds):
        source = _tfds_arrays(source)  # the order of an epoch is a permutation: random access
    if isinstance(source, _Arrays):
        if len(source.images) == 0:
            raise ValueError(f"Split {split!r} of {_describe(name)} selects no examples.")
        ds = _array_pipeline(
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
        ds = _tfds_pipeline(
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
    return _NumpyIterable(ds) if as_numpy else ds


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
    source = _resolve(name, split, data_dir=data_dir, idx_dir=idx_dir, download=download)
    if isinstance(source, _Tfds):
        source = _tfds_arrays(source)
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
    """Tells a dataset's image shape, number of classes and split sizes, without the images.

    Never downloads. Uses the same lookup order as `load()`; a TFDS dataset that is not
    prepared and has no IDX files still gets its shapes from the TFDS code, with empty
    `num_examples`.

    Args:
        name: a dataset name, an image array or an `(x, y)` pair.
        data_dir: TFDS data directory.
        idx_dir: a directory of MNIST-format IDX files, tried first.

    Returns:
        A `DatasetInfo`.

    Example:

    >>> info("fashion_mnist").image_shape
    (28, 28, 1)
    """
    if not isinstance(name, str):
        arrays = _arrays_from_input(name, _parse_split("train"))
        labels = arrays.labels
        num_classes = None if labels is None or not labels.size else int(labels.max()) + 1
        shape = tuple(arrays.images.shape[1:])
        return DatasetInfo("array", shape, num_classes, {"train": len(arrays.images)}, "array")
    places: list[str] = []
    if idx_dir is not None:
        directory = _find_any_idx_dir(name, Path(idx_dir), "idx_dir", places)
        if directory is not None:
            return _idx_info(name, directory)
    builder = _tfds_builder(name, data_dir, places)
    if builder is not None and _is_prepared(builder):
        return _tfds_info(builder, name)
    for label, base in _env_and_system_dirs(name):
        directory = _find_any_idx_dir(name, base, label, places)
        if directory is not None:
            return _idx_info(name, directory)
    if builder is not None:
        return _tfds_info(builder, name)
    raise DatasetNotFoundError(name, "train", places)


def _find_any_idx_dir(name: str, base: Path, label: str, places: list[str]) -> Path | None:
    """The first directory under `base` with train images, else with test images."""
    found = _find_idx_dir(name, base, ["train"], label, places)
    return found if found is not None else _find_idx_dir(name, base, ["t10k"], label, [])


def _tfds_info(builder: Any, name: str) -> DatasetInfo:
    source = _tfds_source(builder, name, "train")
    label = builder.info.features[source.label_key] if source.label_key else None
    splits = {key: int(value.num_examples) for key, value in builder.info.splits.items()}
    return DatasetInfo(
        name, source.image_shape, None if label is None else label.num_classes, splits, "tfds"
    )


def _idx_info(name: str, directory: Path) -> DatasetInfo:
    num_examples, image_shape, num_classes = {}, None, None
    for split, prefix in _IDX_SPLITS.items():
        images = _idx_file(directory, prefix, "images")
        if images is None:
            continue
        shape = _read_idx_shape(images)
        num_examples[split] = shape[0]
        image_shape = image_shape or (shape[1:] + (1,) if len(shape) == 3 else shape[1:])
        labels = _idx_file(directory, prefix, "labels")
        if labels is not None and num_classes is None:
            num_classes = int(read_idx(labels).max()) + 1
    return DatasetInfo(name, tuple(image_shape), num_classes, num_examples, f"idx:{directory}")


def _describe(name: Any) -> str:
    return repr(name) if isinstance(name, str) else "(array input)"
