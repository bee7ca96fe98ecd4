"""What the execution settings do to a training step: memory format, precision, torch.compile and threads.

Usage: python benchmarks/bench_step_options.py [--methods simclr,pcl,pcfrl] [--task synth-fer] [--preset quick]
       [--repeats 5] [--threads 1,2] [--compile]

For each method, the variants below are built in one process from the same seed and trained on the same
random batch, and their steps are taken in turns (so a change in machine load hits all of them alike):
``nchw fp32`` (``pretrain.channels_last=false``), ``nhwc fp32`` (the default), ``nhwc bf16`` and ``nchw
bf16`` (``pretrain.precision=bf16``), the default at each further thread count of ``--threads``, and with
``--compile`` the default with ``torch.compile`` on the trunk and the decoder (compile time reported apart).
Printed per variant: median CPU seconds (all threads) and wall seconds per step, both relative to ``nchw
fp32``, and the first step's loss relative to ``nchw fp32``'s (same weights, batch and random draws).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from bench_step_profile import Step, build_step, header, step_arguments


@dataclass
class Variant:
    name: str
    step: Step
    threads: int
    loss: float = float("nan")
    compile_s: float = 0.0
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)

    def take(self) -> float:
        torch.set_num_threads(self.threads)
        cpu, wall = time.process_time(), time.perf_counter()
        loss = float(self.step.run().loss.detach())
        self.cpu_s.append(time.process_time() - cpu)
        self.wall_s.append(time.perf_counter() - wall)
        return loss


def compiled(step: Step) -> Step:
    """``step`` with ``torch.compile`` on the trunk's map (or forward) and the decoder's ``decode``."""
    backbone = step.method.backbone
    name = "forward_map" if hasattr(backbone, "forward_map") else "forward"
    setattr(backbone, name, torch.compile(getattr(backbone, name)))
    decoder = getattr(step.method, "decoder", None)
    if decoder is not None:
        decoder.decode = torch.compile(decoder.decode)
    return step


def variants(name: str, task: str, preset: str, threads: list[int], compile_: bool) -> list[Variant]:
    def build(*overrides: str) -> Step:
        return build_step(name, task, preset, list(overrides))

    out = [Variant("nchw fp32", build("pretrain.channels_last=false"), threads[0]),
           Variant("nhwc fp32", build(), threads[0]),
           Variant("nhwc bf16", build("pretrain.precision=bf16"), threads[0]),
           Variant("nchw bf16", build("pretrain.precision=bf16", "pretrain.channels_last=false"), threads[0])]
    out += [Variant(f"nhwc fp32, {n} threads", build(), n) for n in threads[1:]]
    if compile_:
        out.append(Variant("nhwc fp32, torch.compile", compiled(build()), threads[0]))
    return out


def measure(name: str, task: str, preset: str, repeats: int, threads: list[int], compile_: bool) -> str:
    runs = variants(name, task, preset, threads, compile_)
    for v in runs:  # the first step: the loss (same seed for every variant), warm-up, compilation
        torch.manual_seed(0)
        started = time.perf_counter()
        v.loss = v.take()
        v.compile_s = time.perf_counter() - started if "compile" in v.name else 0.0
        v.cpu_s.clear(), v.wall_s.clear()
    for _ in range(repeats):
        for v in runs:
            v.take()
    ref = runs[0]
    cpu0, wall0 = statistics.median(ref.cpu_s), statistics.median(ref.wall_s)
    lines = [f"**{name}**", "", "| variant | CPU s/step | x | wall s/step | x | first loss / nchw fp32 - 1 |",
             "|---|---|---|---|---|---|"]
    for v in runs:
        cpu, wall = statistics.median(v.cpu_s), statistics.median(v.wall_s)
        note = f" (compiling: {v.compile_s:.0f} s)" if v.compile_s else ""
        lines.append(f"| {v.name}{note} | {cpu:.3f} | {cpu / cpu0:.2f} | {wall:.3f} | {wall / wall0:.2f} | "
                     f"{v.loss / ref.loss - 1:+.1e} |")
    return "\n".join(lines)


def main() -> None:
    ap = step_arguments(__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1", help="comma-separated thread counts; the first is the reference")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (minutes of compilation on a CPU)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(threads[0])
    print(header())
    for name in args.methods.split(","):
        print(measure(name, args.task, args.preset, args.repeats, threads, args.compile) + "\n", flush=True)


if __name__ == "__main__":
    main()
