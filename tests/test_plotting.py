"""Tests for keras_vae.plotting: files written, figure structure, PCA, input validation."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from keras_vae import plotting  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _images(count, height=28, width=28, channels=1, seed=0):
    return np.random.default_rng(seed).random((count, height, width, channels)).astype("float32")


def _assert_png(path):
    assert path.is_file()
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def _picture(fig, axes_index=0):
    return np.asarray(fig.axes[axes_index].images[0].get_array())


# --------------------------------------------------------------------------- sample_grid


@pytest.mark.backend_independent
def test_sample_grid_tiles_grey_images_and_saves_png(tmp_path):
    path = tmp_path / "nested" / "dir" / "grid.png"
    fig = plotting.sample_grid(_images(10), ncols=4, path=path, title="Ten")
    _assert_png(path)
    assert len(fig.axes) == 1
    # 3 rows x 4 columns of 28x28 images with 1-pixel separators.
    assert _picture(fig).shape == (3 * 29 - 1, 4 * 29 - 1)
    assert fig.axes[0].get_title() == "Ten"
    assert fig.axes[0].images[0].get_cmap().name == "gray"


@pytest.mark.backend_independent
def test_sample_grid_flat_vectors_equal_square_images():
    images = _images(6)
    from_flat = _picture(plotting.sample_grid(images.reshape(6, 784), ncols=3))
    from_square = _picture(plotting.sample_grid(images, ncols=3))
    np.testing.assert_array_equal(from_flat, from_square)
    # The first tile is the first image; separators are white.
    np.testing.assert_allclose(from_square[:28, :28], images[0, ..., 0])
    np.testing.assert_array_equal(from_square[28, :], 1.0)


@pytest.mark.backend_independent
def test_sample_grid_rgb_uint8_and_clipping():
    rgb = (_images(5, 8, 8, 3) * 255).astype("uint8")
    picture = _picture(plotting.sample_grid(rgb, ncols=8))  # ncols shrinks to 5
    assert picture.shape == (8, 5 * 9 - 1, 3)
    np.testing.assert_allclose(picture[:8, :8], rgb[0] / 255.0, atol=1e-6)

    out_of_range = np.stack([np.full((4, 4), -1.0), np.full((4, 4), 2.0)])
    picture = _picture(plotting.sample_grid(out_of_range))
    assert picture.min() == 0.0 and picture.max() == 1.0
    assert plotting.sample_grid(out_of_range).axes[0].get_title() == "Samples (2 images)"


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "shape, message",
    [
        ((4, 10), "not a perfect square"),
        ((4, 8, 8, 2), "channels"),
        ((0, 8, 8), "at least one image"),
        ((16,), "shape"),
        ((2, 2, 8, 8, 1), "shape"),
    ],
)
def test_sample_grid_rejects_bad_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        plotting.sample_grid(np.zeros(shape))


@pytest.mark.backend_independent
def test_sample_grid_rejects_bad_ncols():
    with pytest.raises(ValueError, match="ncols"):
        plotting.sample_grid(_images(4), ncols=0)


def test_sample_grid_accepts_backend_tensors():
    import keras

    images = _images(4)
    picture = _picture(plotting.sample_grid(keras.ops.convert_to_tensor(images), ncols=2))
    np.testing.assert_allclose(picture[:28, :28], images[0, ..., 0])


# --------------------------------------------------------------------------- reconstruction_pairs


@pytest.mark.backend_independent
def test_reconstruction_pairs_two_rows(tmp_path):
    x = _images(12)
    path = tmp_path / "pairs.png"
    fig = plotting.reconstruction_pairs(x, 1.0 - x, n=5, path=path)
    _assert_png(path)
    assert len(fig.axes) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["Input", "Reconstruction"]
    assert _picture(fig, 0).shape == (28, 5 * 29 - 1)
    np.testing.assert_allclose(_picture(fig, 1)[:, :28], 1.0 - x[0, ..., 0], atol=1e-6)


@pytest.mark.backend_independent
def test_reconstruction_pairs_three_rows_for_dae():
    x = _images(3)
    fig = plotting.reconstruction_pairs(x, x, noisy=_images(3, seed=1), n=8)
    assert [ax.get_ylabel() for ax in fig.axes] == ["Input", "Noisy input", "Reconstruction"]
    assert _picture(fig, 1).shape == (28, 3 * 29 - 1)  # n clamps to the 3 examples


@pytest.mark.backend_independent
def test_reconstruction_pairs_validates_batches():
    with pytest.raises(ValueError, match="`reconstructions` has 3 images but `inputs` has 4"):
        plotting.reconstruction_pairs(_images(4), _images(3))
    with pytest.raises(ValueError, match="`noisy` images have shape"):
        plotting.reconstruction_pairs(_images(4), _images(4), noisy=_images(4, 14, 14))
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        plotting.reconstruction_pairs(_images(4), _images(4), n=0)


# --------------------------------------------------------------------------- latent_scatter


@pytest.mark.backend_independent
def test_latent_scatter_two_dims_with_legend(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2))
    labels = np.repeat([0, 1, 2], 20)
    path = tmp_path / "scatter.png"
    fig = plotting.latent_scatter(z, labels, path=path, class_names=["zero", "one", "two"])
    _assert_png(path)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z[0]", "z[1]")
    assert ax.get_title() == "Latent space"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "two"]
    np.testing.assert_allclose(ax.collections[1].get_offsets(), z[20:40])


@pytest.mark.backend_independent
def test_latent_scatter_projects_with_pca():
    rng = np.random.default_rng(1)
    # Variance 9, 4, 1, 0.01 along the axes: two components explain 13 / 14.01 of it.
    z = rng.normal(size=(2000, 4)) * np.array([3.0, 2.0, 1.0, 0.1])
    fig = plotting.latent_scatter(z, rng.integers(0, 10, 2000))
    title = fig.axes[0].get_title()
    assert "PCA of 4-D codes" in title and "of variance explained" in title
    assert fig.axes[0].get_xlabel().startswith("PC 1 (")

    projection, ratio = plotting._pca(z, 2)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(z, rowvar=False)))[::-1]
    np.testing.assert_allclose(ratio, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-10)
    np.testing.assert_allclose(projection.var(axis=0, ddof=1), eigenvalues[:2], rtol=1e-10)
    assert f"{ratio.sum():.1%}" in title
    # The first component is the first axis (largest loading positive, so the sign is fixed).
    assert np.corrcoef(projection[:, 0], z[:, 0])[0, 1] > 0.99


@pytest.mark.backend_independent
def test_latent_scatter_continuous_labels_get_a_colorbar_and_tuple_input():
    rng = np.random.default_rng(2)
    z_mean, z_log_var = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    fig = plotting.latent_scatter((z_mean, z_log_var), rng.random(50))
    assert len(fig.axes) == 2  # scatter + colorbar
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), z_mean)


@pytest.mark.backend_independent
def test_latent_scatter_errors():
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match="at least 2 latent dimensions"):
        plotting.latent_scatter(np.zeros((10, 1)))
    with pytest.raises(ValueError, match="`labels` has 9 entries but `z` has 10"):
        plotting.latent_scatter(z, np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="`class_names` has 2 names"):
        plotting.latent_scatter(z, np.arange(10) % 3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        plotting.latent_scatter(np.zeros(10))


# --------------------------------------------------------------------------- latent_manifold


def _position_decoder(z):
    """4x4 images whose pixel (0, 0) encodes z[0] and pixel (0, 1) encodes z[1] in [-3, 3]."""
    images = np.zeros((len(z), 4, 4), dtype="float32")
    images[:, 0, 0] = (z[:, 0] + 3.0) / 6.0
    images[:, 0, 1] = (z[:, 1] + 3.0) / 6.0
    return images


class _FakeModel:
    def __init__(self, latent_shape=(2,), num_classes=None):
        self.latent_shape = latent_shape
        if num_classes is not None:
            self.num_classes = num_classes
        self.decoded_labels = None

    def decode(self, z, labels=None):
        self.decoded_labels = labels
        return _position_decoder(np.asarray(z))


@pytest.mark.backend_independent
def test_latent_manifold_grid_orientation(tmp_path):
    path = tmp_path / "manifold.png"
    fig = plotting.latent_manifold(_position_decoder, n=5, extent=3.0, path=path)
    _assert_png(path)
    picture = _picture(fig)
    assert picture.shape == (5 * 5 - 1, 5 * 5 - 1)
    # Top-left cell: z = (-3, +3); bottom-right cell: z = (+3, -3).
    assert picture[0, 0] == pytest.approx(0.0) and picture[0, 1] == pytest.approx(1.0)
    assert picture[20, 20] == pytest.approx(1.0) and picture[20, 21] == pytest.approx(0.0)
    # Middle cell is z = (0, 0).
    assert picture[10, 10] == pytest.approx(0.5) and picture[10, 11] == pytest.approx(0.5)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z[0]", "z[1]")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-3", "-1.5", "0", "1.5", "3"]


@pytest.mark.backend_independent
def test_latent_manifold_quantile_spacing():
    fig = plotting.latent_manifold(_position_decoder, n=7, extent=2.0, spacing="quantile")
    first_row = _picture(fig)[0, 0::5] * 6.0 - 3.0  # z[0] of the 7 cells of the top row
    np.testing.assert_allclose(first_row[[0, -1]], [-2.0, 2.0], atol=1e-5)
    np.testing.assert_allclose(first_row, -first_row[::-1], atol=1e-5)
    steps = np.diff(first_row)
    assert steps[3] < steps[0]  # denser near 0 than at the edges


@pytest.mark.backend_independent
def test_latent_manifold_uses_model_decode_and_cvae_label():
    model = _FakeModel()
    assert _picture(plotting.latent_manifold(model, n=3)).shape == (14, 14)

    cvae = _FakeModel(num_classes=10)
    with pytest.raises(ValueError, match="pass `label=`"):
        plotting.latent_manifold(cvae, n=3)
    plotting.latent_manifold(cvae, n=3, label=7)
    np.testing.assert_array_equal(cvae.decoded_labels, np.full(9, 7))


@pytest.mark.backend_independent
def test_latent_manifold_errors():
    with pytest.raises(ValueError, match=r"2-D latent space; this model has latent_shape \(16,\)"):
        plotting.latent_manifold(_FakeModel(latent_shape=(16,)))
    with pytest.raises(ValueError, match="spacing"):
        plotting.latent_manifold(_position_decoder, spacing="log")
    with pytest.raises(ValueError, match="`n` must be at least 2"):
        plotting.latent_manifold(_position_decoder, n=1)
    with pytest.raises(ValueError, match="returned 1 images for 4 codes"):
        plotting.latent_manifold(lambda z: np.zeros((1, 4, 4)), n=2)
    with pytest.raises(TypeError, match="must be a keras_vae model"):
        plotting.latent_manifold("decoder")


def test_latent_manifold_checks_keras_decoder_input():
    import keras

    decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(16, activation="sigmoid")])
    with pytest.raises(ValueError, match="decoder of 2-D codes"):
        plotting.latent_manifold(decoder)


# --------------------------------------------------------------------------- class_conditional_grid


class _FakeCVAE:
    num_classes = 3
    conditional = generative = True  # what keras_vae models declare

    def __init__(self):
        self.calls = []

    def generate(self, labels, seed=None):
        self.calls.append((np.asarray(labels), seed))
        return np.broadcast_to(
            (np.asarray(labels, dtype="float32") / 2.0)[:, None, None, None], (len(labels), 6, 6, 1)
        )


@pytest.mark.backend_independent
def test_class_conditional_grid(tmp_path):
    model = _FakeCVAE()
    path = tmp_path / "classes.png"
    fig = plotting.class_conditional_grid(
        model, n_per_class=4, seed=5, path=path, class_names=["a", "b", "c"]
    )
    _assert_png(path)
    labels, seed = model.calls[0]
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    assert seed == 5
    picture = _picture(fig)
    assert picture.shape == (3 * 7 - 1, 4 * 7 - 1)
    np.testing.assert_allclose(picture[[0, 7, 14], 0], [0.0, 0.5, 1.0])  # one class per row
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]


@pytest.mark.backend_independent
def test_class_conditional_grid_errors():
    with pytest.raises(ValueError, match="needs a conditional model"):
        plotting.class_conditional_grid(_FakeModel())
    with pytest.raises(ValueError, match="`class_names` has 2 names but the model has 3"):
        plotting.class_conditional_grid(_FakeCVAE(), class_names=["a", "b"])


# --------------------------------------------------------------------------- loss_curves


@pytest.mark.backend_independent
def test_loss_curves_from_dict_and_history(tmp_path):
    history = {
        "loss": [5.0, 3.0, 2.0],
        "reconstruction_loss": [4.5, 2.5, 1.5],
        "kl_loss": [0.5, 0.5, 0.5],
        "val_loss": [5.5, 3.5, 2.5],
        "kl_weight": [0.0, 0.5, 1.0],
    }
    path = tmp_path / "curves.png"
    fig = plotting.loss_curves(history, path=path)
    _assert_png(path)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "reconstruction_loss", "kl_loss"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 1, 1]
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(fig.axes[0].lines[1].get_ydata(), [5.5, 3.5, 2.5])
    assert fig.axes[0].get_xlabel() == "epoch"

    class FakeHistory:
        pass

    fake = FakeHistory()
    fake.history = history
    fig = plotting.loss_curves(fake, keys=["kl_weight"])
    assert [ax.get_title() for ax in fig.axes] == ["kl_weight"]


@pytest.mark.backend_independent
def test_loss_curves_errors():
    with pytest.raises(ValueError, match="different lengths"):
        plotting.loss_curves({"loss": [1.0, 2.0], "val_loss": [1.0]})
    with pytest.raises(ValueError, match="none of"):
        plotting.loss_curves({"accuracy": [1.0]})
    with pytest.raises(ValueError, match="not in `history`"):
        plotting.loss_curves({"loss": [1.0]}, keys=["kl_loss"])
    with pytest.raises(ValueError, match="no epochs"):
        plotting.loss_curves({"loss": []})
    with pytest.raises(ValueError, match="keras History or a dict"):
        plotting.loss_curves([1.0, 2.0])


@pytest.mark.backend_independent
def test_missing_matplotlib_gives_install_advice(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install \"keras-vae\[plot\]\""):
        plotting.sample_grid(_images(2))


# --------------------------------------------------------------------------- real models


def _binary_digits(count, seed=0):
    return (np.random.default_rng(seed).random((count, 28, 28, 1)) > 0.7).astype("float32")


def test_plots_of_a_trained_vae(tmp_path):
    import keras

    from keras_vae import VAE, architectures

    keras.utils.set_random_seed(0)
    x = _binary_digits(128)
    encoder, decoder = architectures.mlp(input_shape=(28, 28, 1), latent_dim=2, hidden_units=(32,))
    model = VAE(encoder, decoder)
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=64, verbose=0)

    fig = plotting.sample_grid(model.generate(16, seed=0), ncols=4, path=tmp_path / "samples.png")
    assert _picture(fig).shape == (4 * 29 - 1, 4 * 29 - 1)
    fig = plotting.reconstruction_pairs(x, model.reconstruct(x), n=6, path=tmp_path / "pairs.png")
    assert len(fig.axes) == 2
    labels = np.arange(128) % 4
    fig = plotting.latent_scatter(model.encode(x), labels, path=tmp_path / "scatter.png")
    np.testing.assert_allclose(
        fig.axes[0].collections[0].get_offsets(), model.encode(x)[0][labels == 0], rtol=1e-5
    )
    fig = plotting.latent_manifold(model, n=5, path=tmp_path / "manifold.png")
    assert _picture(fig).shape == (5 * 29 - 1, 5 * 29 - 1)
    fig = plotting.loss_curves(history, path=tmp_path / "curves.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "reconstruction_loss", "kl_loss"]
    for name in ("samples", "pairs", "scatter", "manifold", "curves"):
        _assert_png(tmp_path / f"{name}.png")

    wide = VAE(*architectures.mlp(input_shape=(28, 28, 1), latent_dim=3, hidden_units=(8,)))
    with pytest.raises(ValueError, match=r"latent_shape \(3,\)"):
        plotting.latent_manifold(wide)
    assert "PCA" in plotting.latent_scatter(wide.encode(x), labels).axes[0].get_title()


def test_plots_of_a_dae_and_a_cvae(tmp_path):
    # Untrained: the pictures only need the models' numpy API (which builds them).
    import keras

    from keras_vae import CVAE, DAE, architectures

    keras.utils.set_random_seed(0)
    x = _binary_digits(64).reshape(64, 784)
    dae = DAE(*architectures.mlp((784,), latent_dim=4, hidden_units=(16,), variational=False))
    fig = plotting.reconstruction_pairs(x, dae.reconstruct(x), noisy=dae.corrupt(x, seed=0), n=4)
    assert [ax.get_ylabel() for ax in fig.axes] == ["Input", "Noisy input", "Reconstruction"]

    encoder, decoder = architectures.mlp((16,), latent_dim=2, hidden_units=(8,), num_classes=3)
    cvae = CVAE(encoder, decoder, 3, condition_encoder=True, condition_decoder=True)
    fig = plotting.class_conditional_grid(cvae, n_per_class=5, path=tmp_path / "classes.png")
    _assert_png(tmp_path / "classes.png")
    assert _picture(fig).shape == (3 * 5 - 1, 5 * 5 - 1)  # 4x4 images
    with pytest.raises(ValueError, match="pass `label=`"):
        plotting.latent_manifold(cvae, n=3)
    assert _picture(plotting.latent_manifold(cvae, n=3, label=2)).shape == (14, 14)
