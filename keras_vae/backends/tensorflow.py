"""train_step/test_step for the TensorFlow backend (mirrors keras' TensorFlowTrainer)."""

import contextlib

import tensorflow as tf
from keras.src.losses.loss import scale_loss_for_distribution


class TrainStep:
    def train_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        with tf.GradientTape() as tape:
            outputs, terms = self.compute_total_loss(x, y, sample_weight, training=True)
            # Per-replica mean over global batch / replicas: gradients sum across replicas.
            loss = scale_loss_for_distribution(terms["loss"])
            loss = self.optimizer.scale_loss(loss)
        trainable_weights = self.trainable_weights
        gradients = tape.gradient(loss, trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, trainable_weights))
        return self.update_metrics(x, y, sample_weight, outputs, terms)

    def test_step(self, data):
        x, y, sample_weight = self.unpack_data(data)
        outputs, terms = self.compute_total_loss(x, y, sample_weight, training=False)
        return self.update_metrics(x, y, sample_weight, outputs, terms)


def no_grad():
    return contextlib.nullcontext()


def native_conv_transpose_is_slow():
    return False
