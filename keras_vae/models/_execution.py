"""``compile(steps_per_execution="auto")``: several training steps per call where nothing is lost.

Keras runs ``steps_per_execution`` batches per call of its compiled train function, which
spares the Python work of the fit loop per batch (on TensorFlow a ``tf.while_loop`` runs the
steps inside one graph call). The price is that batch-level callback hooks run once per call
(``on_*_batch_begin`` with the index of its first batch, ``on_*_batch_end`` with its last).
``"auto"`` takes the speed only where nobody can see that price: it uses the backend's
``AUTO_STEPS_PER_EXECUTION`` for a ``fit`` or ``evaluate`` call whose callbacks have no batch
hooks, or only hooks that are written for it, and 1 otherwise, so every callback is called
exactly as often as it would be with Keras' default of 1.
``predict`` always runs one batch per call (on TensorFlow Keras unrolls a multi-step predict
into one graph, a compilation cost for no gain).

The whole feature is here: `BaseAutoencoder.compile` passes Keras `keras_value(requested)` and
then calls `record`; ``fit``, ``evaluate`` and ``predict`` call `before_call` with their
callbacks; the backend gives its number (``keras_vae.backends.auto_steps_per_execution(model)``:
32 on TensorFlow, 1 on JAX and torch and under ``tf.distribute``), and a callback may declare
``needs_every_batch``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras

from keras_vae import _keras_compat, backends

AUTO = "auto"

_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
}


def check_requested(value: object) -> int | str:
    """``value`` if it is ``"auto"`` or a positive int, else a ValueError naming it."""
    if isinstance(value, str) and value == AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"`steps_per_execution` must be 'auto' or a positive integer, received {value!r}."
        )
    return int(value)


def keras_value(requested: int | str) -> int:
    """What Keras' ``compile`` gets: the integer, or 1 under ``"auto"`` until a call picks."""
    return 1 if requested == AUTO else requested


def record(model: keras.Model, requested: int | str) -> None:
    """After ``compile``: keeps the requested value (also in the compile config a ``.keras``
    file saves, so a loaded model is ``"auto"`` again) and drops the previous compile's kept
    functions (they belong to the old optimizer)."""
    model.__dict__.pop("_keras_vae_step_functions", None)
    model._steps_per_execution_requested = requested
    _keras_compat.save_compile_argument(model, "steps_per_execution", requested)


def before_call(model: keras.Model, callbacks, phases: Sequence[str]) -> None:
    """Under ``"auto"``, sets the steps per execution of one call: ``fit`` (phases
    ``("train", "test")``), ``evaluate`` (``("test",)``) or ``predict`` (``()``: 1)."""
    if getattr(model, "_steps_per_execution_requested", None) != AUTO:
        return
    steps = backends.auto_steps_per_execution(model) if phases else 1
    use_steps_per_execution(model, resolve(callbacks, phases, steps))


def _overrides(callback: keras.callbacks.Callback, name: str) -> bool:
    """Whether ``callback.name`` is anything but `keras.callbacks.Callback`'s no-op (a method
    of a subclass, or a function set on the instance as `keras.callbacks.LambdaCallback` does)."""
    method = getattr(callback, name, None)
    return getattr(method, "__func__", method) is not getattr(keras.callbacks.Callback, name)


def _tolerates_multi_step(callback: keras.callbacks.Callback) -> bool:
    """Callbacks whose batch hooks are written for several batches per call."""
    declared = getattr(callback, "needs_every_batch", None)
    if declared is not None:
        return not declared
    callbacks = keras.callbacks
    if isinstance(callback, (callbacks.ProgbarLogger, callbacks.TerminateOnNaN)):
        return True  # a progress bar updated per call; NaN found at the end of the call
    if isinstance(callback, (callbacks.ModelCheckpoint, callbacks.BackupAndRestore)):
        return callback.save_freq in ("epoch", False)
    if isinstance(callback, callbacks.TensorBoard):
        profiles = _keras_compat.tensorboard_profile_start(callback)
        return callback.update_freq == "epoch" and not profiles
    return False


def any_needs_every_batch(callbacks, phases: Sequence[str]) -> bool:
    """Whether one of ``callbacks`` must see every batch of the given phases."""
    if callbacks is None:
        return False
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    hooks = [name for phase in phases for name in _HOOKS[phase]]
    return any(
        any(_overrides(callback, name) for name in hooks) and not _tolerates_multi_step(callback)
        for callback in callbacks
    )


def resolve(callbacks, phases: Sequence[str], auto_steps: int) -> int:
    """Steps per execution for one ``fit``/``evaluate`` call under ``"auto"``."""
    if auto_steps <= 1 or any_needs_every_batch(callbacks, phases):
        return 1
    return auto_steps


def use_steps_per_execution(model: keras.Model, steps: int) -> None:
    """Sets ``model.steps_per_execution``, keeping the compiled functions of each value.

    Keras builds its train/test/predict functions for the value at hand (TensorFlow traces the
    multi-step loop; JAX picks its multi-step iterator) and keeps one of each: switching back and
    forth between 1 and N would trace anew on every call. The functions are kept per value
    until the next ``compile``, which empties the cache (`record`).
    """
    if steps == model.steps_per_execution:
        return
    cache = model.__dict__.setdefault("_keras_vae_step_functions", {})
    cache[model.steps_per_execution] = _keras_compat.step_functions(model)
    model.steps_per_execution = steps
    _keras_compat.set_step_functions(model, cache.pop(steps, (None, None, None)))
