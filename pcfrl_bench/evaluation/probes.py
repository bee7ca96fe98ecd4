"""Probes trained on cached frozen features (docs/design.md, Linear evaluation).

The probe sees fixed features, so each epoch is a few matrix products: 300 epochs take seconds. Both the
final-epoch metric (default model selection) and the best test metric over epochs (what the official PCL
code reports) are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ProbeConfig

Metric = Callable[[Tensor, Tensor], dict[str, float]]  # (outputs, targets) -> named metrics


@dataclass
class ProbeResult:
    final: dict[str, float]
    best: dict[str, float]
    best_epoch: int
    history: list[float] = field(default_factory=list)  # the primary metric per epoch
    history_metrics: list[dict[str, float]] = field(default_factory=list)  # every metric per epoch


def normalize_features(train: Tensor, test: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """Optional feature normalisation, fitted on the training split only."""
    if mode == "standardize":
        mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
        return (train - mean) / std, (test - mean) / std
    if mode == "l2":
        return F.normalize(train, dim=1), F.normalize(test, dim=1)
    return train, test


def build_probe(in_dim: int, out_dim: int, head: str) -> nn.Module:
    """Linear, or BatchNorm1d + Linear (the HPE and AU probes of docs/design.md)."""
    linear = nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.BatchNorm1d(in_dim), linear) if head == "bn_linear" else linear


def _optimizer(probe: nn.Module, cfg: ProbeConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(probe.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(probe.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_probe(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, out_dim: int, cfg: ProbeConfig,
    loss_fn: Callable[[Tensor, Tensor], Tensor], metric_fn: Metric, primary: str, higher_is_better: bool,
    seed: int, device: torch.device,
) -> ProbeResult:
    """Train a probe with mini-batches for ``cfg.epochs`` epochs; evaluate the test split after every epoch."""
    torch.manual_seed(seed)
    train_x, test_x = normalize_features(train_x.float(), test_x.float(), cfg.normalize)
    train_x, train_y, test_x = train_x.to(device), train_y.to(device), test_x.to(device)
    probe = build_probe(train_x.shape[1], out_dim, cfg.head).to(device)
    optimizer = _optimizer(probe, cfg)
    steps = max(1, -(-len(train_x) // cfg.batch_size))
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps)
                 if cfg.scheduler == "cosine" else None)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    history, history_metrics, best, best_epoch, final = [], [], {}, 0, {}
    for epoch in range(cfg.epochs):
        probe.train()
        order = torch.randperm(len(train_x), generator=generator).to(device)
        for chunk in order.split(cfg.batch_size):
            if len(chunk) < 2 and cfg.head == "bn_linear":
                continue  # BatchNorm cannot train on a single sample
            loss = loss_fn(probe(train_x[chunk]), train_y[chunk])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        probe.eval()
        with torch.no_grad():
            final = metric_fn(probe(test_x).cpu(), test_y)
        history.append(final[primary])
        history_metrics.append(dict(final))
        better = final[primary] > best.get(primary, -float("inf")) if higher_is_better \
            else final[primary] < best.get(primary, float("inf"))
        if better:
            best, best_epoch = dict(final), epoch + 1
    return ProbeResult(final, best, best_epoch, history, history_metrics)


def accuracy(outputs: Tensor, targets: Tensor) -> dict[str, float]:
    """Top-1 accuracy in percent."""
    return {"accuracy": 100.0 * (outputs.argmax(1) == targets).float().mean().item()}
