"""How fast `VAE.log_likelihood` runs, against the machine's matmul ceiling.

    python -m benchmarks.likelihood_speed                  # K=1000 over the 10,000 test images,
                                                           # each backend; results/likelihood_speed.*
    python -m benchmarks.likelihood_speed --quick          # K=100 over 1,000 images
    python -m benchmarks.likelihood_speed --backends jax

The MLP 784-400-20 VAE of the benchmarks (`keras_vae.architectures.mlp`, untrained: the work
does not depend on the weights) estimates log p(x) with K importance samples per image, on the
binarised test images (`keras_vae.evaluation.load_test_arrays`). The work is the decoder's
products, ``2 * (20 * 400 + 400 * 784) = 643,200`` FLOPs per sample, ``K`` samples per image,
plus the encoder's ``2 * (784 * 400 + 2 * 400 * 20) = 659,200`` once per image; achieved
GFLOP/s = those FLOPs / the wall time of the call (after a warm-up call that compiles it).

The ceiling is measured in the same run, in processes without the environment variables that
slow OpenBLAS down (`benchmarks.run.run_sgemm`, i.e. `benchmarks/sgemm.py`: the MLP training
step's products and a large square product), and the decoder's own two products at the
estimator's rows per call (numpy, ``--ceiling``); the report takes the highest of them.
Each backend runs in its own process (``--worker``), which also times the parts of one
estimator call (`profile`): the decoder alone, the decoder with the Bernoulli log-likelihood
(the backend's `keras_vae.backends.bernoulli_log_prob_sum`), the whole compiled chunk, and numpy's noise draws, so the report says where the
time goes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("tensorflow", "jax", "torch")
LATENT, HIDDEN, PIXELS = 20, 400, 784
DECODER_FLOPS_PER_SAMPLE = 2 * (LATENT * HIDDEN + HIDDEN * PIXELS)
ENCODER_FLOPS_PER_IMAGE = 2 * (PIXELS * HIDDEN + 2 * HIDDEN * LATENT)
FULL = {"images": 10000, "num_samples": 1000}
QUICK = {"images": 1000, "num_samples": 100}
PROFILE_CALLS = 30  # compiled calls timed per part of the profile
TARGET_PERCENT = 50


def flops(images: int, num_samples: int) -> int:
    return images * (num_samples * DECODER_FLOPS_PER_SAMPLE + ENCODER_FLOPS_PER_IMAGE)


# ------------------------------------------------------------------------------ the ceiling
def decoder_ceiling(rows: int) -> dict:
    """numpy's GFLOP/s on the decoder's two products at ``rows`` rows (this process's BLAS)."""
    from benchmarks.sgemm import _best_seconds

    rng = np.random.default_rng(0)
    z = rng.standard_normal((rows, LATENT), dtype=np.float32)
    w1 = rng.standard_normal((LATENT, HIDDEN), dtype=np.float32)
    h = rng.standard_normal((rows, HIDDEN), dtype=np.float32)
    w2 = rng.standard_normal((HIDDEN, PIXELS), dtype=np.float32)
    seconds = _best_seconds(lambda: (z @ w1, h @ w2), 5, 10)
    return {"rows": rows, "decoder_gemm_gflops": rows * DECODER_FLOPS_PER_SAMPLE / seconds / 1e9}


def measure_ceiling(quick: bool, rows: int) -> dict:
    """`benchmarks.run.run_sgemm` plus `decoder_ceiling`, each in a clean-environment process.

    As for the training ceiling, the decoder's products are timed with every core and with one
    thread times the cores, and the larger counts; the ceiling is the highest rate of all.
    """
    from benchmarks import run
    from benchmarks.sgemm import BLAS_ENV_VARS

    result = {"sgemm": run.run_sgemm(quick)}
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_VARS}
    command = [sys.executable, "-m", "benchmarks.likelihood_speed", "--ceiling", str(rows)]
    for label, threads in (("all_cores", None), ("one_thread", "1")):
        run_env = dict(env, OPENBLAS_NUM_THREADS=threads) if threads else env
        proc = subprocess.run(command, env=run_env, capture_output=True, text=True, check=True)
        result[f"decoder_{label}"] = json.loads(proc.stdout)["decoder_gemm_gflops"]
    result["decoder_one_thread_times_cores"] = result["decoder_one_thread"] * common.cpu_count()
    sgemm = result["sgemm"]
    candidates = {
        "decoder products (all cores)": result["decoder_all_cores"],
        "decoder products (one thread x cores)": result["decoder_one_thread_times_cores"],
        "sgemm.py MLP step products": sgemm.get("mlp_step_gemm_gflops", 0.0),
        "sgemm.py square product": sgemm.get("square_gflops", 0.0),
    }
    result["ceiling_from"], result["ceiling_gflops"] = max(candidates.items(), key=lambda i: i[1])
    result["candidates_gflops"] = candidates
    return result


# ---------------------------------------------------------------------------------- a worker
def _timed(fn, calls: int) -> float:
    """Seconds per call of ``fn()`` (which returns a tensor), after one warm-up call."""
    from keras import ops

    ops.convert_to_numpy(fn())
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    ops.convert_to_numpy(out)
    return (time.perf_counter() - start) / calls


def profile(model, x, num_samples: int, calls: int = PROFILE_CALLS) -> dict:
    """Seconds per compiled call of the estimator's parts, at its own shapes.

    One call of the estimator decodes ``batch_size * sample_chunk`` rows (`keras_vae.likelihood`
    defaults). Timed apart: the decoder alone (reduced to a sum, so nothing large leaves the
    call), the decoder and the Bernoulli log p(x | z) from logits, the whole chunk
    (`keras_vae.likelihood.log_weights` with ``inference=True``, as the estimator compiles it),
    and numpy's draw of the chunk's noise and its conversion to a backend tensor.
    """
    from keras import ops

    from keras_vae import backends, likelihood

    batch = min(likelihood.DEFAULT_BATCH_SIZE, len(x))
    chunk = min(num_samples, max(1, likelihood.rows_for(model.decoder) // batch))
    rows = batch * chunk
    log_px = likelihood.log_px_function("bernoulli", True)
    rng = np.random.default_rng(0)
    x_batch = ops.convert_to_tensor(x[:batch])
    z_mean, z_log_var = (ops.convert_to_tensor(a) for a in model.encode(x[:batch]))
    z = ops.convert_to_tensor(rng.standard_normal((rows, LATENT), dtype=np.float32))
    eps = ops.convert_to_tensor(rng.standard_normal((batch, chunk, LATENT), dtype=np.float32))

    def decoder(z):
        return ops.sum(model.decoder(z))

    def decoder_log_px(x, z):  # the backend's kernel, as the estimator calls it
        logits = ops.reshape(model.decoder(z), (batch, chunk, PIXELS))
        return ops.sum(backends.bernoulli_log_prob_sum(x[:, None, :], logits))

    def whole_chunk(x, z_mean, z_log_var, eps):  # what the estimator's chunk returns
        log_w, log_px_z, _ = likelihood.log_weights(
            x, z_mean, z_log_var, eps, model.decoder, log_px, inference=True
        )
        return log_w + log_px_z

    def noise():
        draws = rng.standard_normal((chunk, batch, LATENT), dtype=np.float32)
        return ops.convert_to_tensor(np.ascontiguousarray(draws.transpose(1, 0, 2)))

    compiled = {name: backends.inference_function(fn) for name, fn in (
        ("decoder", decoder), ("decoder_log_px", decoder_log_px), ("chunk", whole_chunk))}  # fmt: skip
    with backends.no_grad():
        seconds = {
            "decoder": _timed(lambda: compiled["decoder"](z), calls),
            "decoder_log_px": _timed(lambda: compiled["decoder_log_px"](x_batch, z), calls),
            "chunk": _timed(lambda: compiled["chunk"](x_batch, z_mean, z_log_var, eps), calls),
            "noise": _timed(noise, calls),
        }
    return {"batch_size": batch, "sample_chunk": chunk, "rows_per_call": rows, "seconds": seconds}


def worker(images: int, num_samples: int) -> dict:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    common.seed_everything(0, backend)
    from keras_vae import VAE, architectures, evaluation

    if backend == "torch":
        import torch

        torch.set_num_threads(common.cpu_count())
    directory = common.data_dir()
    if directory is not None:
        x, _ = evaluation.load_test_arrays(idx_dir=directory, download=False)
        source = f"fashion_mnist test:{directory}"
    else:
        x = (np.random.default_rng(1).random((10000, 28, 28, 1)) < 0.3).astype("float32")
        source = "SYNTHETIC"
    x = common.flatten(x[:images])
    model = VAE(*architectures.mlp((PIXELS,), LATENT, (HIDDEN,)), seed=0)
    model.log_likelihood(x[:64], num_samples=num_samples, seed=0)  # compiles every shape
    start, cpu = time.perf_counter(), time.process_time()
    log_px = model.log_likelihood(x, num_samples=num_samples, seed=common.EVAL_SEED)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    parts = profile(model, x, num_samples)
    calls = math.ceil(len(x) / parts["batch_size"]) * math.ceil(num_samples / parts["sample_chunk"])
    work = flops(len(x), num_samples)
    return {
        "backend": backend,
        "data_source": source,
        "images": len(x),
        "num_samples": num_samples,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "flops": work,
        "gflops": work / seconds / 1e9,
        "mean_log_px": float(np.mean(log_px)),
        "calls": calls,
        "profile": parts,
        "decoder_only_gflops": parts["rows_per_call"]
        * DECODER_FLOPS_PER_SAMPLE
        / parts["seconds"]["decoder"]
        / 1e9,
        "peak_rss_mb": common.peak_rss_mb(),
    }


# --------------------------------------------------------------------------------- the report
def breakdown(row: dict) -> list[tuple[str, float]]:
    """Seconds of the whole run per part: the profile's per-call times times the calls."""
    per_call, calls = row["profile"]["seconds"], row["calls"]
    decoder = per_call["decoder"] * calls
    log_px = max(0.0, per_call["decoder_log_px"] - per_call["decoder"]) * calls
    rest_of_chunk = max(0.0, per_call["chunk"] - per_call["decoder_log_px"]) * calls
    noise = per_call["noise"] * calls
    other = max(0.0, row["seconds"] - decoder - log_px - rest_of_chunk - noise)
    return [
        ("decoder products", decoder),
        ("Bernoulli log p(x|z) (backends.bernoulli_log_prob_sum)", log_px),
        ("rest of the chunk (z, log p(z), log q(z|x))", rest_of_chunk),
        ("numpy noise draws + conversion", noise),
        (
            "outside the compiled chunks (encoder, Python loop, transfers, float64 log-sum-exp)",
            other,
        ),
    ]


def markdown(report: dict) -> str:
    ceiling = report["ceiling"]
    top = ceiling["ceiling_gflops"]
    settings = report["settings"]
    lines = [
        f"# VAE.log_likelihood speed ({report['mode']})",
        "",
        f"- Date: {report['date']}; {report['device']['cpu']}, {report['device']['cores']} "
        f"cores; load by other processes before the run {report['load_before']:.2f} cores.",
        f"- Work: MLP 784-400-20 VAE, K={settings['num_samples']:,} importance samples on "
        f"{settings['images']:,} binarised test images = {flops(**settings) / 1e12:.2f} TFLOP "
        f"({DECODER_FLOPS_PER_SAMPLE:,} decoder FLOPs per sample, {ENCODER_FLOPS_PER_IMAGE:,} "
        "encoder FLOPs per image; biases, activations and the likelihood not counted).",
        f"- Ceiling: {top:.0f} GFLOP/s ({ceiling['ceiling_from']}); measured: "
        + ", ".join(f"{name} {value:.0f}" for name, value in ceiling["candidates_gflops"].items())
        + f" GFLOP/s (numpy, {ceiling['sgemm'].get('blas', {}).get('name', '?')} "
        f"{ceiling['sgemm'].get('blas', {}).get('version', '')}).",
        "",
        "| backend | seconds | CPU s | GFLOP/s | % of ceiling | decoder alone GFLOP/s | "
        "rows per call | mean log p(x) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        if "error" in row or "skipped" in row:
            lines.append(f"| {row['backend']} | {row.get('error') or row.get('skipped')} |||||||")
            continue
        lines.append(
            f"| {row['backend']} | {row['seconds']:.1f} | {row['cpu_seconds']:.1f} | "
            f"{row['gflops']:.0f} | {100 * row['gflops'] / top:.0f} % | "
            f"{row['decoder_only_gflops']:.0f} | {row['profile']['rows_per_call']:,} | "
            f"{row['mean_log_px']:.2f} |"
        )
    lines += ["", "## Where the time goes", ""]
    for row in report["rows"]:
        if "profile" not in row:
            continue
        parts = ", ".join(
            f"{name} {seconds:.1f} s ({100 * seconds / row['seconds']:.0f} %)"
            for name, seconds in breakdown(row)
        )
        lines.append(f"- {row['backend']} ({row['calls']:,} compiled calls): {parts}.")
    good = [r for r in report["rows"] if "gflops" in r]
    if good:
        best = max(good, key=lambda r: r["gflops"])
        percent = 100 * best["gflops"] / top
        verdict = "**met**" if percent >= TARGET_PERCENT else "**not met**"
        lines += [
            "",
            f"Target: NLL evaluation at >= {TARGET_PERCENT} % of the matmul ceiling: {verdict} "
            f"(best: {best['backend']}, {best['gflops']:.0f} GFLOP/s = {percent:.0f} % of "
            f"{top:.0f}; "
            + ", ".join(f"{r['backend']} {100 * r['gflops'] / top:.0f} %" for r in good)
            + ").",
        ]
    lines += [
        "",
        "seconds: wall time of one `log_likelihood` call after a warm-up call that compiled "
        "it; CPU s: this process's CPU time in it (2 cores: at most twice the seconds); "
        "decoder alone: the decoder's products in one compiled call at the estimator's rows per "
        "call. The parts are timed apart, per compiled call, and multiplied by the calls of the "
        "run; 'outside' is what remains of the wall time.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K=100 over 1,000 images")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--num-samples", type=int, default=None)
    parser.add_argument("--name", default=None, help="results/<name>.{md,json}")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ceiling", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.images:
        settings["images"] = args.images
    if args.num_samples:
        settings["num_samples"] = args.num_samples
    if args.ceiling:
        print(json.dumps(decoder_ceiling(args.ceiling)))
        return 0
    if args.worker:
        common.dump(worker(**settings), args.out)
        return 0
    from benchmarks import run

    load_before = run.other_load(1.0)
    rows = []
    for backend in args.backends.split(","):
        try:
            arguments = ["--worker", "--images", str(settings["images"])]
            arguments += ["--num-samples", str(settings["num_samples"])]
            rows.append(common.run_module("benchmarks.likelihood_speed", backend, arguments))
        except subprocess.CalledProcessError as error:
            rows.append({"backend": backend, "error": f"exit status {error.returncode}"})
        print(backend, rows[-1].get("gflops", rows[-1].get("error")), flush=True)
    good = [r for r in rows if "profile" in r]
    ceiling = measure_ceiling(args.quick, good[0]["profile"]["rows_per_call"] if good else 8192)
    report = {
        "mode": "quick" if args.quick else "full",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": {"cpu": common.cpu_model(), "cores": common.cpu_count()},
        "load_before": load_before,
        "settings": settings,
        "ceiling": ceiling,
        "rows": rows,
    }
    name = args.name or ("likelihood_speed_quick" if args.quick else "likelihood_speed")
    RESULTS.mkdir(exist_ok=True)
    text = markdown(report)
    (RESULTS / f"{name}.md").write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    print(text)
    return 1 if len(good) < len(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
