"""keras_vae/__init__.py: its submodules are attributes, loaded on first use."""

import json
import pkgutil

import pytest
from conftest import run_python

import keras_vae


def test_every_public_submodule_is_an_attribute():
    for name in keras_vae._LAZY_SUBMODULES:
        assert getattr(keras_vae, name).__name__ == f"keras_vae.{name}"
        assert name in dir(keras_vae)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        keras_vae.nope  # noqa: B018
    # A new public module is imported by keras_vae/__init__.py or listed in _LAZY_SUBMODULES.
    public = {info.name for info in pkgutil.iter_modules(keras_vae.__path__)}
    public = {name for name in public if not name.startswith("_")}
    assert public <= set(dir(keras_vae)), sorted(public - set(dir(keras_vae)))


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_importing_keras_vae_loads_no_tfds_matplotlib_or_tensorflow(backend):
    report = run_python(
        """
        import json, sys
        import keras  # Keras itself imports matplotlib.pyplot where matplotlib is installed
        before = set(sys.modules)
        import keras_vae
        added = {name.split(".")[0] for name in set(sys.modules) - before}
        heavy = ("tensorflow", "tensorflow_datasets", "matplotlib")
        print(json.dumps({
            "loaded": sorted(name for name in heavy if name in sys.modules),
            "added": sorted(added),
            "lazy": sorted(name for name in keras_vae._LAZY_SUBMODULES
                           if f"keras_vae.{name}" in sys.modules),
        }))
        """,
        backend=backend,
    )
    report = json.loads(report.strip().splitlines()[-1])
    assert report["added"] == ["keras_vae"]
    assert "tensorflow" not in report["loaded"] and "tensorflow_datasets" not in report["loaded"]
    assert report["lazy"] == []
