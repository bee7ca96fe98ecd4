"""Where a pretraining step's time goes: one training step of each method split into regions.

Usage: python benchmarks/bench_step_profile.py [--methods simclr,pcl,pcfrl] [--task synth-fer] [--preset quick]
       [--set KEY=VALUE ...] [--repeats 5] [--threads 1] [--top N [--shapes]]

Each method is built as ``pcfrl-bench run`` builds it (``--set`` applies to all, e.g.
``pretrain.channels_last=false``) and trained on one random batch like ``pcfrl-bench complexity``: the
memory format and precision of ``pretrain`` are applied as the training loop applies them. A step is
split into regions: trunk, subnets, heads, decoder (modules), views (augmentations and PDD input noise),
losses, calibration (Algorithm 1 scores and threshold) and the optimiser step; ``other`` is every
other tensor op (concatenations, gathers, the logged calibration counts). Every ATen op of the step is
timed on its own in CPU time (``time.thread_time``: on a shared machine the time other processes hold
the core is not counted) and given to the innermost region it ran in; a backward op goes to the region
whose forward created its autograd node (by sequence number). ``outside ops`` is the clean step's CPU time
(no instrumentation) minus the ops' sum: Python, the dispatcher and the autograd engine. FLOPs are
``torch.utils.flop_counter``'s (matmuls and convolutions, 2 per multiply-accumulate). Figures are medians
over ``--repeats`` steps; run with one thread (the default), where every op runs on the timed thread.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from pcfrl_bench.methods import calibrated, pcl, simclr
from pcfrl_bench.precision import MixedPrecision
from pcfrl_bench.resolution import resolve
from pcfrl_bench.runner import build_method
from pcfrl_bench.train import build_optimizer, optimisation_step, place_batch

REGIONS = ("trunk", "subnets", "heads", "decoder", "views", "losses", "calibration", "optimizer", "other")
# functions looked up by name at call time in the method modules: (module, name, region)
FUNCTIONS = (
    (pcl, "face_views", "views"), (pcl, "pose_views", "views"), (pcl, "face_appearance", "views"),
    (pcl, "pose_transform", "views"), (pcl, "rank_rows", "views"), (simclr, "simclr_view", "views"),
    (pcl, "reconstruction_loss", "losses"), (pcl, "orthogonality_loss", "losses"), (simclr, "nt_xent", "losses"),
    (calibrated, "contrastive_loss", "losses"), (calibrated, "calibrated_loss", "losses"),
    (calibrated, "draw_negative_mix", "losses"), (calibrated, "mixed_negative_cosines", "losses"),
    (calibrated, "calibration_scores", "calibration"), (calibrated, "calibrate", "calibration"),
)
# submodules of a method by attribute name: their forward (and ``forward_map``) is a region
MODULES = (("backbone", "trunk"), ("face_subnet", "subnets"), ("pose_subnet", "subnets"), ("face_head", "heads"),
           ("pose_head", "heads"), ("projector", "heads"), ("decoder", "decoder"))
AUTOGRAD_LEAF = 2**64 - 1  # the sequence number of AccumulateGrad nodes


def _sequence_number() -> int:
    """The autograd sequence number the next node created on this thread gets (a throw-away node takes one)."""
    with torch.enable_grad():
        return torch.empty((), requires_grad=True).view(()).grad_fn._sequence_nr() + 1


class RegionProfiler(TorchDispatchMode):
    """Times every ATen op (CPU time) and counts its FLOPs into the region it belongs to."""

    def __init__(self, shapes: bool = False) -> None:
        super().__init__()
        self.shapes = shapes  # name ops with the shapes of their first two tensor arguments
        self.stack = ["other"]
        self.starts: list[int] = [0]  # sequence numbers at which the current region changed ...
        self.owners: list[str] = ["other"]  # ... and the region from there on
        self.time_ns: dict[tuple[str, str], int] = defaultdict(int)
        self.flops: dict[tuple[str, str], int] = defaultdict(int)
        self.op_ns: dict[tuple[str, str, str], int] = defaultdict(int)  # (phase, region, op) -> CPU ns
        self.op_flops: dict[tuple[str, str, str], int] = defaultdict(int)
        self._quiet = False

    def _mark(self) -> None:
        self._quiet = True
        seq = _sequence_number()
        self._quiet = False
        self.starts.append(seq)
        self.owners.append(self.stack[-1])

    def enter(self, region: str) -> None:
        self.stack.append(region)
        self._mark()

    def leave(self) -> None:
        self.stack.pop()
        self._mark()

    @contextlib.contextmanager
    def region(self, name: str) -> Iterator[None]:
        self.enter(name)
        try:
            yield
        finally:
            self.leave()

    def owner(self, seq: int) -> str:
        """The region whose forward created the autograd node with sequence number ``seq``."""
        if seq == AUTOGRAD_LEAF:
            return "other"
        return self.owners[bisect.bisect_right(self.starts, seq) - 1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._quiet:
            return func(*args, **kwargs)
        node = torch._C._current_autograd_node()
        t0 = time.thread_time_ns()
        out = func(*args, **kwargs)
        elapsed = time.thread_time_ns() - t0
        key = ("backward", self.owner(node._sequence_nr())) if node is not None else ("forward", self.stack[-1])
        op = func.overloadpacket.__name__
        if self.shapes:
            op += " " + " ".join(str(tuple(a.shape)) for a in [a for a in args if isinstance(a, torch.Tensor)][:2])
        self.time_ns[key] += elapsed
        self.op_ns[(*key, op)] += elapsed
        if func.overloadpacket in flop_registry:
            flops = int(flop_registry[func.overloadpacket](*args, **kwargs, out_val=out))
            self.flops[key] += flops
            self.op_flops[(*key, op)] += flops
        return out


def _wrap(fn: Callable[..., Any], profiler: RegionProfiler, region: str) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with profiler.region(region):
            return fn(*args, **kwargs)
    return wrapped


@contextlib.contextmanager
def instrumented(method: nn.Module, optimizer: torch.optim.Optimizer, profiler: RegionProfiler) -> Iterator[None]:
    """``method`` and the method modules' functions with their regions marked (undone on exit)."""
    undo: list[Callable[[], None]] = []
    try:
        for module, name, region in FUNCTIONS:
            original = getattr(module, name)
            setattr(module, name, _wrap(original, profiler, region))
            undo.append(lambda m=module, n=name, o=original: setattr(m, n, o))
        for attr, region in MODULES:
            sub = getattr(method, attr, None)
            if sub is None:
                continue
            pre = sub.register_forward_pre_hook(lambda *_, r=region: profiler.enter(r), prepend=True)
            post = sub.register_forward_hook(lambda *_: profiler.leave())
            undo += [pre.remove, post.remove]
            if hasattr(sub, "forward_map"):  # PCL calls the trunk's map directly, past the module's hooks
                sub.forward_map = _wrap(sub.forward_map, profiler, region)
                undo.append(lambda s=sub: delattr(s, "forward_map"))
        optimizer.step = _wrap(optimizer.step, profiler, "optimizer")
        undo.append(lambda: delattr(optimizer, "step"))
        yield
    finally:
        for fn in reversed(undo):
            fn()


@dataclass
class Step:
    """One method ready to train on one random batch, as the training loop would set it up."""

    method: nn.Module
    optimizer: torch.optim.Optimizer
    batch: dict[str, torch.Tensor]
    amp: MixedPrecision
    cfg: Any  # the resolved RunConfig

    def run(self) -> Any:
        return optimisation_step(self.method, self.optimizer, self.batch, amp=self.amp)


def build_step(name: str, task: str, preset: str, overrides: list[str]) -> Step:
    """``name`` built as ``pcfrl-bench run`` builds it, in its ``pretrain`` memory format and precision, with a
    fixed random batch of its batch and image size."""
    cfg = (resolved := resolve(name, task, preset, 0, "cpu", overrides)).config
    method = build_method(resolved).train()
    if cfg.pretrain.channels_last:
        method.to(memory_format=torch.channels_last)
    size, batch_size = cfg.data.image_size, cfg.pretrain.batch_size
    images = torch.rand(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    return Step(method, build_optimizer(method.parameters(), cfg.pretrain.optim),
                place_batch({"image": images}, torch.device("cpu"), cfg.pretrain.channels_last),
                MixedPrecision(cfg.pretrain.precision, torch.device("cpu")), cfg)


def profile_method(name: str, task: str, preset: str, overrides: list[str], repeats: int,
                   shapes: bool = False) -> dict[str, Any]:
    """Median CPU ms and FLOPs per region and phase over ``repeats`` instrumented steps, and the clean step."""
    step = build_step(name, task, preset, overrides)
    method, optimizer, cfg = step.method, step.optimizer, step.cfg
    torch.manual_seed(0)
    step.run()  # warm-up (first-call allocations, kernel choice)
    clean, profiled = [], []
    for _ in range(repeats):
        t0 = time.thread_time_ns()
        step.run()
        clean.append(time.thread_time_ns() - t0)
        profiler = RegionProfiler(shapes)
        with instrumented(method, optimizer, profiler), profiler:
            step.run()
        profiled.append(profiler)
    keys = sorted({k for p in profiled for k in p.time_ns})
    ms = {k: statistics.median(p.time_ns.get(k, 0) for p in profiled) / 1e6 for k in keys}
    flops = {k: profiled[0].flops.get(k, 0) for k in keys}
    op_keys = {k for p in profiled for k in p.op_ns}
    ops = {k: statistics.median(p.op_ns.get(k, 0) for p in profiled) / 1e6 for k in op_keys}
    return {"ms": ms, "flops": flops, "ops": ops, "op_flops": profiled[0].op_flops, "step_ms": statistics.median(clean) / 1e6,
            "batch_size": cfg.pretrain.batch_size, "image_size": cfg.data.image_size,
            "channels_last": cfg.pretrain.channels_last, "precision": cfg.pretrain.precision, "width": cfg.model.width}


def table(name: str, r: dict[str, Any]) -> str:
    """A markdown table of one method's regions: forward / backward / total ms, share, GFLOP, GFLOP/s."""
    lines = [f"**{name}** (batch {r['batch_size']}, {r['image_size']} px, width {r['width']}, {r['precision']}, "
             f"channels_last {str(r['channels_last']).lower()}): step {r['step_ms']:.0f} ms CPU",
             "", "| region | forward ms | backward ms | total ms | share | GFLOP | GFLOP/s |", "|---|---|---|---|---|---|---|"]
    ms, flops, step = r["ms"], r["flops"], r["step_ms"]
    ops_total = 0.0
    for region in REGIONS:
        fwd, bwd = ms.get(("forward", region), 0.0), ms.get(("backward", region), 0.0)
        gflop = (flops.get(("forward", region), 0) + flops.get(("backward", region), 0)) / 1e9
        if fwd + bwd == 0:
            continue
        ops_total += fwd + bwd
        rate = f"{gflop / ((fwd + bwd) / 1e3):.1f}" if gflop else "-"
        lines.append(f"| {region} | {fwd:.0f} | {bwd:.0f} | {fwd + bwd:.0f} | {100 * (fwd + bwd) / step:.0f} % | "
                     f"{gflop:.2f} | {rate} |")
    outside = step - ops_total
    total_gflop = sum(flops.values()) / 1e9
    lines.append(f"| outside ops | | | {outside:.0f} | {100 * outside / step:.0f} % | | |")
    lines.append(f"| **step** | | | **{step:.0f}** | 100 % | {total_gflop:.2f} | {total_gflop / (step / 1e3):.1f} |")
    return "\n".join(lines)


def top_ops(r: dict[str, Any], n: int) -> str:
    """The ``n`` op kinds with the most CPU time, per region and phase, with their GFLOP/s where counted."""
    rows = sorted(r["ops"].items(), key=lambda kv: -kv[1])[:n]
    lines = ["| region | phase | op | ms | share | GFLOP/s |", "|---|---|---|---|---|---|"]
    for key, t in rows:
        phase, region, op = key
        rate = r["op_flops"].get(key, 0) / 1e6 / t if t else 0.0
        lines.append(f"| {region} | {phase} | `{op}` | {t:.0f} | {100 * t / r['step_ms']:.0f} % | "
                     f"{f'{rate:.0f}' if rate else '-'} |")
    return "\n".join(lines)


def step_arguments(description: str) -> argparse.ArgumentParser:
    """The options both step benchmarks take: which methods, built for which task and preset, how many steps."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--methods", default="simclr,pcl,pcfrl")
    ap.add_argument("--task", default="synth-fer")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--repeats", type=int, default=5)
    return ap


def header() -> str:
    return (f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}; command: {' '.join(sys.argv)}\n")


def main() -> None:
    ap = step_arguments(__doc__.splitlines()[0])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=0, help="also list the N most expensive op kinds of each method")
    ap.add_argument("--shapes", action="store_true", help="tell ops in --top apart by their input shapes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(header())
    for name in args.methods.split(","):
        result = profile_method(name, args.task, args.preset, args.overrides, args.repeats, args.shapes)
        print(table(name, result) + "\n", flush=True)
        if args.top:
            print(top_ops(result, args.top) + "\n", flush=True)


if __name__ == "__main__":
    main()
