"""`DatasetInfo`: what `keras_vae.data.info()` tells about a dataset, whatever its source."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What `info()` tells about a dataset.

    Args:
        name: dataset name (`"array"` for NumPy input).
        image_shape: shape of one image, `(H, W, C)` (or `(D,)` for flat input).
        num_classes: number of label classes, or `None` when there are no labels.
        num_examples: examples per split, empty when unknown (TFDS dataset not prepared).
        source: where the data come from: `"tfds"`, `"idx:<directory>"` or `"array"`.
        class_names: the name of each class, label `i` named by `class_names[i]`, or `None`
            when unknown: TFDS' label names for a TFDS dataset (TFDS gives `"0"`, `"1"`, ...
            where the dataset's code does not name them, e.g. `cifar10` before it is
            prepared); for IDX files, the names of `keras_vae.data.idx.CLASS_NAMES` when the
            dataset is listed there and its labels have as many classes; `None` for arrays.

    Example:

    >>> import numpy as np
    >>> from keras_vae import data
    >>> described = data.info((np.zeros((5, 4, 4), np.uint8), np.arange(5) % 3))
    >>> described.image_shape, described.num_classes, described.num_examples
    ((4, 4, 1), 3, {'train': 5})
    >>> described.source, described.class_names
    ('array', None)
    """

    name: str
    image_shape: tuple[int, ...]
    num_classes: int | None
    num_examples: dict[str, int]
    source: str
    class_names: tuple[str, ...] | None = None
