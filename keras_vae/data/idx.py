"""MNIST-format IDX files: the file format, where a directory keeps them, what they hold.

An IDX directory holds `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
`t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]` (split `"train"` reads the
`train-*` files, `"test"` the `t10k-*` files), either directly or in a subfolder named after
the dataset (`fashion_mnist` or `fashion-mnist`). MNIST, Fashion-MNIST and Kuzushiji-MNIST are
published this way, and Debian's `dataset-fashion-mnist` installs such files.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_vae.data.arrays import Arrays, as_images
from keras_vae.data.dataset_info import DatasetInfo
from keras_vae.data.splits import SplitPart

SPLIT_PREFIXES = {"train": "train", "test": "t10k"}
"""Split name -> file prefix of the IDX files."""

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    # Kuzushiji-MNIST: the romanised hiragana of each class, as TFDS names them.
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}
"""Class names of the datasets published as IDX files (the same names TFDS gives them).

IDX files hold label ids only; `info()` names the classes from this table when the dataset
is listed here and its labels have as many classes as the table names.
"""

# IDX type codes (third magic byte) -> big-endian NumPy dtype.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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
    shape, dtype, header = _parse_header(raw, path)
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"IDX file {path} is truncated or corrupt: header says shape {shape} "
            f"({count * dtype.itemsize} bytes) but {len(raw) - header} bytes follow it."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header, count=count).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _parse_header(raw: bytes, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: magic number {raw[:4].hex()!r}, expected "
            "00000803 (images) or 00000801 (labels)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path} is truncated inside its header.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    return tuple(shape), np.dtype(_DTYPES[raw[2]]), header


def _read_shape(path: Path) -> tuple[int, ...]:
    """Reads only the header of an IDX file."""
    with path.open("rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as handle:
        head = handle.read(4)
        head += handle.read(4 * head[3]) if len(head) == 4 else b""
    return _parse_header(head, path)[0]


# --------------------------------------------------------------------------------------------
# Where a directory keeps the files.


def find_file(directory: Path, prefix: str, kind: str) -> Path | None:
    """Finds `<prefix>-<kind>-idx<n>-ubyte[.gz]` (or the `.idx` spelling) in `directory`."""
    number = 3 if kind == "images" else 1
    for stem in (f"{prefix}-{kind}-idx{number}-ubyte", f"{prefix}-{kind}.idx{number}-ubyte"):
        for suffix in (".gz", ""):
            candidate = directory / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def find_dir(name: str, base: Path, prefixes: Sequence[str]) -> tuple[Path | None, str]:
    """The folder of `base` holding the images of all `prefixes`, or why there is none.

    The dataset's subfolders (`base/fashion_mnist`, `base/fashion-mnist`) are tried before
    `base` itself. Returns `(directory, "")` or `(None, what is missing where)`.
    """
    folders = dict.fromkeys([name, name.replace("_", "-"), name.replace("-", "_")])
    candidates = [base / folder for folder in folders if folder and "/" not in folder] + [base]
    missing = []
    for directory in candidates:
        if not directory.is_dir():
            continue
        absent = [p for p in prefixes if find_file(directory, p, "images") is None]
        if not absent:
            return directory, ""
        patterns = ", ".join(f"{p}-images-idx3-ubyte[.gz]" for p in absent)
        missing.append(f"{directory} has no {patterns}")
    return None, "; ".join(missing) or f"{base} (no such directory)"


def holds(parts: Sequence[SplitPart]) -> bool:
    """Whether IDX files can hold every split named in `parts` (only train and test)."""
    return all(part.name in SPLIT_PREFIXES for part in parts)


def prefixes(parts: Sequence[SplitPart]) -> list[str]:
    """The file prefixes `parts` read, e.g. `["train", "t10k"]` for `"train+test"`."""
    if not holds(parts):
        unknown = next(part.name for part in parts if part.name not in SPLIT_PREFIXES)
        raise ValueError(
            f"Unknown split {unknown!r} for MNIST-format IDX files: expected one of "
            f"{sorted(SPLIT_PREFIXES)} (optionally sliced, e.g. 'train[:90%]')."
        )
    return list(dict.fromkeys(SPLIT_PREFIXES[part.name] for part in parts))


# --------------------------------------------------------------------------------------------
# What they hold.


def read_arrays(directory: Path, parts: Sequence[SplitPart]) -> Arrays:
    """The images and labels of `parts` from the IDX files in `directory`."""
    images, labels = [], []
    for part in parts:
        prefix = SPLIT_PREFIXES[part.name]
        part_images = read_idx(find_file(directory, prefix, "images"))
        label_file = find_file(directory, prefix, "labels")
        part_labels = None if label_file is None else read_idx(label_file)
        if part_labels is not None and len(part_labels) != len(part_images):
            raise ValueError(
                f"{label_file} holds {len(part_labels)} labels for {len(part_images)} images."
            )
        selection = part.indices(len(part_images))
        images.append(part_images[selection])
        labels.append(None if part_labels is None else part_labels[selection])
    stored = images[0] if len(images) == 1 else np.concatenate(images)
    stored, scale = as_images(stored)
    if any(part_labels is None for part_labels in labels):
        all_labels = None
    else:
        all_labels = (labels[0] if len(labels) == 1 else np.concatenate(labels)).astype(np.int32)
    return Arrays(stored, all_labels, scale, f"idx:{directory}")


def describe(name: str, directory: Path) -> DatasetInfo:
    """`info()` of the IDX files in `directory`, from their headers and the first labels."""
    num_examples, image_shape, num_classes = {}, None, None
    for split, prefix in SPLIT_PREFIXES.items():
        images = find_file(directory, prefix, "images")
        if images is None:
            continue
        shape = _read_shape(images)
        num_examples[split] = shape[0]
        image_shape = image_shape or (shape[1:] + (1,) if len(shape) == 3 else shape[1:])
        labels = find_file(directory, prefix, "labels")
        if labels is not None and num_classes is None:
            num_classes = int(read_idx(labels).max()) + 1
    class_names = CLASS_NAMES.get(name.replace("-", "_"))
    if class_names is not None and len(class_names) != num_classes:
        class_names = None  # files under a known name that hold some other labelling
    return DatasetInfo(
        name, tuple(image_shape), num_classes, num_examples, f"idx:{directory}", class_names
    )
