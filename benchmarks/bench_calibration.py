"""Time NPA pair alignment (Eq. 3-5) + calibration (Algorithm 1) and the Eq. 6/7 losses on CPU.

Usage: python benchmarks/bench_calibration.py [--m 512] [--d 512] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from pcfrl_bench.calibration import calibrate, pair_alignment
from pcfrl_bench.losses import calibrated_loss, contrastive_loss


def time_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and minimum wall time in milliseconds over ``repeats`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=512, help="number of views (2N)")
    ap.add_argument("--d", type=int, default=512, help="embedding dimension")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m, d = args.m, args.d
    z = torch.randn(m, d, requires_grad=True)
    groups = torch.arange(m // 2).repeat(2)

    def npa_and_calibrate() -> torch.Tensor:
        return calibrate(pair_alignment(z, alpha=10.0), groups, rule="threshold", threshold=1.0)

    pa = pair_alignment(z)
    cal = calibrate(pa, groups)

    def losses_fwd_bwd() -> None:
        loss = contrastive_loss(z, groups, cal) + calibrated_loss(z, groups, cal, pa, beta=1.0)
        loss.backward()

    print(f"M={m} d={d} threads={torch.get_num_threads()} torch={torch.__version__}")
    for name, fn in (
        ("pair_alignment", lambda: pair_alignment(z)),
        ("pair_alignment + calibrate", npa_and_calibrate),
        ("contrastive + calibrated loss fwd+bwd", losses_fwd_bwd),
    ):
        med, best = time_ms(fn, args.repeats)
        print(f"{name:40s} median {med:8.2f} ms   min {best:8.2f} ms")
    # How many anchors the threshold rule (T=1, alpha=10) calibrates: Eq. 5 is a sum over 2N-2 terms,
    # so PA grows with the batch size and with any shared direction of the embeddings.
    shared = torch.randn(1, d)
    cases = (
        ("isotropic random", z.detach()),
        ("random + shared direction (cos~0.2)", z.detach() + 0.5 * shared),
    )
    for label, emb in cases:
        for red in ("sum", "mean"):
            scores = pair_alignment(emb, 10.0, ns_reduction=red)
            n_cal = int(calibrate(scores, groups, threshold=1.0).any(1).sum())
            off = scores[groups[:, None] != groups[None, :]]
            print(f"{label:38s} NS={red:4s}: calibrated anchors {n_cal:4d}/{m}, "
                  f"candidate PA median {off.median():7.3f} max {off.max():7.3f}")


if __name__ == "__main__":
    main()
