"""Paper Table 10: seconds per training step, FLOPs, MACs and parameters of pretraining methods.

Every method runs real training steps (forward, backward, optimiser step, post-step hook) on one random
batch of the configured size, in the memory format and precision its ``pretrain`` config trains in. FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, which counts
matrix multiplications and convolutions at 2 FLOPs per multiply-accumulate (element-wise ops are not
counted), so MACs = FLOPs / 2. Step times of several methods are taken in turns, so a change in machine
load hits all of them alike; CUDA is synchronised before each clock reading.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import PretrainConfig
from ..methods.base import Method
from ..models.pcl_parts import count_parameters
from ..precision import MixedPrecision
from ..train import build_optimizer, optimisation_step, place_batch

PROTOCOL = ("paper Table 10: median wall time of a training step (forward, backward, optimiser step); FLOPs "
            "of the training forward pass per input image (torch.utils.flop_counter, 2 FLOPs per MAC; "
            "element-wise ops not counted); MACs = FLOPs / 2; parameters of the whole pretraining model")


@dataclass(frozen=True)
class Complexity:
    """What Table 10 reports for one method, plus the raw counts behind it."""

    step_times_s: tuple[float, ...]
    forward_flops: int  # the training forward pass (loss included) on the whole batch
    train_flops: int  # forward + backward + optimiser step on the whole batch
    encoder_flops_per_image: int  # the frozen feature extractor on one image (evaluation)
    params: int
    encoder_params: int
    batch_size: int

    def metrics(self) -> dict[str, float]:
        """Table 10's columns (``time_s``, ``flops_g``, ``macs_g``, ``params_m``), the raw counts and the
        training arithmetic rate (``train_gflops_per_s``: training FLOPs per step / median step time)."""
        flops_per_image = self.forward_flops / self.batch_size
        time_s = statistics.median(self.step_times_s)
        return {"time_s": time_s, "time_min_s": min(self.step_times_s),
                "flops_g": flops_per_image / 1e9, "macs_g": flops_per_image / 2e9, "params_m": self.params / 1e6,
                "train_gflops_per_step": self.train_flops / 1e9, "train_gflops_per_s": self.train_flops / 1e9 / time_s,
                "encoder_gflops_per_image": self.encoder_flops_per_image / 1e9,
                "encoder_params_m": self.encoder_params / 1e6}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (matmuls and convolutions, 2 per MAC) of everything ``fn`` runs."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_complexity(methods: Mapping[str, Method], pretrain: Mapping[str, PretrainConfig], batch_size: int,
                       image_size: int, device: torch.device, repeats: int = 3, seed: int = 0,
                       on_step: Callable[[str, str], None] | None = None) -> dict[str, Complexity]:
    """Table 10 for each method: FLOP counts on one (also warm-up) training step, then ``repeats`` timed
    steps per method, taken in turns. ``pretrain[name]`` gives the optimiser, ``channels_last`` and
    ``precision`` the pretraining would use. ``on_step(name, phase)`` is called after each step (progress)."""
    if repeats < 1 or batch_size < 2:
        raise ValueError(f"need repeats >= 1 and batch_size >= 2 (got {repeats}, {batch_size})")
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, image_size, image_size, generator=generator)
    optimizers, batches, amps, counts = {}, {}, {}, {}
    for name, method in methods.items():
        cfg = pretrain[name]
        method.to(device).train()
        if cfg.channels_last:
            method.to(memory_format=torch.channels_last)
        optimizers[name] = build_optimizer(method.parameters(), cfg.optim)
        batches[name] = batch = place_batch({"image": images}, device, cfg.channels_last)
        amps[name] = amp = MixedPrecision(cfg.precision, device)
        with torch.no_grad(), amp.autocast():
            forward = count_flops(lambda: method.training_step(batch))
        train = count_flops(lambda: optimisation_step(method, optimizers[name], batch, amp=amp))
        encoder = method.encoder().eval()
        with torch.no_grad():
            enc = count_flops(lambda: encoder(batch["image"][:1]))
        method.train()
        counts[name] = (forward, train, enc)
        if on_step:
            on_step(name, "count")
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            _synchronise(device)
            t0 = time.perf_counter()
            optimisation_step(method, optimizers[name], batches[name], amp=amps[name])
            _synchronise(device)
            times[name].append(time.perf_counter() - t0)
            if on_step:
                on_step(name, "time")
    return {name: Complexity(tuple(times[name]), *counts[name], count_parameters(method),
                             count_parameters(method.encoder()), batch_size)
            for name, method in methods.items()}


__all__ = ["PROTOCOL", "Complexity", "count_flops", "measure_complexity"]
