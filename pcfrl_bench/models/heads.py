"""Projection heads."""

from __future__ import annotations

from torch import nn


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, out_bn: bool = False) -> nn.Sequential:
    """Linear -> BN -> ReLU -> Linear (SimCLR's projection head), optionally with a final BatchNorm1d."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                               nn.Linear(hidden_dim, out_dim)]
    if out_bn:
        layers.append(nn.BatchNorm1d(out_dim))
    return nn.Sequential(*layers)
