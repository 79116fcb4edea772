"""The TensorFlow training step of keras_vae's MLP VAE, taken apart, in one process.

    python -m benchmarks.step_parts          # = make bench-step-parts (~1 min on 2 cores)

Times, on one batch of 128 and in alternation (so a slow spell of a shared machine hits every
part alike), ``tf.function``s of: the model's forward pass and loss (``compute_total_loss``);
the same with gradients; Keras' Adam update alone, as Keras writes it and compiled with XLA
(what keras_vae's default runs on a CPU), and TensorFlow's own fused ``ResourceApplyAdam`` for
reference; and the whole ``train_step`` with the XLA update (``jit_compile="auto"``) and with
Keras' update (``jit_compile=False``). Prints milliseconds per call (median of the rounds) and
the CPU cores used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternations (median reported)")
    parser.add_argument("--calls", type=int, default=200, help="calls per part and round")
    return parser.parse_args(argv)


def parts(batch):
    """``{name: tf.function}`` of the step's parts, each on its own copy of the model."""
    import keras
    import tensorflow as tf

    from benchmarks import ours

    def model(jit_compile="auto"):
        keras.utils.set_random_seed(0)
        vae = ours.build("mlp", seed=0)[0]
        ours.compile_model(vae, jit_compile=jit_compile)
        vae.optimizer.build(vae.trainable_variables)
        return vae

    vae = model()
    variables = vae.trainable_variables

    def loss():
        # The model's own loss (reconstruction + KL, as its train_step computes it).
        return vae.compute_total_loss(batch, None, None, training=True)[1]["loss"]

    def gradients():
        with tf.GradientTape() as tape:
            value = loss()
        return tape.gradient(value, variables)

    fixed = [tf.random.normal(v.shape, stddev=1e-3) for v in variables]
    keras_adam, xla_adam = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    keras_adam.build(variables)
    xla_adam.build(variables)
    moments = [(tf.Variable(tf.zeros(v.shape)), tf.Variable(tf.zeros(v.shape))) for v in variables]

    def fused_adam():
        for variable, (m, v), gradient in zip(variables, moments, fixed):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.value.handle, m=m.handle, v=v.handle, beta1_power=0.9,
                beta2_power=0.999, lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7, grad=gradient,
            )  # fmt: skip

    default, plain = vae, model(jit_compile=False)
    return {
        "forward + loss": tf.function(loss),
        "forward + gradients": tf.function(gradients),
        "Keras' Adam update": tf.function(lambda: keras_adam.apply(fixed, variables)),
        "the same under XLA": tf.function(
            lambda: xla_adam.apply(fixed, variables), jit_compile=True
        ),
        "ResourceApplyAdam (TF's fused op)": tf.function(fused_adam),
        "train_step, keras_vae default": tf.function(lambda: default.train_step((batch,))),
        "train_step, jit_compile=False": tf.function(lambda: plain.train_step((batch,))),
    }


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import numpy as np
    import tensorflow as tf

    from benchmarks import common

    batch = tf.constant(np.random.default_rng(0).random((common.BATCH_SIZE, 784), "float32"))
    functions = parts(batch)
    for function in functions.values():
        for _ in range(10):
            function()
    timings = {name: [] for name in functions}
    for _ in range(args.rounds):
        for name, function in functions.items():
            start, cpu = time.perf_counter(), sum(os.times()[:2])
            for _ in range(args.calls):
                function()
            tf.constant(0.0).numpy()  # eager ops run in order: waits for the last call
            seconds = time.perf_counter() - start
            timings[name].append(
                (seconds / args.calls * 1e3, (sum(os.times()[:2]) - cpu) / seconds)
            )
    print(f"TensorFlow MLP VAE step parts, batch {common.BATCH_SIZE}, {common.cpu_model()}, "
          f"{common.cpu_count()} cores; median of {args.rounds} rounds of {args.calls} calls\n")  # fmt: skip
    print("| part | ms per call | cores |\n|---|---:|---:|")
    for name, values in timings.items():
        ms = statistics.median(v[0] for v in values)
        cores = statistics.median(v[1] for v in values)
        print(f"| {name} | {ms:.2f} | {cores:.2f} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
