"""keras_vae._keras_compat: every private Keras API keras_vae uses is there, and used only there."""

import ast
import inspect
import io
import os
import tokenize

import keras
import pytest
from conftest import BACKEND, ROOT

import keras_vae
from keras_vae import _keras_compat, backends
from keras_vae.models import MODELS, BaseAutoencoder

# Private Keras names (besides `keras.src`) that only keras_vae/_keras_compat.py may use.
_PRIVATE_KERAS_NAMES = (
    "_compile_config",
    "_compile_metrics",
    "_loss_tracker",
    "_distribute_strategy",
    "_initial_epoch",
    "_flatten_layers",
    "_start_batch",
    "_use_cached_eval_dataset",
    "_collective_all_reduce_multi_worker",
    "_convert_conv_transpose_padding_args",
    "stateless_scope",
    "_jax_state",
    "_jax_state_synced",
)


def test_every_private_keras_api_keras_vae_uses_is_there():
    problems = _keras_compat.missing()
    assert not problems, (
        f"Keras {keras.__version__} ({BACKEND}) lacks private APIs that keras_vae uses; "
        "update keras_vae/_keras_compat.py:\n  " + "\n  ".join(problems)
    )


def test_a_removed_import_is_named(monkeypatch):
    import keras.src.losses.loss

    monkeypatch.delattr(keras.src.losses.loss, "scale_loss_for_distribution")
    assert _keras_compat.missing() == [
        "keras.src.losses.loss.scale_loss_for_distribution (Keras 3.8+) is gone"
    ]


@pytest.mark.skipif(not _keras_compat.OVERRIDDEN_HOOKS.get(BACKEND), reason="no hooks here")
def test_a_removed_or_changed_hook_is_named(monkeypatch):
    hook, arguments = next(
        (hook, arguments)
        for hook, arguments in _keras_compat.OVERRIDDEN_HOOKS[BACKEND].items()
        if arguments
    )
    owner = next(klass for klass in keras.Model.__mro__ if hook in vars(klass))
    monkeypatch.setattr(owner, hook, lambda self: None)
    assert _keras_compat.missing() == [f"Model.{hook} no longer takes {list(arguments)}"]
    monkeypatch.delattr(owner, hook)
    assert _keras_compat.missing() == [
        f"Model.{hook} (overridden by keras_vae on {BACKEND}) is gone"
    ]


def test_a_removed_attribute_is_named(monkeypatch):
    original = keras.Model.compile

    def compile_without_tracker(self, *args, **kwargs):
        original(self, *args, **kwargs)
        del self._loss_tracker

    monkeypatch.setattr(keras.Model, "compile", compile_without_tracker)
    (problem,) = _keras_compat.missing()
    assert problem.startswith("Model._loss_tracker (AttributeError")


def _keras_vae_sources():
    package = os.path.dirname(keras_vae.__file__)
    for folder, _, files in os.walk(package):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    yield os.path.relpath(path, ROOT), handle.read()


def _private_keras_uses(source):
    """``(line, name)`` where code uses a name of `_PRIVATE_KERAS_NAMES`: as a name, as
    ``keras.src``, or as a string of its own (``getattr(obj, "_name")``); prose is fine."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)]
    for index, token in enumerate(tokens):
        if token.type == tokenize.NAME and token.string in _PRIVATE_KERAS_NAMES:
            yield token.start[0], token.string
        elif token.type == tokenize.STRING:
            try:
                value = ast.literal_eval(token.string)
            except (ValueError, SyntaxError):
                continue
            if value in _PRIVATE_KERAS_NAMES:
                yield token.start[0], value
        elif token.string == "keras" and [t.string for t in tokens[index + 1 : index + 3]] == [
            ".",
            "src",
        ]:
            yield token.start[0], "keras.src"


def test_no_other_module_uses_a_private_keras_name():
    found = [
        f"{path}:{line}: {name}"
        for path, source in _keras_vae_sources()
        if path != os.path.join("keras_vae", "_keras_compat.py")
        for line, name in _private_keras_uses(source)
    ]
    assert not found, "Private Keras API outside keras_vae/_keras_compat.py:\n" + "\n".join(found)


def test_the_source_check_sees_code_but_not_prose():
    source = (
        '"""Mentions keras.src and _loss_tracker in prose."""\n'
        "from keras.src.losses import loss  # keras.src in a comment\n"
        "model._compile_metrics.build()\n"
        'getattr(callback, "_start_batch", 0)\n'
    )
    assert list(_private_keras_uses(source)) == [
        (2, "keras.src"),
        (3, "_compile_metrics"),
        (4, "_start_batch"),
    ]


def test_every_overridden_private_keras_method_is_listed():
    """An underscored method of a keras_vae model (or of the backend's train-step mixin) that
    Keras' Model also has overrides a private Keras hook: it must be in OVERRIDDEN_HOOKS (which
    also lists the private Keras methods those overrides call)."""
    classes = [*MODELS.values(), BaseAutoencoder, backends.TrainStep]
    overrides = set()
    for cls in classes:
        for klass in cls.__mro__:
            if klass.__module__.startswith("keras_vae"):
                overrides |= {
                    name
                    for name in vars(klass)
                    if name.startswith("_")
                    and not name.endswith("__")
                    and hasattr(keras.Model, name)
                }
    listed = set(_keras_compat.OVERRIDDEN_HOOKS.get(BACKEND, {}))
    assert overrides <= listed, f"add {sorted(overrides - listed)} to OVERRIDDEN_HOOKS"
    # The rest are private Keras methods an override calls.
    sources = "".join(inspect.getsource(inspect.getmodule(cls)) for cls in classes)
    assert all(f".{hook}(" in sources for hook in listed - overrides)
