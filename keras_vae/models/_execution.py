"""``compile(steps_per_execution="auto")``: several training steps per call where nothing is lost.

Keras runs ``steps_per_execution`` batches per call of its compiled train function, which
spares the Python work of the fit loop per batch (on TensorFlow a ``tf.while_loop`` runs the
steps inside one graph call). The price is that batch-level callback hooks run once per call
(``on_*_batch_begin`` with the index of its first batch, ``on_*_batch_end`` with its last). ``"auto"`` takes the speed only where nobody can see
that price: it uses the backend's ``AUTO_STEPS_PER_EXECUTION`` for a ``fit`` or ``evaluate`` call
whose callbacks have no batch hooks, or only hooks that are written for it, and 1 otherwise,
so every callback is called exactly as often as it would be with Keras' default of 1.
``predict`` always runs one batch per call (on TensorFlow Keras unrolls a multi-step predict
into one graph, a compilation cost for no gain).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras

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
        return callback.update_freq == "epoch" and not getattr(callback, "_start_batch", 0)
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
    until the next ``compile``, which empties the cache.
    """
    if steps == model.steps_per_execution:
        return
    cache = model.__dict__.setdefault("_keras_vae_step_functions", {})
    cache[model.steps_per_execution] = (
        model.train_function,
        model.test_function,
        model.predict_function,
    )
    model.steps_per_execution = steps
    model.train_function, model.test_function, model.predict_function = cache.pop(
        steps, (None, None, None)
    )


def forget_step_functions(model: keras.Model) -> None:
    """Drops the kept functions (after ``compile``: they belong to the old optimizer)."""
    model.__dict__.pop("_keras_vae_step_functions", None)
