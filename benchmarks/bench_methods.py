"""Paper Table 10: time per training step of PCL vs PCFRL, FLOPs / MACs / parameters.

Both methods are built through the registry exactly as a run builds them (facecycle trunk, width 1,
64x64 input, batch 256 by default) and trained on a random batch: forward, backward and Adam step.
FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (counts matmul/conv FLOPs, 2 per MAC;
element-wise ops are not counted); MACs = FLOPs / 2.

Usage: python benchmarks/bench_methods.py [--batch 256] [--size 64] [--width 1] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from pcfrl_bench.models.pcl_parts import count_parameters
from pcfrl_bench.runner import build_method, resolve


def build(name: str, size: int, width: float, batch: int):
    overrides = ["model.backbone=facecycle", f"model.width={width}", f"data.image_size={size}",
                 f"eval.image_size={size}", f"pretrain.batch_size={batch}"]
    resolved = resolve(name, "digits", "paper", overrides=overrides)
    torch.manual_seed(0)
    method = build_method(resolved)
    opt = torch.optim.Adam(method.parameters(), lr=1e-4, weight_decay=1e-3)
    return method, opt


def step(method, opt, batch: dict[str, torch.Tensor]) -> float:
    out = method.training_step(batch)
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()
    method.on_step_end()
    return float(out.loss.detach())


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["pcl", "pcfrl"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = {"image": torch.rand(args.batch, 3, args.size, args.size)}
    built, train_flops, enc_flops, times = {}, {}, {}, {name: [] for name in args.methods}
    for name in args.methods:
        method, opt = build(name, args.size, args.width, args.batch)
        method.train()
        train_flops[name] = flops(lambda: step(method, opt, batch))  # also the warm-up step
        method.eval()
        with torch.no_grad():
            enc_flops[name] = flops(lambda: method.encoder()(batch["image"][:1]))
        method.train()
        built[name] = (method, opt)
    for _ in range(args.repeats):  # interleaved, so a change in machine load hits both methods alike
        for name in args.methods:
            t0 = time.perf_counter()
            step(*built[name], batch)
            times[name].append(time.perf_counter() - t0)
    rows = [(name, statistics.median(times[name]), min(times[name]), train_flops[name], enc_flops[name],
             count_parameters(built[name][0]), count_parameters(built[name][0].encoder()))
            for name in args.methods]
    print(f"batch={args.batch} size={args.size} width={args.width} threads={torch.get_num_threads()} "
          f"repeats={args.repeats} torch={torch.__version__} device=cpu")
    print(f"{'method':8s} {'step s (median)':>16s} {'min':>8s} {'train GFLOPs/step':>18s} {'GMACs/step':>11s} "
          f"{'enc GFLOPs/img':>15s} {'params M':>9s} {'enc params M':>13s}")
    for name, med, best, tf, ef, prm, eprm in rows:
        print(f"{name:8s} {med:16.3f} {best:8.3f} {tf / 1e9:18.2f} {tf / 2e9:11.2f} {ef / 1e9:15.4f} "
              f"{prm / 1e6:9.3f} {eprm / 1e6:13.3f}")
    if len(rows) >= 2:
        base, other = rows[0], rows[1]
        print(f"{other[0]} / {base[0]} step time: {other[1] / base[1]:.3f} (median), {other[2] / base[2]:.3f} (min); "
              f"paper Table 10: 0.0562 / 0.0547 = {0.0562 / 0.0547:.3f}")


if __name__ == "__main__":
    main()
