"""Backend-agnostic pieces that more than one backend module uses."""

import functools
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import keras
from keras import ops


def nan_rows_for_bad_labels(labels, num_classes, fn):
    """``fn(labels)`` with rows whose label is outside ``[0, num_classes)`` set to NaN.

    For exported functions that cannot raise at run time (JAX code is traced into one XLA
    computation): the bad rows are computed on a clipped label, then replaced, so a caller sees
    NaN for exactly those rows and valid results for the others.
    """
    outputs = fn(ops.clip(labels, 0, num_classes - 1))
    valid = ops.logical_and(labels >= 0, labels < num_classes)
    return {
        name: ops.where(
            ops.reshape(valid, (-1,) + (1,) * (len(value.shape) - 1)), value, float("nan")
        )
        for name, value in outputs.items()
    }


def zero_unless_finite(loss, gradients):
    """``gradients``, or zeros where ``loss`` is NaN or inf: such a step puts no NaN into the
    weights (a `keras.callbacks.TerminateOnNaN` then stops a run with finite weights, and a
    backup holds no NaN). One ``where`` per gradient, fused into the step by XLA.
    """
    finite = ops.isfinite(loss)
    return [
        gradient if gradient is None else ops.where(finite, gradient, ops.zeros_like(gradient))
        for gradient in gradients
    ]


# Decoder rows per compiled call of the likelihood estimators. MLP 784-400-20, K=1000 on 1,000
# images, 2 CPU cores, GFLOP/s at 2,048 / 4,096 / 8,192 rows: TensorFlow 222 / 220 / 243 (each
# call of its graph has a fixed cost), JAX 261 / 256 / 265; torch: see its module.
INFERENCE_ROWS = 8192


def inference_rows() -> int:
    """Decoder rows per call of the likelihood estimators, at most."""
    return INFERENCE_ROWS


# Factors 1 + exp(-|l|) in (1, 2] multiplied per group before one log: 2**16 at most, far from
# float32's 2**128, and rounding adds about 6e-8 nats per pixel, as a log per pixel would.
BERNOULLI_GROUP = 16


def bernoulli_group(pixels: int) -> int:
    """The largest divisor of ``pixels`` up to `BERNOULLI_GROUP` (1 for a large prime)."""
    return max(g for g in range(1, min(BERNOULLI_GROUP, pixels) + 1) if pixels % g == 0)


def bernoulli_log_prob_elements(x, logits):
    """``x l - softplus(l)`` per pixel, as ``-(max(l, 0) - l x + log1p(exp(-|l|)))``: stable for
    any logit, without softplus's guards (2.8x faster than softplus under JAX, 2.3x under
    torch, the same under TensorFlow, on 6,400 x 784 logits and 2 CPU cores)."""
    return -(ops.maximum(logits, 0.0) - logits * x + ops.log1p(ops.exp(-ops.abs(logits))))


def bernoulli_log_prob_sum(x, logits):
    """``sum_d x_d l_d - softplus(l_d)``: log p(x | z) of Bernoulli logits, per sample.

    ``x`` is ``(batch, 1, pixels)`` and ``logits`` ``(batch, samples, pixels)``, float32;
    returns ``(batch, samples)``. The estimators' inference kernel (no gradient is taken):
    ``softplus(l) = max(l, 0) + log(1 + exp(-|l|))``, whose logs are taken once per
    `bernoulli_group` pixels as the log of a product, and ``sum_d x_d l_d`` as a batched
    matrix product. TensorFlow runs it under XLA, 2.8x faster than `bernoulli_log_prob_elements`
    op by op (8,192 x 784 logits, 2 CPU cores); JAX and torch have faster forms of their own.
    """
    batch, samples, pixels = logits.shape
    group = bernoulli_group(pixels)
    factors = ops.reshape(1.0 + ops.exp(-ops.abs(logits)), (batch, samples, pixels // group, group))
    log_terms = ops.sum(ops.log(ops.prod(factors, axis=-1)), axis=-1)
    x_dot_l = ops.squeeze(ops.matmul(logits, ops.swapaxes(x, 1, 2)), axis=-1)
    return x_dot_l - ops.sum(ops.maximum(logits, 0.0), axis=-1) - log_terms


def random_normal(shape, seed_generator, dtype="float32"):
    """Standard-normal noise from ``seed_generator`` (JAX and torch: `keras.random.normal`).

    Under JAX's `keras.distribution.DataParallel` the draw has the global batch's shape and
    each device computes its own rows of it, so devices and processes get distinct noise.
    """
    return keras.random.normal(shape, seed=seed_generator, dtype=dtype)


def random_uniform(shape, seed_generator, dtype="float32"):
    """Noise uniform in [0, 1) from ``seed_generator`` (JAX and torch: `keras.random.uniform`)."""
    return keras.random.uniform(shape, seed=seed_generator, dtype=dtype)


def datasets_never_sharded_by_batch_size():
    """False: no Keras distribution of this backend reads a tf.data batch size from the graph."""
    return False


def export_in_this_process(model, filepath, write, verbose=True, **kwargs):
    """SavedModel export on TensorFlow and JAX: ``write`` (keras_vae.export's writer) runs here."""
    write(model, filepath, verbose=verbose, **kwargs)


def one_step_per_execution(model):
    """``compile(steps_per_execution="auto")`` on backends where it stays at 1."""
    return 1


# ------------------------------------------------------------------- training phases
class TrainingPhase(NamedTuple):
    """One optimizer step of a training batch (see `PhasedTraining.training_phases`).

    ``loss(x, y, sample_weight)`` runs the model in training mode and returns
    ``(outputs, terms)``: the decoder's outputs (or None) and a dict of float32 scalars whose
    ``"loss"`` the phase minimises; ``optimizer`` then steps ``variables`` (trainable
    variables of the model) on its gradient.
    """

    optimizer: Any
    variables: list
    loss: Callable


class PhasedTraining:
    """The training phases every backend's ``TrainStep`` runs, in order, per batch.

    A model states them in `training_phases`; the backend takes each phase's gradient and
    optimizer step in turn (a phase sees the variables as the phases before it left them),
    then logs the terms of all phases: ``"loss"`` the sum of theirs, the other terms as each
    phase returns them, the outputs of the first phase that has some for the compiled
    metrics. A model with one loss and one optimizer is the one-phase case, the default.
    """

    def training_phases(self) -> tuple[TrainingPhase, ...]:
        """One phase by default: ``self.optimizer`` on every trainable variable, minimising
        ``compute_total_loss``. A model with several optimizers returns one phase per step."""
        return (TrainingPhase(self.optimizer, self.trainable_variables, self._total_loss_phase),)

    def _phases_for_batch(self, x):
        """`training_phases`, with the model (and every phase optimizer) built first from the
        batch where it is not yet: Keras' TensorFlow loop builds a model whose encoder has no
        input shape only when it traces the train step, and a phase lists its variables
        before it runs."""
        if not self.built:
            first = x[0] if isinstance(x, (list, tuple)) else x
            self.build((None, *first.shape[1:]))
            build_phase_optimizers(self)
        return self.training_phases()

    def _total_loss_phase(self, x, y, sample_weight):
        return self.compute_total_loss(x, y, sample_weight, training=True)

    def make_train_function(self, force=False):
        """Keras' own, once every phase's optimizer is built (`build_phase_optimizers`):
        Keras builds ``self.optimizer`` alone before it makes the train function."""
        build_phase_optimizers(self)
        return super().make_train_function(force)


def phase_optimizers(model) -> list:
    """The distinct optimizers of ``model``'s training phases, ``model.optimizer`` first."""
    optimizers = [] if model.optimizer is None else [model.optimizer]
    for phase in model.training_phases():
        if phase.optimizer is not None and all(phase.optimizer is not o for o in optimizers):
            optimizers.append(phase.optimizer)
    return optimizers


def extra_optimizer_variables(model) -> list:
    """The variables of ``model``'s phase optimizers other than ``model.optimizer``, in the
    order of `phase_optimizers` (on JAX they follow ``model.optimizer.variables`` in the
    state Keras' loop threads)."""
    return [v for optimizer in phase_optimizers(model)[1:] for v in optimizer.variables]


def build_phase_optimizers(model) -> None:
    """Builds every phase optimizer on the variables of the phases it steps, in the model's
    order (the default phase: ``model.optimizer`` on every trainable variable, as Keras builds
    it), so each has its state before a train function is made, a ``.keras`` file or a backup
    is loaded, or Keras' JAX loop collects the state. Optimizers already built are left as
    they are (Keras builds ``model.optimizer`` on every trainable variable where the model is
    built only by ``fit``: its phases then pass no gradient for the rest)."""
    if model.optimizer is None or not model.built:
        return
    trainable = model.trainable_variables
    order = {id(variable): index for index, variable in enumerate(trainable)}
    phases = model.training_phases()
    for optimizer in phase_optimizers(model):
        if optimizer.built:
            continue
        stepped = {
            id(v): v for phase in phases if phase.optimizer is optimizer for v in phase.variables
        }
        variables = sorted(stepped.values(), key=lambda v: order.get(id(v), len(order)))
        optimizer.build(variables or trainable)


def merge_phase_results(results):
    """``(outputs, terms)`` of a batch from each phase's ``(outputs, terms)``: ``"loss"`` summed,
    the other terms and the first outputs that are not None kept."""
    if len(results) == 1:
        return results[0]
    outputs = next(
        (phase_outputs for phase_outputs, _ in results if phase_outputs is not None), None
    )
    terms = {}
    for _, phase_terms in results:
        terms.update(phase_terms)
    terms["loss"] = functools.reduce(
        operator.add, [phase_terms["loss"] for _, phase_terms in results]
    )
    return outputs, terms
