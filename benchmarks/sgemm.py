"""The machine's float32 matmul ceiling for the 784-400-20 MLP VAE, measured with numpy.

Run as its own process (`benchmarks.run` does, with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed from that process's environment only: both can force a slower
OpenBLAS kernel). Prints JSON: the BLAS in use, its kernel (core) name and thread count, GFLOP/s
on a large square product and on the exact matrix products of one MLP training step, and the
ceiling in examples/s that follows.

FLOPs per example of the MLP training step (multiply-adds x 2; biases, activations, the loss and
the optimiser are not counted):

    forward   fc1 784*400 + fc21,fc22 2*400*20 + fc3 20*400 + fc4 400*784 = 651,200 MACs
    backward  weight gradients, the same products             = 651,200 MACs
              input gradients of every layer but fc1          = 337,600 MACs
                                      (the data need no gradient: 651,200 - 313,600)
    total     1,640,000 MACs = 3,280,000 FLOPs per example

The common "3 x forward" rule of thumb gives 3 * 2 * 651,200 = 3,907,200 FLOPs; it counts an
input gradient of fc1 that no framework computes, so the ceiling uses the exact count (and
reports the rule-of-thumb figure beside it).
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import sys
import time

import numpy as np

LAYERS = [(784, 400), (400, 20), (400, 20), (20, 400), (400, 784)]  # fc1, fc21, fc22, fc3, fc4
FORWARD_MACS = sum(a * b for a, b in LAYERS)
# The data (input of fc1) need no gradient.
INPUT_GRADIENT_MACS = FORWARD_MACS - 784 * 400
TRAIN_FLOPS_PER_EXAMPLE = 2 * (2 * FORWARD_MACS + INPUT_GRADIENT_MACS)
RULE_OF_THUMB_FLOPS_PER_EXAMPLE = 3 * 2 * FORWARD_MACS
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _best_seconds(fn, repeats, inner):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def _mlp_step_products(batch, rng):
    """The matrix products of one training step of the MLP (forward, weight and input grads)."""
    f32 = np.float32
    x = rng.random((batch, 784), dtype=f32)
    weights = [rng.standard_normal(shape, dtype=f32) for shape in LAYERS]
    outputs = [
        rng.standard_normal((batch, b), dtype=f32) for _, b in LAYERS
    ]  # stand-ins for activations and their gradients, same shapes
    hidden, z = outputs[0], outputs[1]
    inputs = [x, hidden, hidden, z, outputs[3]]

    def step():
        for inp, w in zip(inputs, weights):  # forward
            inp @ w
        for inp, out in zip(inputs, outputs):  # weight gradients: inputs^T @ d_outputs
            inp.T @ out
        for out, w in zip(outputs[1:], weights[1:]):  # input gradients, all but fc1
            out @ w.T

    flops = 2 * batch * (2 * FORWARD_MACS + INPUT_GRADIENT_MACS)
    return step, flops


def blas_info() -> dict:
    """BLAS name/version from numpy's build config and, for OpenBLAS, the kernel in use."""
    info = {}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["name"] = blas.get("name")
        info["version"] = blas.get("version")
        info["configuration"] = blas.get("openblas configuration")
    except Exception as error:  # old numpy: no mode="dicts"
        info["error"] = str(error)
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            corename = getattr(lib, f"scipy_openblas_get_corename{suffix}", None)
            threads = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
            if corename is not None:
                corename.restype = ctypes.c_char_p
                info["kernel"] = corename().decode()
                if threads is not None:
                    info["threads"] = int(threads())
                break
    try:  # threadpoolctl, when installed, says the same for any BLAS
        import threadpoolctl

        info["threadpoolctl"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for p in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        pass
    return info


def measure(quick: bool = False) -> dict:
    rng = np.random.default_rng(0)
    repeats = 3 if quick else 5
    size = 1024 if quick else 2048
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    square = _best_seconds(lambda: a @ b, repeats, 2 if quick else 3)
    representative = {}
    for m, k, n in ((128, 784, 400), (128, 400, 784), (784, 128, 400)):
        left = rng.standard_normal((m, k), dtype=np.float32)
        right = rng.standard_normal((k, n), dtype=np.float32)
        seconds = _best_seconds(lambda left=left, right=right: left @ right, repeats, 50)
        representative[f"{m}x{k}@{k}x{n}"] = 2 * m * k * n / seconds / 1e9
    step, step_flops = _mlp_step_products(128, rng)
    step_seconds = _best_seconds(step, repeats, 30 if quick else 100)
    mlp_gflops = step_flops / step_seconds / 1e9
    return {
        "blas": blas_info(),
        "square_size": size,
        "square_gflops": 2 * size**3 / square / 1e9,
        "representative_gflops": representative,
        "mlp_step_gemm_gflops": mlp_gflops,
        "train_flops_per_example": TRAIN_FLOPS_PER_EXAMPLE,
        "rule_of_thumb_flops_per_example": RULE_OF_THUMB_FLOPS_PER_EXAMPLE,
        # The ceiling: the MLP step's own products at the speed numpy's BLAS runs them.
        "ceiling_examples_per_s": mlp_gflops * 1e9 / TRAIN_FLOPS_PER_EXAMPLE,
        "ceiling_square_examples_per_s": 2 * size**3 / square / TRAIN_FLOPS_PER_EXAMPLE,
        "ceiling_rule_of_thumb_examples_per_s": mlp_gflops * 1e9 / RULE_OF_THUMB_FLOPS_PER_EXAMPLE,
    }


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv), indent=1))
