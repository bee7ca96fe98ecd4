"""Backbone names and the model keys only some backbones take: ``check_model``, without torch (and without timm
for the timm models the registry uses)."""

from __future__ import annotations

from collections.abc import Callable

from ..config import ModelConfig
from ..errors import ConfigError, UnknownNameError

BACKBONE_NAMES = ("facecycle", "pixels")  # the in-repo trunks of models.backbones.BACKBONES
TIMM_RESNETS = ("resnet", "test_resnet")  # timm names whose residual branches end in a zero-initialisable BN
# timm models the registry's YAML (and ModelConfig's default) use: known without importing timm (slow to import);
# tests/test_schema.py checks that timm has each of them
TIMM_MODELS = frozenset({"resnet18", "test_resnet"})

# Model keys that only some backbones take: key -> (the value that means "not used", whether a backbone takes
# it, those backbones in words). Any other value with another backbone is an error when the config resolves.
BACKBONE_SPECIFIC: dict[str, tuple[object, Callable[[str], bool], str]] = {
    "width": (1.0, lambda b: b == "facecycle" or b.startswith("timm:resnet"), "facecycle and timm ResNets"),
    "batchnorm": (False, lambda b: b == "facecycle", "facecycle"),
    "zero_init_residual": (False, lambda b: b.startswith(tuple(f"timm:{n}" for n in TIMM_RESNETS)), "timm ResNets"),
}


def check_timm_model(name: str) -> None:
    """Raise UnknownNameError (with close matches) unless timm has a model ``name``; imports timm only for a name
    outside ``TIMM_MODELS``."""
    if name in TIMM_MODELS:
        return
    import timm  # slow to import: only for timm models the registry does not use

    if not timm.is_model(name):
        known = timm.list_models()
        raise UnknownNameError("timm model", name, known,
                               f"{len(known)} timm models exist: python -c 'import timm; print(timm.list_models())'")


def check_model(cfg: ModelConfig) -> None:
    """Raise a ConfigError for a model section that ``build_backbone`` would reject or ignore (checked when a
    run's config is resolved, so ``config`` rejects what ``run`` would): an unknown backbone, or a
    backbone-specific key (``BACKBONE_SPECIFIC``) set for a backbone that does not take it."""
    if cfg.backbone.startswith("timm:"):
        check_timm_model(cfg.backbone.removeprefix("timm:"))
    elif cfg.backbone not in BACKBONE_NAMES:
        raise UnknownNameError("backbone", cfg.backbone, [*sorted(BACKBONE_NAMES), "timm:<model>"])
    for key, (unused, takes, which) in BACKBONE_SPECIFIC.items():
        value = getattr(cfg, key)
        if value != unused and not takes(cfg.backbone):
            raise ConfigError(f"model.{key}={value} applies to {which}, not {cfg.backbone} (the task chooses "
                              f"the backbone; set model.{key} only with a backbone that takes it)")
