"""How fast the host lets this machine's CPUs run, sampled over time.

    python -m benchmarks.hostspeed --seconds 10

On a virtual machine the host can slow the virtual CPUs down (other guests on the same
physical cores, frequency changes) without the guest seeing it: the slowed thread still counts
as running, and ``/proc/stat`` shows no steal time, so the ``load`` column of `benchmarks.run`
reads 0.0+0.0 through it. This samples a fixed pure-Python loop of about 5 ms every 0.1 s and
prints its speed in loop iterations per second of the thread's own CPU time.

On the idle 2-vCPU benchmark VM, 8 s of samples ranged from 14.7 to 34.8 M iterations/s
(median 20.7). Two runs (15 s and 10 s) of a similar loop, one per vCPU at once, counted between
2.6 and 8.2 thousand iterations per 0.5 s window, while their thread CPU time equalled the wall time,
and both slowed in the same windows. That is why the benchmarks compare implementations in
alternation inside one process (`benchmarks.steps`, `benchmarks.paired`) rather than trusting
two rows measured minutes apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

PERIOD_S = 0.1
LOOP = 100_000  # iterations per sample: ~5 ms on a 2.8 GHz Xeon


def _spin(count: int) -> int:
    total = 0
    for i in range(count):
        total += i
    return total


def sample() -> float:
    """Loop iterations per second of this thread's CPU time, over one ~5 ms loop."""
    cpu = time.thread_time()
    _spin(LOOP)
    return LOOP / max(time.thread_time() - cpu, 1e-9)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to sample")
    args = parser.parse_args(argv)
    deadline = time.perf_counter() + args.seconds
    rates = []
    while time.perf_counter() < deadline:
        rates.append(sample())
        time.sleep(PERIOD_S)
    print(" ".join(f"{rate / 1e6:.1f}" for rate in rates))
    low, high = min(rates), max(rates)
    print(
        f"M iterations per CPU-second: median {statistics.median(rates) / 1e6:.1f}, "
        f"min {low / 1e6:.1f}, max {high / 1e6:.1f} (max/min {high / low:.1f}, "
        f"{len(rates)} samples)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
