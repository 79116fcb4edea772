"""What the contractive penalty costs: ms per training step of ContractiveAE against a plain AE.

    KERAS_BACKEND=jax python -m benchmarks.contractive_cost
    python -m benchmarks.contractive_cost --all    # every installed backend, one process each

An MLP autoencoder on 784 inputs (784-400-``latent_dim``, the architectures.mlp default
widths, 32 code units by default), batch 128, Bernoulli loss. Contenders: `AE`, then
`ContractiveAE` with ``jacobian="exact"`` (one vector-Jacobian product per code unit) and with
1, 4 and 16 random projections. Each step is compiled as `fit` compiles it
(`benchmarks.common.step_runner`: ``jax.jit``, a ``tf.function``, eager torch), and the
contenders are timed in alternation, a fixed number of steps each per round, so a slow spell
on a shared machine hits them alike; the table gives the median ms per step and its ratio to
the AE's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

CONTENDERS = ("ae", "exact", "m=1", "m=4", "m=16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7, help="alternations (median reported)")
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--all", action="store_true", help="every installed backend")
    parser.add_argument("--out", default=None, help="write the JSON here instead of the table")
    return parser.parse_args(argv)


def table(results):
    header = " | ".join(f"{name} ms (x AE)" for name in CONTENDERS)
    lines = [
        f"| backend | latent_dim | {header} |",
        "|---|---:|" + "---:|" * len(CONTENDERS),
    ]
    for r in results:
        ms, ae = r["median_ms_per_step"], r["median_ms_per_step"]["ae"]
        cells = " | ".join(f"{ms[name]:.1f} ({ms[name] / ae:.1f}x)" for name in CONTENDERS)
        lines.append(f"| {r['backend']} | {r['latent_dim']} | {cells} |")
    return "\n".join(lines)


def run_all(args):
    """One process per backend: a Keras backend is fixed per process."""

    from benchmarks import common

    results = []
    for backend in common.installed_backends():
        arguments = ["--latent-dim", str(args.latent_dim), "--rounds", str(args.rounds)]
        arguments += ["--steps", str(args.steps)]
        results.append(common.run_module("benchmarks.contractive_cost", backend, arguments))
        print(table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(
        f"{common.cpu_model()}, {common.cpu_count()} cores; batch {common.BATCH_SIZE}; "
        f"`python -m benchmarks.contractive_cost --all --latent-dim {args.latent_dim}`\n"
    )
    print(table(results))


def build(name, latent_dim):
    from keras_vae import AE, ContractiveAE, architectures

    encoder, decoder = architectures.mlp((784,), latent_dim=latent_dim, variational=False)
    if name == "ae":
        return AE(encoder, decoder, reconstruction_loss="bernoulli")
    jacobian = "exact" if name == "exact" else int(name.split("=")[1])
    return ContractiveAE(
        encoder, decoder, reconstruction_loss="bernoulli", jacobian=jacobian, seed=0
    )


def main(argv=None):
    args = parse_args(argv)
    if args.all:
        return run_all(args) or 0
    import keras
    import numpy as np

    from benchmarks import common

    backend = keras.backend.backend()
    batch = np.random.default_rng(0).random((common.BATCH_SIZE, 784)).astype("float32")
    runners = {}
    for name in CONTENDERS:
        common.seed_everything(0, backend)
        model = build(name, args.latent_dim)
        model.compile(optimizer="adam")
        model.fit(batch, batch_size=common.BATCH_SIZE, epochs=1, verbose=0)
        runners[name] = common.step_runner(model, (batch,), backend)
        runners[name](3)  # compile and warm up
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(args.steps)
            times[name].append(1000 * (time.perf_counter() - start) / args.steps)
    result = {
        "backend": backend,
        "latent_dim": args.latent_dim,
        "batch_size": common.BATCH_SIZE,
        "steps_per_round": args.steps,
        "ms_per_step": times,
        "median_ms_per_step": {name: statistics.median(t) for name, t in times.items()},
    }
    common.write_or_print(result, args.out, table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
