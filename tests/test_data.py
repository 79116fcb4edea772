"""Tests for keras_vae.data: TFDS (mocked), local IDX files, NumPy input, errors.

No test touches the network: a fixture makes every socket connection fail, TFDS runs under
`tfds.testing.mock_data` or with `download=False`, and the IDX files are written here.
"""

import gzip
import importlib.resources
import socket
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_vae import data

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TRAIN_SHAPE = (50, 6, 5)  # non-square, so height and width cannot be swapped unnoticed
TEST_SHAPE = (20, 6, 5)
NUM_CLASSES = 4
TOY_CLASS_NAMES = ("circle", "square", "star", "moon")  # the prepared TFDS toy's label names


def write_idx(path, array, compress=True):
    """Writes `array` as an MNIST-format IDX file (gzip-compressed by default)."""
    array = np.asarray(array)
    type_code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[array.dtype]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload, compresslevel=1) if compress else payload)
    return path


def make_split(seed, shape, num_classes=NUM_CLASSES):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = (np.arange(shape[0]) % num_classes).astype(np.uint8)
    return images, labels


def write_idx_dir(directory, compress=True, num_classes=NUM_CLASSES, prefixes=("train", "t10k")):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for prefix, seed, shape in (("train", 0, TRAIN_SHAPE), ("t10k", 1, TEST_SHAPE)):
        if prefix not in prefixes:
            continue
        images, labels = make_split(seed, shape, num_classes)
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return directory


def collect(ds):
    """All batches of one epoch, concatenated (a tuple of arrays for `(x, y)` datasets)."""
    batches = list(ds.as_numpy_iterator())
    if isinstance(batches[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*batches))
    return np.concatenate(batches)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No network, no KERAS_VAE_DATA_DIR, no system IDX dirs, an empty TFDS data_dir."""

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in keras_vae's data tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    for dataset in list(data.SYSTEM_IDX_DIRS):  # the lookup reads this very dict: empty it
        monkeypatch.delitem(data.SYSTEM_IDX_DIRS, dataset)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_default"))
    return tmp_path / "tfds"


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return write_idx_dir(tmp_path_factory.mktemp("idx") / "toy")


@pytest.fixture
def offline(isolated):
    """Keyword arguments for a TFDS lookup that can neither find nor download anything."""
    return {"data_dir": isolated, "download": False}


# ---------------------------------------------------------------------------------------------
# IDX files.


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    images, labels = make_split(0, TRAIN_SHAPE)
    np.testing.assert_array_equal(
        data.read_idx(write_idx(tmp_path / "i", images, compress)), images
    )
    np.testing.assert_array_equal(
        data.read_idx(write_idx(tmp_path / "l", labels, compress)), labels
    )
    wide = np.arange(-3, 3, dtype=np.int32).reshape(2, 3)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "w", wide)), wide)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(
        write_idx(tmp_path / "ok", np.zeros((4, 3), np.uint8), False).read_bytes()[:-2]
    )
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(short)


def test_load_from_idx_dir(idx_dir, offline):
    images, labels = make_split(0, TRAIN_SHAPE)
    ds = data.load("toy", batch_size=16, idx_dir=idx_dir, shuffle=False, **offline)
    assert ds.element_spec.shape.as_list() == [None, 6, 5, 1]
    first = next(iter(ds))
    assert first.shape == (16, 6, 5, 1) and first.dtype.name == "float32"
    x = collect(ds)
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    assert 0.0 <= x.min() and x.max() <= 1.0

    x, y = collect(data.load("toy", "test", 8, idx_dir=idx_dir, with_labels=True, **offline))
    test_images, test_labels = make_split(1, TEST_SHAPE)
    np.testing.assert_allclose(x[..., 0], test_images / 255.0, rtol=1e-6)  # test: not shuffled
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, test_labels)


def test_uncompressed_idx_in_env_var_dir(tmp_path, monkeypatch, offline):
    write_idx_dir(tmp_path / "plain", compress=False)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "plain"))
    x, y = data.load_numpy("toy", "test", **offline)
    assert x.shape == (20, 6, 5, 1) and y.shape == (20,)


@pytest.mark.parametrize("folder", ["my_toy", "my-toy"])
def test_env_var_subfolder_named_after_dataset(tmp_path, monkeypatch, offline, folder):
    write_idx_dir(tmp_path / "datasets" / folder)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "datasets"))
    x, y = data.load_numpy("my_toy", **offline)
    assert x.shape == (50, 6, 5, 1) and x.dtype == np.float32 and y.dtype == np.int32


@pytest.mark.parametrize(
    "split, expected",
    [
        ("train[:10%]", slice(0, 5)),
        ("train[90%:]", slice(45, 50)),
        ("train[-20%:]", slice(40, 50)),
        ("train[10:20]", slice(10, 20)),
        ("train[:-45]", slice(0, 5)),
        ("train[ 5 : ]", slice(5, 50)),
    ],
)
def test_split_slicing(idx_dir, offline, split, expected):
    images, labels = make_split(0, TRAIN_SHAPE)
    x, y = data.load_numpy("toy", split, idx_dir=idx_dir, **offline)
    np.testing.assert_allclose(x[..., 0], images[expected] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels[expected])
    batches = data.load("toy", split, 4, idx_dir=idx_dir, shuffle=False, **offline)
    np.testing.assert_array_equal(collect(batches), x)


def test_split_sum(idx_dir, offline):
    x, y = data.load_numpy("toy", "train[:10%]+test[:3]", idx_dir=idx_dir, **offline)
    assert x.shape == (8, 6, 5, 1)
    np.testing.assert_array_equal(y, np.r_[np.arange(5), np.arange(3)] % NUM_CLASSES)


def test_shuffle_is_seeded_and_reshuffles(idx_dir, offline):
    def epochs(seed):
        ds = data.load(
            "toy", batch_size=50, idx_dir=idx_dir, seed=seed, with_labels=True, **offline
        )
        return [collect(ds)[0] for _ in range(2)]

    first, second = epochs(7)
    again, _ = epochs(7)
    reference = data.load_numpy("toy", idx_dir=idx_dir, **offline)[0]
    assert not np.array_equal(first, reference)  # shuffled by default for "train"
    np.testing.assert_array_equal(np.sort(first, axis=None), np.sort(reference, axis=None))
    assert not np.array_equal(first, second)  # new order each epoch
    np.testing.assert_array_equal(first, again)  # same seed, same epochs


# ---------------------------------------------------------------------------------------------
# Lookup order and the not-found error.


def test_not_found_error_lists_every_place(tmp_path, monkeypatch, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(data.ENV_VAR, str(empty))
    monkeypatch.setitem(data.SYSTEM_IDX_DIRS, "mnist", (str(tmp_path / "system"),))
    with pytest.raises(data.DatasetNotFoundError) as caught:
        data.load("mnist", idx_dir=tmp_path / "missing", **offline)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "'mnist'" in message
    for place in (tmp_path / "missing", offline["data_dir"], empty, tmp_path / "system"):
        assert str(place) in message
    assert "train-images-idx3-ubyte[.gz]" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert data.ENV_VAR in message and "download=True" in message
    assert caught.value.places and caught.value.name == "mnist"


def test_not_found_unknown_name(offline):
    with pytest.raises(data.DatasetNotFoundError, match="no dataset builder for 'no_such_set'"):
        data.load_numpy("no_such_set", **offline)


def test_local_files_are_used_before_a_download(tmp_path, monkeypatch):
    def no_download(self, *args, **kwargs):
        raise RuntimeError("offline")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(data.DatasetNotFoundError, match=r"failed \(RuntimeError: offline\)"):
        data.load("mnist", data_dir=tmp_path / "tfds")
    write_idx_dir(tmp_path / "local" / "mnist")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "local"))
    x, _ = data.load_numpy("mnist", data_dir=tmp_path / "tfds")
    assert x.shape == (50, 6, 5, 1)


# ---------------------------------------------------------------------------------------------
# Argument checks.


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        data.load(np.zeros((4, 2, 2), np.uint8), batch_size=batch_size)


def test_bad_binarize():
    with pytest.raises(ValueError, match="'stochastic'"):
        data.load(np.zeros((4, 2, 2), np.uint8), binarize="stochastic")
    with pytest.raises(ValueError, match="'bernoulli'"):
        data.load_numpy(np.zeros((4, 2, 2), np.uint8), binarize="bernoulli")


@pytest.mark.parametrize("split", ["validation", "train[::2]", "train[:]", "train[5%:10]", ""])
def test_bad_split(idx_dir, offline, split):
    with pytest.raises(ValueError, match="split"):
        data.load("toy", split, idx_dir=idx_dir, **offline)


def test_unknown_split_names_the_split(tmp_path, monkeypatch, offline):
    write_idx_dir(tmp_path / "toy")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(ValueError, match="'validation'"):
        data.load("toy", "validation", **offline)


# ---------------------------------------------------------------------------------------------
# NumPy input.


def test_numpy_uint8_input_is_scaled():
    images, labels = make_split(3, (30, 4, 3))
    ds = data.load((images, labels), batch_size=8, shuffle=False, with_labels=True)
    x, y = collect(ds)
    assert x.shape == (30, 4, 3, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert collect(data.load(images, batch_size=8, flatten=True, shuffle=False)).shape == (30, 12)


def test_numpy_float_input_is_kept_and_checked():
    images = np.random.default_rng(0).random((10, 3, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(collect(data.load(images, batch_size=4, shuffle=False)), images)
    with pytest.raises(ValueError, match=r"\[0, 1\].*\[-0.5, 3.0\]"):
        data.load(np.array([[-0.5, 3.0]]), batch_size=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.load_numpy(np.full((2, 2, 2), np.nan))


def test_numpy_input_slicing_batching_and_labels():
    images = np.arange(100, dtype=np.uint8).reshape(25, 2, 2)
    x, y = data.load_numpy((images, np.arange(25) % 5), "train[80%:]")
    assert x.shape == (5, 2, 2, 1)
    np.testing.assert_array_equal(y, np.arange(20, 25) % 5)
    ds = data.load(images, batch_size=10, drop_remainder=True)
    assert ds.element_spec.shape.as_list() == [10, 2, 2, 1]
    assert len(list(ds)) == 2
    with pytest.raises(ValueError, match="no labels"):
        data.load(images, with_labels=True)


def test_as_numpy_is_reiterable():
    batches = data.load(np.zeros((10, 2, 2), np.uint8), batch_size=4, as_numpy=True)
    assert len(batches) == 3
    assert [b.shape for b in batches] == [(4, 2, 2, 1), (4, 2, 2, 1), (2, 2, 2, 1)]
    assert isinstance(next(iter(batches)), np.ndarray)


# ---------------------------------------------------------------------------------------------
# Binarisation.


def test_static_binarization():
    images, _ = make_split(4, (40, 5, 5))
    x = collect(data.load(images, batch_size=16, binarize="static", shuffle=False))
    np.testing.assert_array_equal(x[..., 0], (images / 255.0 > 0.5).astype(np.float32))
    x_np, _ = data.load_numpy(images, binarize="static")
    np.testing.assert_array_equal(x_np, x)


def test_dynamic_binarization_redraws_each_epoch_and_is_seeded():
    images = np.full((64, 8, 8), 0.5, np.float32)
    images[:, 0, 0], images[:, 0, 1] = 0.0, 1.0

    def epochs(seed):
        ds = data.load(images, batch_size=16, binarize="dynamic", seed=seed)
        return [collect(ds) for _ in range(2)]

    first, second = epochs(1)
    again_first, again_second = epochs(1)
    other, _ = epochs(2)
    assert set(np.unique(first)) == {0.0, 1.0}
    assert np.all(first[:, 0, 0] == 0.0) and np.all(first[:, 0, 1] == 1.0)
    assert abs(first.mean() - 0.5) < 0.05  # Bernoulli(0.5) on 4,096 pixels
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again_first)
    np.testing.assert_array_equal(second, again_second)
    assert not np.array_equal(first, other)


# ---------------------------------------------------------------------------------------------
# Epochs drawn from (seed, epoch), for resumed runs.


def epoch_variable(value=0):
    import tensorflow as tf

    return tf.Variable(value, dtype=tf.int64, trainable=False)


def passes(ds, epoch, epochs):
    """One pass per epoch in `epochs`, with the variable set as DataEpoch sets it."""
    collected = []
    for value in epochs:
        epoch.assign(value)
        collected.append(collect(ds))
    return collected


def test_epoch_variable_draws_each_epoch_from_seed_and_epoch():
    images, _ = make_split(5, (70, 4, 4))
    images[:, 0, 0] = 128  # a pixel whose dynamic binarisation is a fair coin

    def load(seed, epoch):
        pair = (images, np.arange(70))  # labels: the example's index, to see the order
        return data.load(
            pair, batch_size=16, binarize="dynamic", with_labels=True, seed=seed, epoch=epoch
        )

    epoch = epoch_variable()
    ds = load(0, epoch)
    assert int(ds.cardinality()) == 5  # known, as fit needs for its steps per epoch
    zero, one, two, two_again = passes(ds, epoch, [0, 1, 2, 2])
    for _, order in (zero, one, two):
        assert sorted(order) == list(range(70))  # a permutation of the split
    assert not np.array_equal(zero[1], one[1]) and not np.array_equal(
        zero[0][:, 0, 0], one[0][:, 0, 0]
    )
    np.testing.assert_array_equal(two[0], two_again[0])
    np.testing.assert_array_equal(two[1], two_again[1])
    # A fresh process resumed at epoch 2: a new dataset and variable, no earlier passes.
    fresh_epoch = epoch_variable(2)
    (fresh,) = passes(load(0, fresh_epoch), fresh_epoch, [2])
    np.testing.assert_array_equal(fresh[0], two[0])
    np.testing.assert_array_equal(fresh[1], two[1])
    (other_seed,) = passes(load(1, fresh_epoch), fresh_epoch, [2])
    assert not np.array_equal(other_seed[1], two[1])
    # Without shuffling, the epoch still keys the binarisation.
    plain = data.load(images, batch_size=16, binarize="dynamic", shuffle=False, seed=0, epoch=epoch)
    first, second = passes(plain, epoch, [0, 1])
    assert not np.array_equal(first, second)
    (again,) = passes(plain, epoch, [0])
    np.testing.assert_array_equal(first, again)


def test_epoch_variable_errors():
    images = np.zeros((8, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="`epoch` needs a `seed`"):
        data.load(images, epoch=epoch_variable())
    with pytest.raises(ValueError, match="scalar integer `tf.Variable`"):
        data.load(images, seed=0, epoch=3)


# ---------------------------------------------------------------------------------------------
# TFDS, mocked.


def test_tfds_mock_images_and_labels(isolated):
    with tfds.testing.mock_data(num_examples=20):
        ds = data.load("mnist", batch_size=8, data_dir=isolated, with_labels=True, seed=0)
        x, y = collect(ds)
        x_cifar = next(iter(data.load("cifar10", batch_size=4, data_dir=isolated)))
    assert ds.element_spec[0].shape.as_list() == [None, 28, 28, 1]
    assert x.shape == (20, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5  # scaled, not clipped uint8
    assert y.dtype == np.int32 and 0 <= y.min() and y.max() < 10
    assert x_cifar.shape == (4, 32, 32, 3)


def test_tfds_mock_binarization_and_flatten(isolated):
    with tfds.testing.mock_data(num_examples=16):
        static = collect(data.load("fashion_mnist", data_dir=isolated, binarize="static"))
        dynamic = data.load(
            "fashion_mnist", batch_size=4, data_dir=isolated, binarize="dynamic", seed=3
        )
        first, second = collect(dynamic), collect(dynamic)
        again = collect(
            data.load("fashion_mnist", batch_size=4, data_dir=isolated, binarize="dynamic", seed=3)
        )
        flat = next(iter(data.load("fashion_mnist", batch_size=4, data_dir=isolated, flatten=True)))
    assert set(np.unique(static)) <= {0.0, 1.0}
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again)
    assert flat.shape == (4, 784)


def test_tfds_mock_binary_dataset_and_numpy(isolated):
    with tfds.testing.mock_data(num_examples=6):
        x = collect(data.load("binarized_mnist", batch_size=4, data_dir=isolated))
        with pytest.raises(ValueError, match="no labels"):
            data.load("binarized_mnist", data_dir=isolated, with_labels=True)
        x_np, y_np = data.load_numpy("mnist", "test", data_dir=isolated)
    assert x.shape == (6, 28, 28, 1) and set(np.unique(x)) <= {0.0, 1.0}
    assert x_np.shape == (6, 28, 28, 1) and x_np.dtype == np.float32 and x_np.max() <= 1.0
    assert y_np.shape == (6,) and y_np.dtype == np.int32


# ---------------------------------------------------------------------------------------------
# TFDS, a real dataset prepared locally (no download).


class KerasVaeToyImages(tfds.core.GeneratorBasedBuilder):
    """The toy train/test splits above as a TFDS dataset, generated without downloads."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Image(shape=TRAIN_SHAPE[1:] + (1,)),
                "label": tfds.features.ClassLabel(names=TOY_CLASS_NAMES),
            }
        )
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(0, TRAIN_SHAPE),
            "test": self._generate_examples(1, TEST_SHAPE),
        }

    def _generate_examples(self, seed, shape):
        images, labels = make_split(seed, shape)
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image[..., np.newaxis], "label": int(label)}


@pytest.fixture(scope="module")
def prepared_tfds(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("prepared_tfds")
    with pytest.MonkeyPatch.context() as patch:
        try:
            import importlib_resources  # noqa: F401
        except ImportError:  # TFDS 4.9 needs it on any Python but declares it for < 3.9 only
            patch.setitem(sys.modules, "importlib_resources", importlib.resources)
        KerasVaeToyImages(data_dir=data_dir).download_and_prepare()
    return data_dir


def sorted_rows(images):
    return np.sort(np.round(np.asarray(images) * 255).reshape(len(images), -1), axis=0)


def test_prepared_tfds_dataset(prepared_tfds, tmp_path, monkeypatch):
    decoy = tmp_path / "keras_vae_toy_images"  # all-black IDX images: TFDS, prepared, must win
    decoy.mkdir()
    write_idx(decoy / "train-images-idx3-ubyte.gz", np.zeros(TRAIN_SHAPE, np.uint8))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    images, labels = make_split(0, TRAIN_SHAPE)
    name, options = "keras_vae_toy_images", {"data_dir": prepared_tfds, "download": False}
    x, y = collect(data.load(name, batch_size=16, with_labels=True, seed=0, **options))
    assert x.shape == (50, 6, 5, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(sorted_rows(x), sorted_rows(images / 255.0))
    np.testing.assert_array_equal(np.bincount(y), np.bincount(labels))
    x_part, _ = data.load_numpy(name, "train[:10%]", **options)
    assert x_part.shape == (5, 6, 5, 1)
    cached = data.load(name, "test", 8, cache=str(tmp_path / "cache"), **options)
    np.testing.assert_array_equal(collect(cached), collect(cached))
    with pytest.raises(ValueError, match="'validation'"):
        data.load(name, "validation", **options)
    described = data.info(name, data_dir=prepared_tfds)
    assert described.source == "tfds" and described.num_examples == {"train": 50, "test": 20}
    assert described.image_shape == (6, 5, 1) and described.num_classes == NUM_CLASSES
    assert described.class_names == TOY_CLASS_NAMES  # TFDS' label names


def test_prepared_tfds_dataset_with_epoch_variable(prepared_tfds):
    name, options = "keras_vae_toy_images", {"data_dir": prepared_tfds, "download": False}
    epoch = epoch_variable()
    ds = data.load(name, batch_size=16, with_labels=True, seed=0, epoch=epoch, **options)
    zero, one = passes(ds, epoch, [0, 1])
    images, _ = make_split(0, TRAIN_SHAPE)
    np.testing.assert_array_equal(sorted_rows(zero[0]), sorted_rows(images / 255.0))
    assert not np.array_equal(zero[0], one[0])
    fresh_epoch = epoch_variable(1)
    (fresh,) = passes(
        data.load(name, batch_size=16, with_labels=True, seed=0, epoch=fresh_epoch, **options),
        fresh_epoch,
        [1],
    )
    np.testing.assert_array_equal(fresh[0], one[0])
    np.testing.assert_array_equal(fresh[1], one[1])


# ---------------------------------------------------------------------------------------------
# info().


def test_info(idx_dir, offline):
    toy = data.info("toy", idx_dir=idx_dir, data_dir=offline["data_dir"])
    assert toy.image_shape == (6, 5, 1) and toy.num_classes == NUM_CLASSES
    assert toy.num_examples == {"train": 50, "test": 20} and toy.source.startswith("idx:")
    assert toy.class_names is None  # IDX files hold no names, and "toy" is in no table
    arrays = data.info((np.zeros((7, 3, 3, 3), np.float32), np.arange(7) % 2))
    assert arrays.image_shape == (3, 3, 3) and arrays.num_classes == 2
    assert arrays.class_names is None
    cifar = data.info("cifar10", data_dir=offline["data_dir"])  # not prepared: from TFDS code
    assert cifar.image_shape == (32, 32, 3) and cifar.num_classes == 10 and cifar.source == "tfds"
    # TFDS' code numbers cifar10's classes until it is prepared; the names come with the data.
    assert cifar.class_names == tuple(str(label) for label in range(10))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "kmnist"])
def test_info_class_names_of_idx_files(tmp_path, offline, name):
    tfds_names = tfds.builder(name, data_dir=offline["data_dir"]).info.features["label"].names
    ten_classes = write_idx_dir(tmp_path / "ten" / name, num_classes=10)
    described = data.info(name, idx_dir=ten_classes.parent, data_dir=offline["data_dir"])
    assert described.source == f"idx:{ten_classes}" and described.num_classes == 10
    assert described.class_names == tuple(tfds_names)  # the table names them as TFDS does
    assert all(isinstance(class_name, str) for class_name in described.class_names)
    # Files under the name that hold another labelling (4 classes) get no names.
    four_classes = write_idx_dir(tmp_path / "four" / name)
    other = data.info(name, idx_dir=four_classes, data_dir=offline["data_dir"])
    assert other.num_classes == NUM_CLASSES and other.class_names is None


def test_info_finds_the_data_load_finds(tmp_path, monkeypatch, offline):
    """info() describes the directory where load() finds the training split."""
    base = write_idx_dir(tmp_path / "base")
    subfolder = base / "toy"  # the dataset's own subfolder, more specific, with test files only
    subfolder.mkdir()
    write_idx(subfolder / "t10k-images-idx3-ubyte.gz", np.zeros((3, 6, 5), np.uint8))
    monkeypatch.setenv(data.ENV_VAR, str(base))
    assert data.load_numpy("toy", "train", **offline)[0].shape[0] == 50  # from base
    assert data.load_numpy("toy", "test", **offline)[0].shape[0] == 3  # from the subfolder
    described = data.info("toy", data_dir=offline["data_dir"])
    assert described.source == f"idx:{base}"
    assert described.num_examples == {"train": 50, "test": 20}
    # A directory of test files only: load() reads "test" there and info() describes it.
    test_only = write_idx_dir(tmp_path / "test_only", prefixes=("t10k",))
    monkeypatch.setenv(data.ENV_VAR, str(test_only))
    assert data.load_numpy("toy", "test", **offline)[0].shape[0] == 20
    described = data.info("toy", data_dir=offline["data_dir"])
    assert described.source == f"idx:{test_only}" and described.num_examples == {"test": 20}


def test_info_and_load_look_in_the_same_places(tmp_path, monkeypatch, offline):
    empty, missing, system = tmp_path / "empty", tmp_path / "missing", tmp_path / "system"
    empty.mkdir()
    monkeypatch.setenv(data.ENV_VAR, str(empty))
    monkeypatch.setitem(data.SYSTEM_IDX_DIRS, "no_such_set", (str(system),))
    with pytest.raises(data.DatasetNotFoundError) as loading:
        data.load_numpy("no_such_set", idx_dir=missing, **offline)
    with pytest.raises(data.DatasetNotFoundError) as describing:
        data.info("no_such_set", idx_dir=missing, data_dir=offline["data_dir"])
    assert describing.value.places == loading.value.places
    idx_place, tfds_place, env_place, system_place = loading.value.places
    assert idx_place == f"idx_dir: {missing} (no such directory)"
    assert tfds_place.startswith("TFDS: no dataset builder for 'no_such_set'")
    assert env_place == f"{data.ENV_VAR}={empty}: {empty} has no train-images-idx3-ubyte[.gz]"
    assert system_place == f"system directory: {system} (no such directory)"
    assert describing.value.split == loading.value.split == "train"


# ---------------------------------------------------------------------------------------------
# The real Fashion-MNIST files of Debian's package dataset-fashion-mnist.


@pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist(monkeypatch, offline):
    monkeypatch.setitem(data.SYSTEM_IDX_DIRS, "fashion_mnist", (str(DEBIAN_FASHION_MNIST),))
    x, y = data.load_numpy("fashion_mnist", "train", **offline)
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (60000,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.unique(y), np.arange(10))
    x_test, y_test = data.load_numpy("fashion_mnist", "test", **offline)
    assert x_test.shape == (10000, 28, 28, 1) and y_test.shape == (10000,)
    assert 0 <= y_test.min() and y_test.max() == 9
    ds = data.load("fashion_mnist", batch_size=1000, binarize="dynamic", seed=0, **offline)
    assert next(iter(ds)).shape == (1000, 28, 28, 1)
    info = data.info("fashion_mnist", data_dir=offline["data_dir"])
    assert info.num_examples == {"train": 60000, "test": 10000} and info.num_classes == 10
