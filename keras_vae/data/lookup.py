"""Where a dataset is found: the one lookup order of `load`, `load_numpy` and `info`.

A dataset name is looked up in this order, the first hit wins:

1. the `idx_dir` argument (MNIST-format IDX files, see `keras_vae.data.idx`);
2. TFDS, if the dataset is already prepared in `data_dir` (TFDS' default when `None`);
3. the directory named by the environment variable `KERAS_VAE_DATA_DIR`, then the system
   directories of `SYSTEM_IDX_DIRS` (Debian's package `dataset-fashion-mnist` installs
   `/usr/share/datasets/fashion-mnist`);
4. TFDS `download_and_prepare()`, only when `download=True` (the default). `info()` never
   downloads: it describes an unprepared TFDS dataset from the TFDS code instead;
5. otherwise `DatasetNotFoundError` lists every place looked at and how to get the data.

Local files are tried before a download because, offline, TFDS' downloader can retry for minutes
before it gives up. A split that IDX files cannot hold (`"validation"`) skips step 3 for a
dataset TFDS knows. For a split, an IDX directory counts when it has the image files of every
split named; for `info()`, when it has the training images, or else the test images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keras_vae.data import idx, tfds
from keras_vae.data.splits import SplitPart

ENV_VAR = "KERAS_VAE_DATA_DIR"
"""Environment variable naming a directory of IDX files (or of one subfolder per dataset)."""

SYSTEM_IDX_DIRS: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
}
"""System-wide IDX directories per dataset name, looked at after `KERAS_VAE_DATA_DIR`.

Add to this dict (`data.SYSTEM_IDX_DIRS["mnist"] = ("/srv/mnist",)`) rather than replace it:
the lookup reads this very dict.
"""

_SYSTEM_DIR_NOTES = {"/usr/share/datasets/fashion-mnist": "Debian package dataset-fashion-mnist"}

# What makes an IDX directory count for `info()`: train images, or else test images.
_DESCRIBE_PREFIXES = (["train"], ["t10k"])


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset is neither in TFDS nor in a local IDX directory.

    The message names the dataset, every place that was looked at and how to get the data.

    Args:
        name: the dataset name that was asked for.
        split: the split that was asked for.
        places: one line per place looked at, saying what was missing there.

    Example:

    >>> error = DatasetNotFoundError("mnist", "train", ["idx_dir: /tmp/none (no such directory)"])
    >>> error.places, isinstance(error, FileNotFoundError)
    (['idx_dir: /tmp/none (no such directory)'], True)
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


def locate(
    name: str,
    parts: Sequence[SplitPart] | None,
    *,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    idx_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> Path | Any:
    """Finds dataset `name` in the order of this module's docstring.

    Args:
        name: the dataset name.
        parts: the parsed split that will be read, or `None` to describe the dataset
            (`info()`): then an unprepared TFDS builder is returned last, never downloaded.
        split: the split text, for the error message.
        data_dir: TFDS data directory.
        idx_dir: a directory of MNIST-format IDX files, tried first.
        download: whether TFDS may download and prepare the dataset (step 4).

    Returns:
        The directory of the IDX files, or a TFDS builder (prepared unless `parts` is `None`).

    Raises:
        DatasetNotFoundError: nowhere to be found; `places` says where it looked.
        ValueError: an empty name, or a split that IDX files cannot hold (`"validation"`)
            where IDX files are looked at.
    """
    if not name.strip():
        raise ValueError(f"`name` must be a dataset name or an array. Received: {name!r}")
    places: list[str] = []
    if idx_dir is not None:
        directory = _idx_dir_in(name, Path(idx_dir), "idx_dir", parts, places)
        if directory is not None:
            return directory

    builder, reason = tfds.find_builder(name, data_dir)
    if builder is None:
        places.append(f"TFDS: {reason}")
    elif tfds.is_prepared(builder):
        return builder
    else:
        places.append(f"TFDS: {builder.data_dir} (not prepared)")

    bases = _env_and_system_dirs(name)
    if not os.environ.get(ENV_VAR):
        places.append(f"{ENV_VAR}: not set")
    if builder is not None and parts is not None and not idx.holds(parts):
        bases = []  # a TFDS-only split name such as "validation": IDX files cannot hold it
    for label, base in bases:
        directory = _idx_dir_in(name, base, label, parts, places)
        if directory is not None:
            return directory

    if builder is not None:
        if parts is None:
            return builder  # the TFDS code knows the shapes and classes without the data
        if not download:
            places.append("TFDS download: not tried (download=False)")
        else:
            failure = tfds.download(builder)
            if failure is None:
                return builder
            places.append(f"TFDS download_and_prepare: failed ({failure})")
    raise DatasetNotFoundError(name, split, places)


def _env_and_system_dirs(name: str) -> list[tuple[str, Path]]:
    """`(label, directory)` of `KERAS_VAE_DATA_DIR` when set, then of the system directories."""
    bases = []
    env_dir = os.environ.get(ENV_VAR)
    if env_dir:
        bases.append((f"{ENV_VAR}={env_dir}", Path(env_dir).expanduser()))
    for directory in SYSTEM_IDX_DIRS.get(name, ()):
        bases.append((_SYSTEM_DIR_NOTES.get(directory, "system directory"), Path(directory)))
    return bases


def _idx_dir_in(
    name: str, base: Path, label: str, parts: Sequence[SplitPart] | None, places: list[str]
) -> Path | None:
    """The IDX directory of `name` under `base`, else `None` and a line in `places`."""
    wanted = _DESCRIBE_PREFIXES if parts is None else [idx.prefixes(parts)]
    for attempt, prefixes in enumerate(wanted):
        directory, missing = idx.find_dir(name, base, prefixes)
        if directory is not None:
            return directory
        if attempt == 0:  # say what the first wish missed: the one a user can act on
            places.append(f"{label}: {missing}")
    return None
