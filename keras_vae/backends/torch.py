"""train_step/test_step for the PyTorch backend (mirrors keras' TorchTrainer)."""

import torch

from keras_vae.backends import _shared
from keras_vae.backends._shared import (  # noqa: F401 (re-exported)
    nan_rows_for_bad_labels,
    one_step_per_execution,
    random_normal,
    random_uniform,
    zero_unless_finite,
)


class TrainStep:
    def train_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        self.zero_grad()
        outputs, terms = self.compute_total_loss(x, y, sample_weight, training=True)
        loss = self.optimizer.scale_loss(terms["loss"])
        loss.backward()
        trainable_weights = self.trainable_weights[:]
        with torch.no_grad():
            gradients = zero_unless_finite(
                terms["loss"], [variable.value.grad for variable in trainable_weights]
            )
            self.optimizer.apply(gradients, trainable_weights)
            return self.update_metrics(x, y, sample_weight, outputs, terms)

    def test_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        with torch.no_grad():
            outputs, terms = self.compute_total_loss(x, y, sample_weight, training=False)
            return self.update_metrics(x, y, sample_weight, outputs, terms)

    def compiles_optimizer_update(self):
        """False: the optimizer update runs as Keras' torch optimizers write it."""
        return False


def no_grad():
    return torch.no_grad()


def native_conv_transpose_is_slow():
    return False


# Keras' torch trainer refuses steps_per_execution > 1.
AUTO_STEPS_PER_EXECUTION = 1
auto_steps_per_execution = one_step_per_execution


# ------------------------------------------------------- export (ONNX only from torch)
# Keras writes no SavedModel from torch (`export_model` refuses it first); these keep the
# interface of the other backends.
EXPORT_TRACKS_LAYERS = False


def serving_input_checks(fn, input_signature):
    return fn


checked_labels = nan_rows_for_bad_labels


datasets_must_keep_their_batch_size = _shared.datasets_never_sharded_by_batch_size
