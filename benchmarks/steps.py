"""The bare training step of keras_vae's VAE against the Keras peer's, in one process.

    KERAS_BACKEND=jax python -m benchmarks.steps --arch mlp
    python -m benchmarks.steps --all    # = make bench-steps: every installed backend, both
                                        # architectures, one process each (~4 min on 2 cores)

Separate processes on a shared machine differ by +-30 % from one minute to the next; here both
models live in the same process and their steps are timed in alternation (ours, peer, ours,
peer, ...), each round a fixed number of steps on one batch, so a slow spell hits both alike.
The step is compiled as `fit` compiles it (a `tf.function` on TensorFlow, `jax.jit` with the
state donated on JAX, eager on torch); no fit loop, no input pipeline: what is left is the cost
of keras_vae's `train_step`, loss and metrics against Keras' default `train_step` with
``add_loss``. Prints the median examples/s of each and their ratio, with every round.

On TensorFlow a third model joins the rounds: ours compiled with ``jit_compile=False``, which
turns off the XLA-compiled optimizer update that ``"auto"`` gives on a CPU (see
`keras_vae.backends.tensorflow`); "XLA update gain" is ours over it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

# ours with jit_compile=False: Keras' own optimizer update, not the XLA-compiled one (TF only).
PLAIN_UPDATE = "ours_jit_compile_false"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    parser.add_argument("--rounds", type=int, default=7, help="alternations (median reported)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round")
    parser.add_argument("--all", action="store_true", help="every installed backend and arch")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    return parser.parse_args(argv)


def table(results):
    lines = [
        "| backend | arch | ours step ex/s | keras_add_loss step ex/s | ours/add_loss | "
        "ours, jit_compile=False | XLA update gain | each round, ours/peer |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ours, peer = r["examples_per_s"]["ours"], r["examples_per_s"]["keras_add_loss"]
        medians = r["median_examples_per_s"]
        rounds = "; ".join(f"{a:,.0f}/{b:,.0f}" for a, b in zip(ours, peer))
        plain = medians.get(PLAIN_UPDATE)
        lines.append(
            f"| {r['backend']} | {r['arch']} | {medians['ours']:,.0f} | "
            f"{medians['keras_add_loss']:,.0f} | {r['ours_over_add_loss']:.2f} | "
            + (f"{plain:,.0f} | {medians['ours'] / plain:.2f}" if plain else " | ")
            + f" | {rounds} |"
        )
    return "\n".join(lines)


def run_all(args):
    """One process per (backend, arch): a Keras backend is fixed per process."""
    import sys

    from benchmarks import common

    results = []
    for backend in common.installed_backends():
        for arch in ("mlp", "conv"):
            arguments = ["--arch", arch, "--rounds", str(args.rounds)]
            if args.steps:
                arguments += ["--steps", str(args.steps)]
            results.append(common.run_module("benchmarks.steps", backend, arguments))
            print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)

    text = "\n".join(
        [
            "# keras_vae vs the Keras add_loss peer: bare training steps in one process",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; device: "
            f"{common.cpu_model()}, {common.cpu_count()} cores; batch {common.BATCH_SIZE}; "
            f"`python -m benchmarks.steps --all --rounds {args.rounds}`",
            "",
            table(results),
            "",
        ]
    )
    path = Path(__file__).resolve().parent / "results" / "steps.md"
    path.write_text(text)
    print(text)
    print(f"Written: {path}")


def main(argv=None):
    args = parse_args(argv)
    if args.all:
        return run_all(args) or 0
    import keras
    import numpy as np

    from benchmarks import common, ours
    from benchmarks.peers import keras_add_loss

    backend = keras.backend.backend()
    shape = (784,) if args.arch == "mlp" else (28, 28, 1)
    batch = np.random.default_rng(0).random((common.BATCH_SIZE, *shape)).astype("float32")
    steps = args.steps or (100 if args.arch == "mlp" else 10)
    if args.arch == "conv" and backend == "jax" and not args.steps:
        steps = 5
    runners = {}
    contenders = [("ours", ours, (batch,)), ("keras_add_loss", keras_add_loss, (batch, batch))]
    if backend == "tensorflow":
        contenders.append((PLAIN_UPDATE, ours, (batch,)))
    for name, implementation, data in contenders:
        common.seed_everything(0, backend)
        model = implementation.build(args.arch)[0]
        implementation.compile_model(model, jit_compile=False if name == PLAIN_UPDATE else "auto")
        fit_args = {"y": batch} if name == "keras_add_loss" else {}
        model.fit(batch, **fit_args, batch_size=common.BATCH_SIZE, epochs=1, verbose=0)
        runners[name] = common.step_runner(model, data, backend)
        runners[name](3)  # compile and warm up
    speeds = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(steps)
            speeds[name].append(steps * common.BATCH_SIZE / (time.perf_counter() - start))
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    result = {
        "backend": backend,
        "arch": args.arch,
        "steps_per_round": steps,
        "examples_per_s": speeds,
        "median_examples_per_s": medians,
        "ours_over_add_loss": medians["ours"] / medians["keras_add_loss"],
    }
    common.write_or_print(result, args.out, table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
