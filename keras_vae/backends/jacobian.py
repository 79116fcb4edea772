"""Vector-Jacobian products of a layer's code with respect to its input, on every backend.

`squared_vjp_norms(layer, x, cotangents, training)` calls ``layer(x, training=training)``
and returns its outputs with, per example ``b``, ``sum_k ||J_b^T c_kb||^2``, where ``J_b`` is
the Jacobian of the first output (the code) of example ``b`` with respect to its input and
``c_kb`` the ``k``-th cotangent of example ``b``. With the unit vectors of the code space as
cotangents this is ``||J_b||_F^2`` exactly; with ``m`` standard-normal ones it is ``m`` times an
unbiased estimate of it (Hutchinson). `keras_vae.models.ContractiveAE` penalises it.

Each backend differentiates with its own tools, and the result is differentiable with respect
to the layer's weights (double backpropagation), so a model trains on it:

* TensorFlow: a `tf.GradientTape` watching ``x`` inside the train step's tape; one cotangent is
  one ``tape.gradient(code, x, output_gradients=c)``, several are one ``tape.jacobian`` of the
  projected codes (vectorised by ``pfor``).
* JAX: `jax.vjp` of the code with respect to ``x``, `jax.vmap`-ed over the cotangents, inside
  the stateless loss that `jax.value_and_grad` differentiates.
* PyTorch: ``torch.autograd.grad(code, x, cotangents, create_graph=True)``, batched over the
  cotangents (``is_grads_batched``); under ``torch.no_grad`` (``evaluate``) without the graph.

The layer is called once, as usual, so its own side effects (seed generators, batch
statistics, ``add_loss``) happen once. On JAX the Jacobian is taken of a second, side-effect
free evaluation from the state before that call (the same dropout mask and batch statistics).
That second forward pass is cheap next to the VJPs (one projection costs 1.4x an AE step on JAX
as on TensorFlow, where the pass is shared: ``benchmarks/contractive_cost.py``).

The VJP at example ``b`` is that of ``sum_b' <code_b', c_kb'>`` with respect to ``x_b``: the
per-example ``J_b^T c_kb`` when examples are encoded independently, but with cross-example
terms under batch statistics (`keras.layers.BatchNormalization` in training).
"""

import keras
from keras import ops

_BACKEND = keras.backend.backend()


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def _sum_of_squares(gradients):
    """``(K, B, ...)`` VJPs -> ``(B,)`` float32 sums of squares over cotangents and data."""
    gradients = ops.cast(gradients, "float32")
    axes = [0, *range(2, len(gradients.shape))]
    return ops.sum(ops.square(gradients), axis=axes)


if _BACKEND == "tensorflow":
    import tensorflow as tf

    def squared_vjp_norms(layer, x, cotangents, training=False):
        x = tf.convert_to_tensor(x)
        count = cotangents.shape[0]
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, training=training)
            code = _first(outputs)
            cotangents = tf.cast(cotangents, code.dtype)
            if count > 1:
                # One scalar per cotangent, <code, c_k> summed over the batch: its Jacobian
                # with respect to x holds the K VJPs, computed by pfor in one pass.
                projected = tf.reduce_sum(
                    code[None] * cotangents, axis=list(range(1, len(cotangents.shape)))
                )
        zero = tf.UnconnectedGradients.ZERO
        if count > 1:
            gradients = tape.jacobian(projected, x, unconnected_gradients=zero)
        else:
            gradients = tape.gradient(
                code, x, output_gradients=cotangents[0], unconnected_gradients=zero
            )[None]
        return outputs, _sum_of_squares(gradients)

elif _BACKEND == "jax":
    import jax

    def squared_vjp_norms(layer, x, cotangents, training=False):
        x = ops.convert_to_tensor(x)
        variables = list(layer.trainable_variables) + list(layer.non_trainable_variables)
        # The values before the call below (inside fit: the step's traced values).
        state = list(zip(variables, [variable.value for variable in variables]))

        def code_of(inputs):
            # A scope of its own: the side effects of this evaluation stay in it. Called before
            # the layer's own call, whose losses this call's entry would otherwise clear.
            with keras.StatelessScope(state_mapping=state):
                return _first(layer(inputs, training=training))

        code, vjp = jax.vjp(code_of, x)
        (gradients,) = jax.vmap(vjp)(ops.cast(cotangents, code.dtype))
        outputs = layer(x, training=training)
        return outputs, _sum_of_squares(gradients)

elif _BACKEND == "torch":
    import torch

    def squared_vjp_norms(layer, x, cotangents, training=False):
        differentiating = torch.is_grad_enabled()
        with torch.enable_grad():
            inputs = ops.convert_to_tensor(x).detach().requires_grad_(True)
            outputs = layer(inputs, training=training)
            code = _first(outputs)
            cotangents = ops.cast(cotangents, code.dtype)
            batched = cotangents.shape[0] > 1
            (gradients,) = torch.autograd.grad(
                code,
                inputs,
                cotangents if batched else cotangents[0],
                create_graph=differentiating,
                is_grads_batched=batched,
                allow_unused=True,
                materialize_grads=True,
            )
        if not batched:
            gradients = gradients[None]
        norms = _sum_of_squares(gradients)
        if not differentiating:
            outputs = keras.tree.map_structure(lambda tensor: tensor.detach(), outputs)
            norms = norms.detach()
        return outputs, norms

else:  # keras_vae.backends refuses other backends on import
    raise ImportError(f"keras_vae.backends.jacobian: unsupported backend {_BACKEND!r}")
