"""A .keras file saved on one backend loads and predicts the same on the others.

Runs once (in the TensorFlow leg of `make test`): each backend runs in its own process.
"""

import os

import numpy as np
import pytest
from conftest import run_python
from test_models import binary_data


@pytest.mark.slow
def test_a_keras_file_saved_on_one_backend_predicts_the_same_on_the_others(tmp_path):
    x, labels = binary_data(64)
    np.save(os.path.join(tmp_path, "x.npy"), x)
    np.save(os.path.join(tmp_path, "labels.npy"), labels)
    for source in ("tensorflow", "jax", "torch"):
        run_python(
            f"""
            import numpy as np, keras, keras_vae
            from keras_vae import VAE, CVAE, architectures
            x = np.load({os.path.join(tmp_path, "x.npy")!r})
            labels = np.load({os.path.join(tmp_path, "labels.npy")!r})
            vae = VAE(*architectures.conv((8, 8, 1), latent_dim=3, filters=(4, 8)), seed=0)
            vae.compile(optimizer="adam")
            images = x[:, :8].reshape(-1, 8, 1, 1).repeat(8, axis=2)
            vae.fit(images, epochs=1, batch_size=32, verbose=0)
            vae.save({os.path.join(tmp_path, "")!r} + "vae_{source}.keras")
            np.save({os.path.join(tmp_path, "")!r} + "vae_{source}.npy", vae.predict(images, verbose=0))
            """,
            backend=source,
        )
    for target in ("tensorflow", "jax", "torch"):
        sources = [b for b in ("tensorflow", "jax", "torch") if b != target]
        run_python(
            f"""
            import numpy as np, keras, keras_vae
            x = np.load({os.path.join(tmp_path, "x.npy")!r})
            images = x[:, :8].reshape(-1, 8, 1, 1).repeat(8, axis=2)
            for source in {sources!r}:
                model = keras.saving.load_model({os.path.join(tmp_path, "")!r} + f"vae_{{source}}.keras")
                expected = np.load({os.path.join(tmp_path, "")!r} + f"vae_{{source}}.npy")
                np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)
            """,
            backend=target,
        )
