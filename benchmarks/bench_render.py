"""Synthetic-face renderer throughput on ONE CPU thread (issue target: >= 2,000 images/s at 64x64).

Usage: python benchmarks/bench_render.py [--sizes 64] [--batches 64 256] [--repeats 5]
Prints a table of images/s by wall clock and by process CPU time (the latter is robust to a busy machine).
"""

from __future__ import annotations

import argparse
import time

import torch

from pcfrl_bench.data.synthetic import SyntheticClips, SyntheticWorld, render_faces, sample_factors


def measure(batch: int, size: int, repeats: int) -> tuple[float, float]:
    """(images/s wall, images/s CPU) of render_faces on random factors, best of `repeats` runs."""
    factors = sample_factors(batch, seed=0)
    render_faces(factors, size)  # warm-up: builds and caches the template
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        render_faces(factors, size)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return batch / best_wall, batch / best_cpu


def measure_dataset(batch: int, size: int, repeats: int) -> float:
    """images/s (wall) of SyntheticClips.__getitems__ (factor assembly + rendering + item dicts)."""
    ds = SyntheticClips(SyntheticWorld(0, 1000, 4, 16), image_size=size)
    idx = list(range(batch))
    ds.__getitems__(idx)
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        ds.__getitems__([i + r * batch for i in idx])
        best = min(best, time.perf_counter() - t0)
    return batch / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads = {torch.get_num_threads()}")
    print(f"{'size':>5} {'batch':>6} {'img/s wall':>11} {'img/s cpu':>10} {'dataset img/s':>14}")
    for size in args.sizes:
        for batch in args.batches:
            wall, cpu = measure(batch, size, args.repeats)
            ds = measure_dataset(batch, size, max(1, args.repeats // 2))
            print(f"{size:>5} {batch:>6} {wall:>11.0f} {cpu:>10.0f} {ds:>14.0f}")


if __name__ == "__main__":
    main()
