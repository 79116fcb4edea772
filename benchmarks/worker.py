"""One benchmark row in its own process: train, time, score, print JSON.

A Keras backend is fixed per process, so `benchmarks.run` starts this module once per row with
``KERAS_BACKEND`` set (``torch`` for the plain PyTorch peer). Run it by hand to try a setting:

    KERAS_BACKEND=jax python -m benchmarks.worker --impl ours --arch mlp --epochs 2 \
        --steps-per-execution 10
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

PROCESS_START = time.perf_counter()

IMPLEMENTATIONS = ("ours", "keras_add_loss", "keras_example", "pytorch_example")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, required=True)
    parser.add_argument("--arch", choices=("mlp", "conv"), required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=None, help="examples (default: all)")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    parser.add_argument(
        "--steps-per-execution",
        type=lambda text: text if text == "auto" else int(text),
        default=None,
        help="an int, or 'auto' (keras_vae only); default: each implementation's own "
        "(keras_vae: 'auto', the Keras peers: 1)",
    )
    parser.add_argument(
        "--input",
        choices=("numpy", "tfdata"),
        default="numpy",
        help="numpy arrays to fit (default) or a tf.data pipeline gathering batches from memory",
    )
    parser.add_argument(
        "--deconv",
        choices=("auto", "native", "subpixel"),
        default="auto",
        help="keras_vae's conv decoder: architectures.conv(deconv_implementation=...)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads per framework (default: all cores)"
    )
    parser.add_argument(
        "--raw-steps",
        type=int,
        default=0,
        help="after fit, also time this many bare train steps on one device-resident batch "
        "(no fit loop, no data pipeline): the cost of the step itself",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the JSON here (default: stdout)")
    return parser.parse_args(argv)


def _framework_versions(backend):
    import importlib.metadata as metadata

    versions = {}
    for name in ("keras", "tensorflow", "jax", "torch", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _accelerator(backend):
    """The accelerator this backend sees (None on CPU)."""
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            return None if device.platform == "cpu" else f"{device.platform}:{device.device_kind}"
        if backend == "torch":
            import torch

            return f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else None
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"gpu:{gpus[0].name}" if gpus else None
    except Exception as error:  # a broken driver must not lose the row
        return f"unknown ({error})"
    return None


def _tf_dataset(x, with_targets, seed):
    """Shuffled batches gathered from an in-memory tensor: one gather per batch, no per-example
    work, prefetched while the model trains."""
    import tensorflow as tf

    from benchmarks.common import BATCH_SIZE

    data = tf.constant(x)
    indices = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed)
    batches = indices.batch(BATCH_SIZE, drop_remainder=True)

    def gather(index):
        batch = tf.gather(data, index)
        return (batch, batch) if with_targets else batch

    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _limit_threads(threads):
    """Caps each framework's CPU thread pools at ``threads`` (before any of them is imported)."""
    if not threads:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    if os.environ.get("KERAS_BACKEND") == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _peak_accelerator_mb(backend):
    """Peak accelerator memory of this process in MiB, or None on CPU."""
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated() / 2**20
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                stats = device.memory_stats() or {}
                peak = stats.get("peak_bytes_in_use")
                return None if peak is None else peak / 2**20
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except Exception:  # memory statistics are best effort
        return None
    return None


def raw_step_throughput(model, batch, with_targets, steps, backend, jit_compile):
    """Examples/s of ``model.train_step`` called in a loop on one batch, outside ``fit``.

    The step is compiled the way ``fit`` compiles it (XLA on JAX; a ``tf.function``, with XLA
    when ``jit_compile``, on TensorFlow; eager on torch), so ``fit``'s throughput divided by this
    one is the share of the step time spent in the fit loop and the input pipeline.
    """
    from benchmarks import common

    data = (batch, batch) if with_targets else (batch,)
    run = common.step_runner(model, data, backend, jit_compile)
    run(3)  # compile and warm up
    start = time.perf_counter()
    run(steps)
    return steps * len(batch) / (time.perf_counter() - start)


def run_keras(args, backend, x_train, x_test, clock, info_after_eval):

    from benchmarks import common

    common.seed_everything(args.seed, backend)
    if args.impl == "ours":
        from benchmarks import ours as implementation
    elif args.impl == "keras_add_loss":
        from benchmarks.peers import keras_add_loss as implementation
    else:
        from benchmarks.peers import keras_example as implementation
    build_args = {"deconv_implementation": args.deconv} if args.impl == "ours" else {}
    model, encode, decode, output = implementation.build(args.arch, **build_args)
    jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    if args.steps_per_execution is None:
        implementation.compile_model(model, jit_compile)
    else:
        implementation.compile_model(model, jit_compile, args.steps_per_execution)

    steps_per_epoch = len(x_train) // common.BATCH_SIZE
    with_targets = args.impl == "keras_add_loss"  # fit(x, x): a loss compares output to target
    if args.input == "tfdata":
        fit_args = {"x": _tf_dataset(x_train, with_targets, args.seed)}
    else:
        fit_args = {"x": x_train, "batch_size": common.BATCH_SIZE, "shuffle": True}
        if with_targets:
            fit_args["y"] = x_train
    history = common.timed_keras_fit(model, clock, steps_per_epoch, **fit_args, epochs=args.epochs)
    if args.raw_steps:  # after the evaluation: JAX's donated buffers invalidate the variables
        info_after_eval["raw_step_examples_per_s"] = lambda: raw_step_throughput(
            model,
            x_train[: common.BATCH_SIZE],
            with_targets,
            args.raw_steps,
            backend,
            model.jit_compile,
        )
    info = {
        "final_train_loss": float(history.history["loss"][-1]),
        "jit_compile_resolved": bool(model.jit_compile),
        "steps_per_execution_resolved": model.steps_per_execution,  # the last fit's
        # Counted from the variables: a subclassed model that is never called is not "built".
        "parameters": sum(math.prod(v.shape) for v in model.trainable_variables),
    }
    return info, encode, decode, output, steps_per_epoch


def run_torch(args, x_train, x_test, clock):
    import torch

    from benchmarks import common
    from benchmarks.peers import pytorch_example

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, encode, decode, output = pytorch_example.build(args.arch, device=device)
    loss = pytorch_example.train(
        model, x_train, args.epochs, common.BATCH_SIZE, clock, seed=args.seed, device=device
    )
    model.eval()
    info = {
        "final_train_loss": float(loss),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return info, encode, decode, output, len(x_train) // common.BATCH_SIZE


def main(argv=None):
    args = parse_args(argv)
    from benchmarks import common

    backend = "torch" if args.impl == "pytorch_example" else os.environ.get("KERAS_BACKEND")
    backend = backend or "tensorflow"
    os.environ["KERAS_BACKEND"] = backend
    threads = args.threads or common.cpu_count()
    _limit_threads(args.threads)
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    if args.deconv != "auto" and args.impl != "ours":
        raise SystemExit("--deconv applies to keras_vae's rows only (--impl ours)")
    import_seconds = time.perf_counter() - PROCESS_START

    x_train, source = common.training_set(args.arch, args.train_size)
    x_test, _ = common.load_split("test")
    if args.arch == "mlp":
        x_test = common.flatten(x_test)

    clock = common.StepClock()
    after_eval = {}  # name -> measurement to run once the model has been scored
    if args.impl == "pytorch_example":
        info, encode, decode, output, steps_per_epoch = run_torch(args, x_train, x_test, clock)
    else:
        info, encode, decode, output, steps_per_epoch = run_keras(
            args, backend, x_train, x_test, clock, after_eval
        )
    total_steps = steps_per_epoch * args.epochs
    timing = clock.summary(total_steps, common.BATCH_SIZE, args.warmup_steps)
    eval_start = time.perf_counter()
    scores = common.negative_elbo(encode, decode, x_test, output)
    eval_seconds = time.perf_counter() - eval_start
    info.update({name: measure() for name, measure in after_eval.items()})
    result = {
        "impl": args.impl,
        "backend": backend,
        "arch": args.arch,
        "epochs": args.epochs,
        "train_examples": len(x_train),
        "batch_size": common.BATCH_SIZE,
        "jit_compile": args.jit_compile,
        "steps_per_execution": args.steps_per_execution,
        "input": args.input,
        "threads": args.threads,
        "deconv": args.deconv,
        "data_source": source,
        "accelerator": _accelerator(backend),
        "versions": _framework_versions(backend),
        "import_seconds": import_seconds,
        "eval_seconds": eval_seconds,
        "peak_rss_mb": common.peak_rss_mb(),
        "peak_accelerator_mb": _peak_accelerator_mb(backend),
        **timing,
        **scores,
        **info,
    }
    common.dump(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
