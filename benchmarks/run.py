"""Benchmarks keras_vae against peer VAE implementations and writes benchmarks/results/.

    python -m benchmarks.run            # full: every row, whole Fashion-MNIST (< 15 min, 2 cores)
    python -m benchmarks.run --quick    # MLP rows on a 10,240-example subset (< 2 min)
    python -m benchmarks.run --sweep    # compile settings (jit_compile, steps_per_execution,
                                        # input pipeline) of keras_vae's VAE per backend
    python -m benchmarks.run --rows 'ours.*mlp' --repeats 3

Each row (implementation, backend, architecture, settings) runs in its own process
(`benchmarks.worker`), since a Keras backend is fixed per process; the row prints JSON, collected
here into a Markdown table and a JSON file. Rows that need a missing framework are skipped. See
benchmarks/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("tensorflow", "jax", "torch")


@dataclasses.dataclass(frozen=True)
class Row:
    impl: str
    backend: str
    arch: str
    epochs: int
    train_size: int | None = None
    jit_compile: str = "auto"
    steps_per_execution: int | None = None  # None: the implementation's default
    input: str = "numpy"
    deconv: str = "auto"  # keras_vae's conv decoder: architectures.conv(deconv_implementation)
    group: str = "default"  # "default" (compile defaults), "tuned", "reference" or "sweep"
    warmup: int = 20
    raw_steps: int = 0  # bare train_step calls timed after fit (Keras rows only)

    @property
    def settings(self) -> str:
        parts = []
        if self.jit_compile != "auto":
            parts.append(f"jit={self.jit_compile}")
        if self.steps_per_execution is not None:
            parts.append(f"spe={self.steps_per_execution}")
        if self.input != "numpy":
            parts.append(self.input)
        if self.deconv != "auto":
            parts.append(f"deconv={self.deconv}")
        return ",".join(parts) or "defaults"

    @property
    def name(self) -> str:
        return f"{self.impl}/{self.backend}/{self.arch}/{self.settings}"

    def needs(self) -> set[str]:
        frameworks = {self.backend}
        if self.impl == "keras_example" or self.input == "tfdata":
            frameworks.add("tensorflow")
        if self.impl != "pytorch_example":
            frameworks.add("keras")
        return frameworks

    def command(self, out: str) -> list[str]:
        cmd = [sys.executable, "-m", "benchmarks.worker", "--impl", self.impl]
        cmd += ["--arch", self.arch, "--epochs", str(self.epochs), "--out", out]
        cmd += ["--jit-compile", self.jit_compile, "--input", self.input]
        if self.steps_per_execution is not None:
            cmd += ["--steps-per-execution", str(self.steps_per_execution)]
        cmd += ["--warmup-steps", str(self.warmup)]
        if self.train_size:
            cmd += ["--train-size", str(self.train_size)]
        if self.raw_steps and self.impl != "pytorch_example":
            cmd += ["--raw-steps", str(self.raw_steps)]
        if self.deconv != "auto":
            cmd += ["--deconv", self.deconv]
        return cmd


# Best settings found by `--sweep` on 2 CPU cores (see README): the "tuned" rows. On JAX
# steps_per_execution changed nothing (Keras loops over jitted single steps in Python), torch
# refuses steps_per_execution > 1, and on TensorFlow XLA slows the conv model down.
TUNED = {
    ("tensorflow", "mlp"): {"jit_compile": "true", "steps_per_execution": 50, "input": "tfdata"},
}
# keras_vae.backends.tensorflow.AUTO_STEPS_PER_EXECUTION (this process imports no framework).
TF_AUTO_STEPS = 32
# The conv rows on a machine without a GPU: XLA's CPU convolutions (JAX) run about 4 s per step
# of 128 (see README), so every conv row trains the same 80 steps and is scored after them.
# The first 32 are warm-up: keras_vae's TensorFlow default runs 32 steps per compiled call
# (steps_per_execution="auto"), so its first call, with the tracing, ends at step 32.
CPU_CONV_STEPS = 80
CONV_WARMUP_STEPS = 32
# Bare train_step calls timed after fit, on one batch: the step without the fit loop.
MLP_RAW_STEPS = 200
QUICK_RAW_STEPS = 50
CONV_RAW_STEPS = 20


def has_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def plan(mode: str, gpu: bool = False) -> list[Row]:
    """The rows of a mode: "quick", "full" or "sweep"."""
    rows = []
    if mode == "quick":
        size = 80 * common.BATCH_SIZE
        rows.append(Row("pytorch_example", "torch", "mlp", 1, size))
        for backend in BACKENDS:
            rows.append(Row("keras_add_loss", backend, "mlp", 1, size, raw_steps=QUICK_RAW_STEPS))
            rows.append(Row("ours", backend, "mlp", 1, size, raw_steps=QUICK_RAW_STEPS))
        for (backend, arch), settings in TUNED.items():
            rows.append(
                Row(
                    "ours",
                    backend,
                    arch,
                    1,
                    size,
                    group="tuned",
                    raw_steps=QUICK_RAW_STEPS,
                    **settings,
                )
            )
        return rows
    if mode == "sweep":
        size = 200 * common.BATCH_SIZE
        for impl in ("ours",):  # the settings act alike on the peer: see the full run's tuned rows
            for jit in ("false", "true"):
                for spe in (None, 1, 10, 50):  # None: keras_vae's "auto" (32 on TensorFlow)
                    rows.append(Row(impl, "tensorflow", "mlp", 2, size, jit, spe, group="sweep"))
            rows.append(
                Row(impl, "tensorflow", "mlp", 2, size, "true", 50, "tfdata", group="sweep")
            )
            rows.append(
                Row(impl, "tensorflow", "mlp", 2, size, "false", 1, "tfdata", group="sweep")
            )
            for spe in (None, 10, 50):  # "auto" is 1 on JAX
                rows.append(Row(impl, "jax", "mlp", 2, size, "auto", spe, group="sweep"))
            rows.append(Row(impl, "jax", "mlp", 2, size, "auto", 50, "tfdata", group="sweep"))
            rows.append(Row(impl, "torch", "mlp", 2, size, group="sweep"))  # Keras: only 1
            rows.append(Row(impl, "torch", "mlp", 2, size, input="tfdata", group="sweep"))
        conv = CPU_CONV_STEPS * common.BATCH_SIZE
        for jit in ("false", "true"):
            rows.append(
                Row(
                    "ours",
                    "tensorflow",
                    "conv",
                    1,
                    conv,
                    jit,
                    group="sweep",
                    warmup=CONV_WARMUP_STEPS,
                )
            )
        for backend in BACKENDS:
            rows.append(
                Row(
                    "ours",
                    backend,
                    "conv",
                    1,
                    conv,
                    deconv="native",
                    group="sweep",
                    warmup=CONV_WARMUP_STEPS,
                )
            )
        return rows
    mlp_epochs = 2
    conv_size, conv_warmup = (
        (None, 20) if gpu else (CPU_CONV_STEPS * common.BATCH_SIZE, CONV_WARMUP_STEPS)
    )
    mlp = {"epochs": mlp_epochs, "raw_steps": 1000 if gpu else MLP_RAW_STEPS}
    rows.append(Row("pytorch_example", "torch", "mlp", **mlp))
    for backend in BACKENDS:
        rows.append(Row("keras_add_loss", backend, "mlp", **mlp))
        rows.append(Row("ours", backend, "mlp", **mlp))
    conv = {"epochs": 1, "train_size": conv_size, "warmup": conv_warmup}
    rows.append(Row("keras_example", "tensorflow", "conv", **conv, raw_steps=CONV_RAW_STEPS))
    for backend in BACKENDS:
        raw = {"raw_steps": 200 if gpu else CONV_RAW_STEPS // (4 if backend == "jax" else 1)}
        rows.append(Row("keras_add_loss", backend, "conv", **conv, **raw))
        rows.append(Row("ours", backend, "conv", **conv, **raw))
    for (backend, arch), settings in TUNED.items():
        for impl in ("keras_add_loss", "ours"):
            rows.append(Row(impl, backend, arch, group="tuned", **mlp, **settings))
    # keras_vae's TensorFlow default runs TF_AUTO_STEPS batches per call: the peer with that
    # setting, and keras_vae with Keras' default of one batch per call.
    rows.append(
        Row(
            "keras_add_loss",
            "tensorflow",
            "mlp",
            steps_per_execution=TF_AUTO_STEPS,
            group="tuned",
            **mlp,
        )
    )
    rows.append(Row("ours", "tensorflow", "mlp", steps_per_execution=1, group="tuned", **mlp))
    # keras_vae's conv decoder with the native transposed convolution the peers use, where its
    # default differs (the sub-pixel rewrite on JAX on CPU): the gain of the rewrite alone.
    raw = CONV_RAW_STEPS // 4
    rows.append(
        Row(
            "ours",
            "jax",
            "conv",
            **conv,
            deconv="native",
            group="reference",
            raw_steps=raw,
        )
    )
    return rows


# ------------------------------------------------------------------------------ machine load
def _cpu_jiffies() -> tuple[int, int]:
    """(busy, steal) jiffies of all CPUs since boot, from /proc/stat.

    busy: user + nice + system + irq + softirq (work done in this machine); steal: time the
    hypervisor ran something else on our virtual CPUs (a noisy neighbour outside the machine).
    """
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    fields += [0] * (8 - len(fields))
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq, steal


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def other_load(seconds: float = 1.0) -> float:
    """CPU cores kept busy by other processes, or stolen by the hypervisor, over ``seconds``."""
    busy, steal = _cpu_jiffies()
    time.sleep(seconds)
    busy_after, steal_after = _cpu_jiffies()
    return (busy_after - busy + steal_after - steal) / os.sysconf("SC_CLK_TCK") / seconds


def wait_until_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Waits (up to ``max_wait`` s) until other processes use < ``threshold`` cores; the load."""
    deadline = time.monotonic() + max_wait
    load = other_load(0.5)
    while load > threshold and time.monotonic() < deadline:
        load = other_load(2.0)
    return load


# ------------------------------------------------------------------------------------ running
def available_frameworks() -> set[str]:
    return {
        name
        for name in ("tensorflow", "jax", "torch", "keras")
        if importlib.util.find_spec(name) is not None
    }


def run_row(row: Row, timeout: float, omp_wait_policy: str | None = None) -> dict:
    """Runs one row in a fresh process; its JSON plus the CPU load of others while it ran."""
    env = dict(os.environ, KERAS_BACKEND=row.backend, TF_CPP_MIN_LOG_LEVEL="2")
    if omp_wait_policy:
        env["OMP_WAIT_POLICY"] = omp_wait_policy
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "row.json")
        busy, steal = _cpu_jiffies()
        children = _children_cpu_seconds()
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                row.command(out),
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        wall = time.perf_counter() - start
        busy_after, steal_after = _cpu_jiffies()
        own = _children_cpu_seconds() - children
        hz = os.sysconf("SC_CLK_TCK")
        others = max(0.0, (busy_after - busy) / hz - own) / wall
        stolen = (steal_after - steal) / hz / wall
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            return {"error": " | ".join(tail) or f"exit status {proc.returncode}"}
        result = json.loads(Path(out).read_text())
    result.update(
        process_seconds=wall, other_load_cores=others, steal_cores=stolen, cpu_seconds=own
    )
    return result


def run_sgemm(quick: bool) -> dict:
    """The matmul ceiling, in processes without the env vars that can slow OpenBLAS down.

    Measured twice: with every core, and with one BLAS thread scaled by the core count (perfect
    scaling). The ceiling is the larger: on a busy machine a multi-threaded BLAS loses far more
    than one thread does, and a ceiling must not fall below what the frameworks reach.
    """
    from benchmarks.sgemm import BLAS_ENV_VARS

    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_VARS}
    cmd = [sys.executable, "-m", "benchmarks.sgemm"] + (["--quick"] if quick else [])
    results = {}
    for label, threads in (("all_cores", None), ("one_thread", "1")):
        run_env = dict(env, OPENBLAS_NUM_THREADS=threads) if threads else env
        proc = subprocess.run(
            cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        results[label] = json.loads(proc.stdout)
    result = dict(results["all_cores"])
    cores = common.cpu_count()
    single = results["one_thread"]
    result["one_thread"] = {
        key: single[key] for key in ("mlp_step_gemm_gflops", "square_gflops", "blas")
    }
    scaled = single["mlp_step_gemm_gflops"] * cores
    result["measured_all_cores_gflops"] = result["mlp_step_gemm_gflops"]
    result["one_thread_times_cores_gflops"] = scaled
    if scaled > result["mlp_step_gemm_gflops"]:
        result["mlp_step_gemm_gflops"] = scaled
        result["ceiling_from"] = f"one thread x {cores} cores"
    else:
        result["ceiling_from"] = f"{cores} threads"
    flops = result["train_flops_per_example"]
    result["ceiling_examples_per_s"] = result["mlp_step_gemm_gflops"] * 1e9 / flops
    result["ceiling_rule_of_thumb_examples_per_s"] = (
        result["mlp_step_gemm_gflops"] * 1e9 / result["rule_of_thumb_flops_per_example"]
    )
    result["removed_env"] = {k: os.environ[k] for k in BLAS_ENV_VARS if k in os.environ}
    return result


def median_result(results: list[dict]) -> dict:
    """The repeat with the median throughput, with the spread of all repeats."""
    good = [r for r in results if "error" not in r]
    if not good:
        return results[-1]
    # The lists stay in run order, so repeat k of one row pairs with repeat k of another.
    speeds = [r["examples_per_s"] for r in good]
    steps = [r["raw_step_examples_per_s"] for r in good if r.get("raw_step_examples_per_s")]
    chosen = dict(sorted(good, key=lambda r: r["examples_per_s"])[(len(good) - 1) // 2])
    chosen["repeats"] = len(good)
    chosen["examples_per_s"] = statistics.median(speeds)
    chosen["examples_per_s_all"] = speeds
    if steps:
        chosen["raw_step_examples_per_s"] = statistics.median(steps)
        chosen["raw_step_examples_per_s_all"] = steps
    return chosen


# --------------------------------------------------------------------------------- reporting
def device_info(records: list[dict]) -> dict:
    accelerators = sorted({r["accelerator"] for r in records if r.get("accelerator")})
    return {
        "cpu": common.cpu_model(),
        "cores": common.cpu_count(),
        "accelerators": accelerators,
        "python": sys.version.split()[0],
    }


def _peer_for(record: dict, by_key: dict) -> list[tuple[str, dict | None]]:
    """The peers a row of ours is compared with: same arch; same backend and settings for the
    Keras add_loss peer; the published peer (PyTorch example / Keras example) at its defaults."""
    arch = record["arch"]
    # keras_vae with another conv decoder is compared with the peer at the same compile
    # settings. One batch per call is the Keras peer's default.
    settings = ",".join(
        p for p in record["settings"].split(",") if not p.startswith("deconv=") and p != "spe=1"
    )
    same = by_key.get(("keras_add_loss", record["backend"], arch, settings or "defaults"))
    published = (
        by_key.get(("pytorch_example", "torch", arch, "defaults"))
        if arch == "mlp"
        else by_key.get(("keras_example", "tensorflow", arch, "defaults"))
    )
    name = "pytorch_example" if arch == "mlp" else "keras_example"
    return [("keras_add_loss (same backend, settings)", same), (name, published)]


def add_ratios(records: list[dict], ceiling: float | None):
    by_key = {
        (r["impl"], r["backend"], r["arch"], r["settings"]): r for r in records if "error" not in r
    }
    for record in records:
        if "error" in record:
            continue
        if ceiling and record["arch"] == "mlp" and not record.get("accelerator"):
            record["percent_of_ceiling"] = 100 * record["examples_per_s"] / ceiling
        if record["impl"] != "ours":
            continue
        for label, peer in _peer_for(record, by_key):
            if peer is not None:
                key = "vs_add_loss" if label.startswith("keras_add_loss") else "vs_published"
                record[key] = record["examples_per_s"] / peer["examples_per_s"]
                record[f"{key}_peer"] = peer["name"]
                ours_step = record.get("raw_step_examples_per_s")
                peer_step = peer.get("raw_step_examples_per_s")
                if ours_step and peer_step:
                    record[f"step_{key}"] = ours_step / peer_step


def _train_sizes(records):
    sizes = sorted({r["train_examples"] for r in records if "train_examples" in r})
    return ", ".join(f"{size:,}" for size in sizes) or "-"


def _load(record):
    if record.get("other_load_cores") is None:
        return ""
    passive = " P" if record.get("omp_wait_policy") else ""
    return f"{record['other_load_cores']:.1f}+{record.get('steal_cores', 0.0):.1f}{passive}"


def _fmt(value, spec):
    return "" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    device = report["device"]
    sgemm = report.get("sgemm", {})
    lines = [
        f"# keras_vae benchmark ({report['mode']})",
        "",
        f"- Date: {report['date']}; device: {device['cpu']}, {device['cores']} cores"
        + (f"; accelerators: {', '.join(device['accelerators'])}" if device["accelerators"] else "")
        + f"; Python {device['python']}; {report['versions']}",
        f"- Data: {report['data_source']}; batch {common.BATCH_SIZE}; training examples "
        f"{_train_sizes(report['rows'])} (cut to a multiple of the batch size: all = 59,904 of "
        "60,000); test -ELBO on the 10,000 test images.",
        f"- Wall time {report['wall_seconds']:.0f} s"
        + (
            f" (then {len(report['rerun_rows'])} row(s) rerun in {report['rerun_seconds']:.0f} s)"
            if report.get("rerun_rows")
            else ""
        )
        + "; load by other processes before the run "
        f"{report['load_before']:.2f} cores (`load` column: during each row)"
        + (
            f"; OMP_WAIT_POLICY={report['omp_wait_policy']} for every row."
            if report.get("omp_wait_policy")
            else "; P: OMP_WAIT_POLICY=PASSIVE for that row (busy machine)."
        ),
    ]
    if "ceiling_examples_per_s" in sgemm:
        blas = sgemm["blas"]
        lines.append(
            f"- Matmul ceiling of the MLP: {sgemm['ceiling_examples_per_s']:,.0f} examples/s = "
            f"numpy {blas.get('name')} {blas.get('version')} (kernel {blas.get('kernel')}) "
            f"running the step's own products at {sgemm['mlp_step_gemm_gflops']:.0f} GFLOP/s "
            f"({sgemm.get('ceiling_from', '')}; all cores measured "
            f"{sgemm.get('measured_all_cores_gflops', 0):.0f}, one thread "
            f"{sgemm.get('one_thread', {}).get('mlp_step_gemm_gflops', 0):.0f}) "
            f"/ {sgemm['train_flops_per_example']:,} "
            f"FLOPs per example (large square: {sgemm['square_gflops']:.0f} GFLOP/s = "
            f"{sgemm['ceiling_square_examples_per_s']:,.0f} ex/s; the 3x-forward rule of thumb, "
            f"{sgemm['rule_of_thumb_flops_per_example']:,} FLOPs: "
            f"{sgemm['ceiling_rule_of_thumb_examples_per_s']:,.0f} ex/s)."
        )
    gpu = any(r.get("peak_accelerator_mb") for r in report["rows"])
    lines += [
        "",
        "| row | impl | backend | arch | settings | ex/s | ex/CPU-s | % ceil | ours/add_loss | "
        "ours/published | step ex/s | step ours/add_loss | 1st step s | peak RSS MB |"
        + (" GPU MB |" if gpu else "")
        + " test -ELBO | epochs | load |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        + ("---:|" if gpu else "")
        + "---:|---:|---:|",
    ]
    for index, record in enumerate(report["rows"], 1):
        if "error" in record:
            lines.append(
                f"| {index} | {record['impl']} | {record['backend']} | {record['arch']} | "
                f"{record['settings']} | skipped: {record['error'][:120]} ||||||||||||"
                + ("|" if gpu else "")
            )
            continue
        lines.append(
            "| {i} | {impl} | {backend} | {arch} | {settings} | {speed} | {cpu} | {ceil} | "
            "{vs_same} | {vs_pub} | {step} | {step_vs} | {first} | {rss} |{gpu} {elbo} | {epochs} | "
            "{load} |".format(
                i=index,
                impl=record["impl"],
                backend=record["backend"],
                arch=record["arch"],
                settings=record["settings"],
                speed=_fmt(record["examples_per_s"], ",.0f"),
                cpu=_fmt(record.get("examples_per_cpu_s"), ",.0f"),
                gpu=f" {_fmt(record.get('peak_accelerator_mb'), ',.0f')} |" if gpu else "",
                ceil=_fmt(record.get("percent_of_ceiling"), ".0f"),
                vs_same=_fmt(record.get("vs_add_loss"), ".2f"),
                vs_pub=_fmt(record.get("vs_published"), ".2f"),
                step=_fmt(record.get("raw_step_examples_per_s"), ",.0f"),
                step_vs=_fmt(record.get("step_vs_add_loss"), ".2f"),
                first=_fmt(record["time_to_first_step_s"], ".1f"),
                rss=_fmt(record["peak_rss_mb"], ",.0f"),
                elbo=_fmt(record["test_neg_elbo"], ".1f"),
                epochs=record["epochs"],
                load=_load(record),
            )
        )
    lines += [
        "",
        "ex/s: steady-state training examples per second after 20 warm-up steps (32 for conv "
        "rows on CPU; median of the repeats); ex/CPU-s: the same examples per CPU-second of all "
        "the row's threads (a load-independent measure of work); step ex/s: the bare "
        "`train_step`, compiled as `fit` compiles it, called in a loop on one batch after `fit` "
        "(no fit loop, no input pipeline): the cost of the step itself, and step ours/add_loss "
        "its ratio (the cost of keras_vae's own `train_step`); 1st step: `fit` call to the end "
        "of the first step (tracing, compilation); "
        "peak RSS: `ru_maxrss` of the row's process; test -ELBO: one-sample negative ELBO, nats "
        "per example, Bernoulli likelihood of the grey levels, scored by one numpy function for "
        "every row; load: CPU cores used by other processes + cores stolen by the hypervisor "
        "during the row (noise: a quiet machine reads 0.0+0.0), P: run with "
        "OMP_WAIT_POLICY=PASSIVE.",
    ]
    return "\n".join(lines) + "\n"


def write_report(
    name, mode_name, records, sgemm, load_before, started, omp_policy, updated=None
) -> str:
    """Writes results/<name>.md and .json for the rows so far (rewritten after every row, so an
    interrupted run keeps what it measured); returns the Markdown."""
    add_ratios(records, sgemm.get("ceiling_examples_per_s"))
    good = [r for r in records if "error" not in r]
    report = {
        "mode": mode_name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": device_info(good),
        "versions": good[0]["versions"] if good else {},
        "data_source": good[0]["data_source"] if good else None,
        "load_before": load_before,
        "omp_wait_policy": omp_policy,
        "sgemm": sgemm,
        "rows": records,
        "wall_seconds": time.perf_counter() - started,
    }
    if updated is not None:  # --update: keep the full run's wall time, say what was rerun
        report["wall_seconds"] = updated["wall_seconds"]
        report["rerun_rows"] = updated["rerun_rows"]
        report["rerun_seconds"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    text = markdown(report)
    (RESULTS / f"{name}.md").write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description="Benchmarks keras_vae against peer VAEs.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="MLP rows on a subset (< 2 min)")
    mode.add_argument("--sweep", action="store_true", help="compile settings per backend")
    parser.add_argument("--rows", default=None, help="regex on row names: impl/backend/arch/...")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row (median reported)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each row, wait up to this long for other load to drop",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=("auto", "default", "passive"),
        default="auto",
        help="OMP_WAIT_POLICY of the rows: spinning OpenMP threads (torch, MKL) collapse when "
        "another process holds a core; 'auto' sets PASSIVE for a row when the machine is busy "
        "just before it (marked P in the load column)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per row")
    parser.add_argument("--out", default=None, help="results name (default: latest/quick/sweep)")
    parser.add_argument(
        "--update",
        action="store_true",
        help="rerun only the selected rows and keep the other rows of the existing results file",
    )
    args = parser.parse_args(argv)

    mode_name = "quick" if args.quick else "sweep" if args.sweep else "full"
    rows = plan(mode_name, gpu=has_gpu())
    if args.rows:
        rows = [row for row in rows if re.search(args.rows, row.name)]
    name = args.out or {"full": "latest", "quick": "quick", "sweep": "sweep"}[mode_name]
    frameworks = available_frameworks()
    started = time.perf_counter()
    load_before = other_load(1.0)
    print(
        f"{common.cpu_model()}, {common.cpu_count()} cores; frameworks: {sorted(frameworks)}; "
        f"other load {load_before:.2f} cores",
        flush=True,
    )
    omp_policy = {"default": None, "passive": "PASSIVE"}.get(args.omp_wait_policy)
    sgemm = run_sgemm(args.quick)
    records = []
    previous = {}  # --update: rows of the existing results that are not rerun
    updated = None
    if args.update and (RESULTS / f"{name}.json").exists():
        selected = {row.name for row in rows}
        old = json.loads((RESULTS / f"{name}.json").read_text())
        previous = {r["name"]: r for r in old["rows"] if r["name"] not in selected}
        updated = {"wall_seconds": old["wall_seconds"], "rerun_rows": sorted(selected)}
        rows = [
            row
            for row in plan(mode_name, gpu=has_gpu())
            if row.name in selected or row.name in previous
        ]
    # Repeats go round the whole plan (row 1, 2, ..., n, then 1, 2, ... again) rather than
    # repeating a row in place: a slow spell of the machine then hits every row alike, and the
    # ratio of two rows compares runs made minutes, not a whole benchmark, apart.
    results = {row.name: [] for row in rows}
    for repeat in range(args.repeats):
        records = []
        for index, row in enumerate(rows, 1):
            base = {
                "name": row.name,
                "settings": row.settings,
                "group": row.group,
                "impl": row.impl,
                "backend": row.backend,
                "arch": row.arch,
                "epochs": row.epochs,
            }
            missing = row.needs() - frameworks
            if row.name in previous:
                record = previous[row.name]
            elif missing:
                record = {**base, "error": f"{', '.join(sorted(missing))} not installed"}
            else:
                load = wait_until_quiet(args.wait_quiet) if args.wait_quiet else None
                policy = omp_policy
                if args.omp_wait_policy == "auto":  # decided per row: the load comes and goes
                    load = other_load(0.5) if load is None else load
                    policy = "PASSIVE" if load > 0.5 else None
                result = run_row(row, args.timeout, policy)
                result["omp_wait_policy"] = policy
                results[row.name].append(result)
                record = {**median_result(results[row.name]), **base}
            records.append(record)
            status = record.get("error") or (
                f"{record['examples_per_s']:,.0f} ex/s"
                + (
                    f", step {record['raw_step_examples_per_s']:,.0f} ex/s"
                    if record.get("raw_step_examples_per_s")
                    else ""
                )
                + f", first step {record['time_to_first_step_s']:.1f} s, -ELBO "
                f"{record['test_neg_elbo']:.1f}, ex/CPU-s {record['examples_per_cpu_s']:,.0f}, "
                f"load {_load(record)}"
            )
            rep_label = f" (repeat {repeat + 1}/{args.repeats})" if args.repeats > 1 else ""
            print(f"[{index}/{len(rows)}]{rep_label} {row.name}: {status}", flush=True)
        text = write_report(
            name, mode_name, records, sgemm, load_before, started, omp_policy, updated
        )
    print()
    print(text)
    print(f"Written: {RESULTS / name}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
