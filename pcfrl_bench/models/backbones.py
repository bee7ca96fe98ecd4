"""Backbones by name: ``timm:<model>`` (pooled features) and in-repo trunks registered in BACKBONES (their names
and the model keys each backbone takes are in ``schema.models``, which ``check_model`` reads without torch).

A backbone maps (B, 3, H, W) to flat features (B, D); it is what the linear probes see (F_s).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..registry import Registry
from ..schema.models import TIMM_RESNETS, check_model

BackboneBuilder = Callable[[ModelConfig], nn.Module]
BACKBONES: Registry[BackboneBuilder] = Registry("backbone")


def _small_input_stem(model: nn.Module) -> None:
    """CIFAR-style stem for timm ResNets: 3x3 stride-1 first conv and no max-pool (keeps 8x8 maps at 32 px)."""
    conv = model.conv1
    if isinstance(conv, nn.Conv2d):
        model.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
    else:  # deep stem (resnet*d, test_resnet): a Sequential whose first conv strides
        first = conv[0]
        conv[0] = nn.Conv2d(first.in_channels, first.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()


def timm_backbone(name: str, cfg: ModelConfig) -> nn.Module:
    """A timm model with its classifier removed (``num_classes=0``): pooled features."""
    import timm  # imported when a timm backbone is built: it is slow to import (check_model has vetted the name)

    kwargs = {}
    if cfg.width != 1.0:
        kwargs["channels"] = tuple(max(1, round(c * cfg.width)) for c in (64, 128, 256, 512))
    if name.startswith(TIMM_RESNETS):
        kwargs["zero_init_last"] = cfg.zero_init_residual
    if cfg.pretrained:
        if "channels" in kwargs:
            raise ConfigError(f"model.pretrained: timm's weights of {name} exist at model.width=1 only")
        if cfg.pretrained_file:  # offline: timm reads the file instead of downloading
            kwargs["pretrained_cfg_overlay"] = {"file": str(Path(cfg.pretrained_file).expanduser())}
    model = timm.create_model(name, pretrained=cfg.pretrained, num_classes=0, **kwargs)
    if cfg.small_stem and hasattr(model, "conv1") and hasattr(model, "maxpool"):
        _small_input_stem(model)
    return model


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def imagenet_standardise(x: torch.Tensor) -> torch.Tensor:
    """([0, 1] images) -> ImageNet-standardised images."""
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class ImageNetStandardisation(nn.Module):
    """:func:`imagenet_standardise` as a module (no parameters, no state-dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imagenet_standardise(x)


def _standardise_inputs(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Forward pre-hook applying :func:`imagenet_standardise` to a backbone's first argument."""
    return (imagenet_standardise(args[0]), *args[1:])


def build_backbone(cfg: ModelConfig) -> nn.Module:
    """``timm:<name>`` or a name registered in BACKBONES, with ``model.input_norm`` applied to its inputs."""
    check_model(cfg)
    if cfg.backbone.startswith("timm:"):
        model = timm_backbone(cfg.backbone.removeprefix("timm:"), cfg)
    elif cfg.pretrained:
        raise ConfigError(f"model.pretrained selects timm's weights (timm:* backbones); for {cfg.backbone!r} give "
                          "a weights file with model.checkpoint=PATH")
    else:
        model = BACKBONES.get(cfg.backbone)(cfg)
    if cfg.input_norm == "imagenet":
        if hasattr(model, "input_transform"):  # a trunk whose map PCL reads directly (forward_map, not forward)
            model.input_transform = ImageNetStandardisation()
        else:
            model.register_forward_pre_hook(_standardise_inputs)
    return model


@torch.no_grad()
def feature_dim(backbone: nn.Module, image_size: int) -> int:
    """The flat feature size for square inputs of ``image_size`` (read from a dummy forward, in eval mode)."""
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters(), torch.empty(0)).device  # the pixel floor has no parameters
    dim = backbone(torch.zeros(1, 3, image_size, image_size, device=device)).flatten(1).shape[1]
    backbone.train(was_training)
    return int(dim)


class FlatPixels(nn.Module):
    """The raw-pixel floor: an image is its own feature vector (B, 3*H*W); the probes standardise it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


@BACKBONES.register("pixels")
def pixels_backbone(cfg: ModelConfig) -> nn.Module:
    """No trunk: flattened pixels at the evaluation size (``raw-pixels`` method)."""
    return FlatPixels()


@BACKBONES.register("facecycle")
def facecycle_backbone(cfg: ModelConfig) -> nn.Module:
    """The PCL/PCFRL trunk (``models/facecycle.py``); ``model.width`` scales its channels, ``model.batchnorm`` adds
    BatchNorm after its convolutions (not in the official trunk)."""
    from .facecycle import FaceCycleBackbone

    return FaceCycleBackbone(width=cfg.width, batchnorm=cfg.batchnorm)
