"""Dataset pipelines: TFDS image datasets, local MNIST-format IDX files and NumPy arrays.

`load()` returns a ready `tf.data.Dataset` for `Model.fit`: float32 images scaled to `[0, 1]`
with shape `(H, W, C)` (or flat vectors), optionally binarised for a Bernoulli likelihood and
optionally paired with int32 labels. `load_numpy()` returns the same images as NumPy arrays and
`info()` tells the image shape, classes and split sizes without reading the images.

All three find a dataset name in one order (`keras_vae.data.lookup`): the `idx_dir` argument,
an already prepared TFDS dataset, `$KERAS_VAE_DATA_DIR`, system directories such as Debian's
`/usr/share/datasets/fashion-mnist`, then a TFDS download; else `DatasetNotFoundError` says
where it looked.

Example:

```python
from keras_vae import data

train = data.load("fashion_mnist", "train[:90%]", batch_size=128, binarize="dynamic", seed=0)
val = data.load("fashion_mnist", "train[90%:]", batch_size=512, binarize="static")
x_test, y_test = data.load_numpy("fashion_mnist", "test")
names = data.info("fashion_mnist").class_names  # ("T-shirt/top", "Trouser", ...)
```

The package, one concern per module:

- `loading`: `load`, `load_numpy`, `info` and the checks of their arguments;
- `lookup`: where a dataset is found, and `DatasetNotFoundError`;
- `splits`: TFDS-style split strings such as `"train[:90%]+test"`;
- `arrays`: NumPy input checked, and the in-memory form every local source reads into;
- `idx`: the MNIST-format IDX files (`read_idx`);
- `tfds`: TensorFlow Datasets builders;
- `pipelines`: the `tf.data` pipelines `load` returns;
- `dataset_info`: `DatasetInfo`, what `info()` returns.
"""

from keras_vae.data.dataset_info import DatasetInfo
from keras_vae.data.idx import read_idx
from keras_vae.data.loading import info, load, load_numpy
from keras_vae.data.lookup import ENV_VAR, SYSTEM_IDX_DIRS, DatasetNotFoundError

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
