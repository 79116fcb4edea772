"""Every private Keras API keras_vae uses, each with why it is needed and since which Keras 3.

Keras' public API cannot do these few things; the rest of keras_vae uses it alone: no other
module imports ``keras.src`` or reads an underscored Keras attribute. keras_vae requires
Keras >= 3.15.1 (pyproject.toml), where all of them were checked; "Keras 3.x+" is the first
Keras 3 release that has the name. When a release renames one, `missing()` names it and
tests/test_keras_compat.py fails with that name, so a new Keras breaks this file only.

Where keras_vae overrides a private Keras hook, the override stays beside the code it serves
(keras_vae/backends/tensorflow.py, keras_vae/backends/jax.py, keras_vae/models/cvae.py) and
`OVERRIDDEN_HOOKS` lists it here, with the arguments the override passes on, for `missing()`
to check.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable

import keras
from keras.src.backend.common import stateless_scope as _stateless_scope
from keras.src.backend.common.backend_utils import (
    _convert_conv_transpose_padding_args_from_keras_to_jax as _conv_transpose_padding,
)
from keras.src.losses.loss import scale_loss_for_distribution as _scale_loss_for_distribution

# (module, name, since) of every keras.src import below; `missing()` imports each again.
PRIVATE_IMPORTS = (
    ("keras.src.backend.common.backend_utils", "_convert_conv_transpose_padding_args_from_keras_to_jax", "3.6"),
    ("keras.src.backend.common.stateless_scope", "in_stateless_scope", "3.0"),
    ("keras.src.backend.common.stateless_scope", "get_stateless_scope", "3.0"),
    ("keras.src.losses.loss", "scale_loss_for_distribution", "3.8"),
)  # fmt: skip
# Imported only on TensorFlow, where the module (and TensorFlow) is loaded anyway.
TENSORFLOW_PRIVATE_IMPORTS = (
    ("keras.src.backend.tensorflow.trainer", "_collective_all_reduce_multi_worker", "3.0"),
)


# ----------------------------------------------------------------- functions of keras.src
def conv_transpose_padding(kernel_size, stride, dilation_rate, padding, output_padding):
    """Keras' own ``(left, right)`` padding of a transposed convolution axis (Keras 3.6+):
    `SubPixelConv2DTranspose` must place its taps where every backend's Conv2DTranspose does."""
    return _conv_transpose_padding(kernel_size, stride, dilation_rate, padding, output_padding)


def current_stateless_scope():
    """The active `keras.StatelessScope`, or None (Keras 3.0+; there is no public getter): a
    layer's metric update is kept only where the scope maps the metric's variables."""
    if not _stateless_scope.in_stateless_scope():
        return None
    return _stateless_scope.get_stateless_scope()


def scale_loss_for_distribution(loss):
    """Keras' per-replica loss scaling under ``tf.distribute`` (Keras 3.8+), so the TensorFlow
    step divides the loss by the replicas exactly as Keras' own TensorFlow trainer does."""
    return _scale_loss_for_distribution(loss)


def is_multi_worker(strategy) -> bool:
    """Keras' test for a ``MultiWorkerMirroredStrategy`` with several workers (Keras 3.0+),
    where Keras 3.15 reduces the step's logs along an axis (keras-team/keras#20585).
    TensorFlow backend only: the module imports TensorFlow."""
    from keras.src.backend.tensorflow.trainer import _collective_all_reduce_multi_worker

    return _collective_all_reduce_multi_worker(strategy)


# -------------------------------------------------------------- private model attributes
def loss_tracker(model: keras.Model) -> keras.metrics.Metric:
    """The `keras.metrics.Mean` behind the ``loss`` log (``Model._loss_tracker``, Keras 3.0+):
    a custom train step updates it, and Keras lists it first in ``model.metrics``."""
    return model._loss_tracker


def compile_metrics(model: keras.Model):
    """The metrics of ``compile(metrics=...)`` (``Model._compile_metrics``, Keras 3.0+), or
    None: the models build them before ``fit`` and score them on data-space outputs."""
    return model._compile_metrics


def save_compile_argument(model: keras.Model, name: str, value) -> None:
    """Replaces an argument in the compile config ``.keras`` files keep
    (``Model._compile_config``, Keras 3.0+): ``steps_per_execution="auto"`` is saved as
    ``"auto"``, not as the 1 Keras was given."""
    model._compile_config.config[name] = value


def distribute_strategy_at_creation(model: keras.Model):
    """The ``tf.distribute`` strategy the model was created under, or None
    (``Model._distribute_strategy``, Keras 3.0+, TensorFlow): the public
    ``distribute_strategy`` returns the default strategy where there is none."""
    return getattr(model, "_distribute_strategy", None)


def set_initial_epoch(model: keras.Model, epoch: int | None) -> None:
    """The epoch ``fit`` starts at, read after ``on_train_begin`` (``Model._initial_epoch``,
    Keras 3.1+): how Keras' own BackupAndRestore resumes; None lets a later ``fit`` start at
    its ``initial_epoch`` again."""
    model._initial_epoch = epoch


def optimizer_built_on(optimizer) -> list:
    """The variables ``optimizer`` was built on, in its order (``_trainable_variables``,
    Keras 3.0+; no public getter): `Optimizer.stateless_apply` takes values and gradients for
    exactly these, and a JAX step of a model with several optimizers maps a phase's
    gradients onto them (None, which Keras skips, for variables the phase does not step)."""
    return list(optimizer._trainable_variables)


def sublayers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer inside ``model``, at any depth (``Layer._flatten_layers``, Keras 3.0+):
    ``model.layers`` misses layers held inside other layers."""
    return model._flatten_layers(include_self=False, recursive=True)


# Keyword argument ``fit`` passes to ``evaluate`` for its validation (Keras 3.0+): the
# validation data are then the ones fit already checked.
FIT_VALIDATION_KWARG = "_use_cached_eval_dataset"


def is_fit_validation(evaluate_kwargs: dict) -> bool:
    """Whether an ``evaluate`` call is ``fit``'s validation run (see `FIT_VALIDATION_KWARG`)."""
    return bool(evaluate_kwargs.get(FIT_VALIDATION_KWARG))


def tensorboard_profile_start(callback: keras.callbacks.TensorBoard) -> int:
    """The batch at which a `keras.callbacks.TensorBoard` starts profiling, 0 for none
    (``TensorBoard._start_batch``, Keras 3.0+): profiling counts every batch."""
    return getattr(callback, "_start_batch", 0)


# The compiled functions Keras keeps on the model (Keras 3.0+): ``make_train_function`` and the
# others return the kept one and build a new one where it is None. Undocumented, though not
# underscored; `keras_vae.models._execution` swaps them to keep one per steps_per_execution.
STEP_FUNCTIONS = ("train_function", "test_function", "predict_function")


def step_functions(model: keras.Model) -> tuple:
    """The model's kept ``(train_function, test_function, predict_function)``."""
    return tuple(getattr(model, name) for name in STEP_FUNCTIONS)


def set_step_functions(model: keras.Model, functions: Iterable) -> None:
    """Puts ``functions`` (as `step_functions` returns them; None: build anew) on the model."""
    for name, function in zip(STEP_FUNCTIONS, functions, strict=True):
        setattr(model, name, function)


# Attributes Keras' JAX loops set on the model after every batch (Keras 3.1+): the new state
# (a dict of lists of arrays) and whether the variables hold it. keras_vae sets them without
# Keras' attribute tracker, which walked the whole dict on every step.
JAX_LOOP_STATE_ATTRIBUTES = frozenset({"_jax_state", "_jax_state_synced"})


def set_jax_loop_state(model: keras.Model, state: dict) -> None:
    """Stores ``state`` where Keras' ``jax_state_sync`` writes it back into the variables."""
    object.__setattr__(model, "_jax_state", state)


def unsynced_jax_optimizer_state(model: keras.Model) -> list | None:
    """The optimizer values of Keras' JAX loop state that ``jax_state_sync`` has yet to write
    back, or None: a model with several optimizers writes back the part Keras does not (Keras
    writes ``model.optimizer``'s alone)."""
    state = getattr(model, "_jax_state", None)
    if not state or getattr(model, "_jax_state_synced", True):
        return None
    return state.get("optimizer_variables") or None


# ------------------------------------------------------------------ overridden hooks
# backend -> {hook: arguments the override passes on}, for the private Keras methods that
# keras_vae overrides (or calls from an override) and where each override lives.
OVERRIDDEN_HOOKS = {
    "tensorflow": {
        # backends/tensorflow.py: builds from one replica's batch (Keras 3.5+).
        "_maybe_symbolic_build": ("iterator", "data_batch"),
        # models/cvae.py: no default signature, the export writes its own (Keras 3.0+).
        "_default_save_signature": (),
    },
    "jax": {
        # backends/jax.py: keep the state Keras purges from the variables (Keras 3.1+) ...
        "_get_jax_state": (
            "trainable_variables",
            "non_trainable_variables",
            "optimizer_variables",
            "metrics_variables",
            "purge_model_variables",
        ),
        "_purge_model_variables": (
            "trainable_variables",
            "non_trainable_variables",
            "optimizer_variables",
            "metrics_variables",
        ),
        # ... and each step's new state in a multi-step call (Keras 3.7+). The loop state holds
        # every phase optimizer's variables (models with several optimizers), written back
        # (jax_state_sync, Keras 3.0+) and sharded (checked on Keras 3.15) like
        # model.optimizer's.
        "_make_function": ("step_function", "concatenate_outputs"),
        "jax_state_sync": (),
        "_get_state_sharding_spec": (),
    },
}


# ---------------------------------------------------------------------------- the check
def _source(function: Callable) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def missing(backend: str | None = None) -> list[str]:
    """What this module relies on that the installed Keras lacks, one line each (empty: all
    present). Checks the running backend's hooks; builds and compiles a one-layer model."""
    backend = backend or keras.backend.backend()
    problems = []
    imports = PRIVATE_IMPORTS + (TENSORFLOW_PRIVATE_IMPORTS if backend == "tensorflow" else ())
    for module_name, name, since in imports:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            problems.append(f"module {module_name} (Keras {since}+) is gone: {error}")
            continue
        if not hasattr(module, name):
            problems.append(f"{module_name}.{name} (Keras {since}+) is gone")

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    attributes = {
        "Model._loss_tracker": lambda: isinstance(model._loss_tracker, keras.metrics.Metric),
        "Model._compile_metrics": lambda: model._compile_metrics is not None,
        "Model._compile_config": lambda: "steps_per_execution" in model._compile_config.config,
        "Model._initial_epoch": lambda: "_initial_epoch" in vars(model),
        "Layer._flatten_layers": lambda: model.layers[-1] in sublayers(model),
        "Optimizer._trainable_variables": lambda: (
            model.optimizer.build(model.trainable_variables) is None
            and [id(v) for v in optimizer_built_on(model.optimizer)]
            == [id(v) for v in model.trainable_variables]
        ),
        "TensorBoard._start_batch": lambda: "_start_batch" in vars(keras.callbacks.TensorBoard()),
    }
    for name in STEP_FUNCTIONS:
        attributes[f"Model.{name}"] = lambda name=name: name in vars(model)
    if backend == "tensorflow":
        attributes["Model._distribute_strategy"] = lambda: "_distribute_strategy" in vars(model)
    for name, present in attributes.items():
        try:
            ok = present()
        except Exception as error:  # an AttributeError, or whatever a changed API raises
            ok, name = False, f"{name} ({type(error).__name__}: {error})"
        if not ok:
            problems.append(f"{name} is gone or changed")

    # Keras' loops must still read and write what keras_vae hands them.
    reads = {
        "Model.fit reads Model._initial_epoch": (keras.Model.fit, "self._initial_epoch"),
        f"Model.fit passes {FIT_VALIDATION_KWARG} to evaluate": (
            keras.Model.fit,
            FIT_VALIDATION_KWARG,
        ),
        "Model.make_train_function returns the kept train_function": (
            keras.Model.make_train_function,
            "self.train_function",
        ),
    }
    if backend == "jax":
        for name in sorted(JAX_LOOP_STATE_ATTRIBUTES):
            reads[f"Keras' JAX fit loop sets {name}"] = (keras.Model.fit, f"self.{name} =")
    for description, (function, text) in reads.items():
        if text not in _source(function):
            problems.append(f"{description}: no longer in Keras' code")

    for hook, arguments in OVERRIDDEN_HOOKS.get(backend, {}).items():
        method = getattr(keras.Model, hook, None)
        if method is None:
            problems.append(f"Model.{hook} (overridden by keras_vae on {backend}) is gone")
            continue
        if isinstance(method, property):
            continue
        parameters = inspect.signature(method).parameters
        absent = [name for name in arguments if name not in parameters]
        if absent:
            problems.append(f"Model.{hook} no longer takes {absent}")
    return problems
