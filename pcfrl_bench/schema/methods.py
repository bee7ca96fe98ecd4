"""Method parameters (``method.*`` of a config) by implementation, with the nested augmentation and calibration
parameters, and each method's check of a resolved config."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..config import BATCH_MAX, EmptyParams, RunConfig, bounded, hash_neutral
from ..errors import ConfigError
from ..registry import Registry

DIM_MAX = 65_536  # widths of heads and projections
PROB = (0.0, 1.0)  # a probability


@dataclass
class AugmentParams:
    """Two-view appearance augmentation (SimCLR defaults; every field settable with ``--set method.augment.*``)."""

    crop_scale: tuple[float, float] = bounded((0.2, 1.0), 0.0, 1.0, open_low=True)
    crop_ratio: tuple[float, float] = bounded((0.75, 4 / 3), 0.0, 100.0, open_low=True)
    flip_p: float = bounded(0.5, *PROB)
    jitter_p: float = bounded(0.8, *PROB)
    brightness: float = bounded(0.4, 0.0, 10.0)
    contrast: float = bounded(0.4, 0.0, 10.0)
    saturation: float = bounded(0.4, 0.0, 10.0)
    hue: float = bounded(0.1, 0.0, 0.5)
    grayscale_p: float = bounded(0.2, *PROB)
    blur_p: float = bounded(0.0, *PROB)
    blur_kernel: int = bounded(7, 1, 255)
    blur_sigma: tuple[float, float] = bounded((0.1, 2.0), 0.0, 100.0, open_low=True)


@dataclass
class FaceAugmentParams:
    """The official appearance pipeline ``A`` plus the distance-crop patch size (docs/methods.md)."""

    jitter_p: float = bounded(0.8, *PROB)
    brightness: float = bounded(0.8, 0.0, 10.0)
    contrast: float = bounded(0.8, 0.0, 10.0)
    saturation: float = bounded(0.8, 0.0, 10.0)
    hue: float = bounded(0.2, 0.0, 0.5)
    grayscale_p: float = bounded(0.2, *PROB)
    blur_p: float = bounded(0.8, *PROB)
    blur_kernel: int = bounded(7, 1, 255)
    blur_sigma: tuple[float, float] = bounded((0.1, 2.0), 0.0, 100.0, open_low=True)
    sobel_p: float = bounded(0.6, *PROB)
    patch_ratio: float = bounded(0.4, 0.0, 1.0, open_low=True)  # side of a distance-crop patch / the image side
    hue_space: Literal["yiq", "hsv"] = hash_neutral("yiq")  # hsv: torchvision's ColorJitter (official code)
    sobel_padding: Literal["replicate", "zero"] = hash_neutral("replicate")  # zero: the official Sobel's padding


@dataclass
class CalibrationParams:
    """False-negative pair calibration of one feature branch (``--set method.<branch>.<field>=...``)."""

    enabled: bool = False  # run Algorithm 1 on this branch
    score: Literal["npa", "cosine"] = "npa"  # Table 5: NPA (Eq. 3) or plain cosine
    rule: Literal["threshold", "top1", "topk"] = "threshold"  # Table 7: Algorithm 1, NN, top-K
    threshold: float = bounded(1.0, -1e9, 1e9)  # T of Algorithm 1
    k: int = bounded(1, 1, BATCH_MAX)  # K of the top-K rule
    alpha: float = bounded(10.0, -1e9, 1e9)  # alpha of Eq. 3 (weight of NS)
    # NS of Eq. 5 summed as printed, or averaged over its 2N-2 terms (PCL's and PCFRL's default: PA around 1 at
    # T = 1, as Fig. 7 describes; the sum calibrates every anchor at any T, docs/learning.md)
    ns_reduction: Literal["sum", "mean"] = "sum"
    loss: bool = True  # Eq. 7 calibrated loss; false: calibrated pairs only leave the negatives
    beta: float = bounded(1.0, 0.0, 1e9)  # beta of Eq. 7
    similarity: Literal["adaptive", "cosine", "attention", "npa"] = "adaptive"  # Table 8
    # where w = beta PA appears in Eq. 7; numerator_only is Eq. 7 literally
    weight_in: Literal["numerator_and_denominator", "numerator_only"] = "numerator_and_denominator"
    detach_weight: bool = True  # no gradient through PA in w


@dataclass
class SimCLRParams:
    """SimCLR (``methods/simclr.py``)."""

    temperature: float = bounded(0.5, 0.0, 100.0, open_low=True)  # tau of NT-Xent
    proj_hidden_dim: int = bounded(2048, 1, DIM_MAX)
    proj_dim: int = bounded(128, 1, DIM_MAX)
    augment: AugmentParams = field(default_factory=AugmentParams)
    calibration: CalibrationParams = field(default_factory=CalibrationParams)


@dataclass
class MoCoParams:
    """MoCo v2 (``methods/moco.py``)."""

    temperature: float = bounded(0.2, 0.0, 100.0, open_low=True)  # tau of InfoNCE
    momentum: float = bounded(0.999, *PROB)  # of the key encoder's moving average
    queue_size: int = bounded(4096, 1, 1 << 20)  # negatives kept from earlier batches
    proj_hidden_dim: int = bounded(2048, 1, DIM_MAX)
    proj_dim: int = bounded(128, 1, DIM_MAX)
    proj_bn: bool = True  # BatchNorm1d in the projection MLP (SimCLR's head); false: MoCo v2's head
    symmetric: bool = False  # also swap the roles of the two views (and enqueue both key sets)
    # BatchNorm statistics per group of batch/bn_groups consecutive images, both encoders (the paper: 8 GPUs x 32)
    bn_groups: int = bounded(8, 1, BATCH_MAX)
    shuffle_bn: bool = True  # shuffling BN: the key encoder sees the batch permuted (across ranks under torchrun)
    augment: AugmentParams = field(default_factory=lambda: AugmentParams(blur_p=0.5))


@dataclass
class PCLParams:
    """PCL (``methods/pcl.py``): calibration off."""

    # 2: the trunk's map that PCL trains on takes model.input_norm as evaluation does (1 trained on [0, 1] inputs)
    HASH_REVISION: ClassVar[int] = 2

    temperature: float = bounded(0.07, 0.0, 100.0, open_low=True)  # tau of Eq. 6 / 7
    head_hidden_dim: int = bounded(2048, 1, DIM_MAX)  # hidden width of the pose and face projection heads
    head_dim: int = bounded(512, 1, DIM_MAX)  # output width of the projection heads
    decoder_out: Literal["sigmoid", "tanh", "none"] = "sigmoid"  # tanh = official code
    noise_sigma: float = bounded(0.4, 0.0, 100.0)  # Gaussian noise on the PDD inputs (clean targets; official code)
    # in-plane rotation of the pose transform (Sec. 4.1); 0 = official flip only
    pose_rotation_deg: float = bounded(15.0, 0.0, 180.0)
    orth: Literal["paper", "official"] = "paper"  # Eq. 2 as printed, or the code's DiffLoss
    orth_normalize: bool = False  # paper mode on unit rows (cos^2)
    rec_weight: float = bounded(1.0, 0.0, 1e9)  # weight of Eq. 1 in L_PDD
    orth_weight: float = bounded(1.0, 0.0, 1e9)  # weight of Eq. 2 in L_PDD
    denominator: Literal["all", "negatives"] = "all"  # Eq. 6: positive in the denominator, or literal
    neg_mixing_alpha: float = bounded(0.0, 0.0, 1e3)  # > 0: official Beta(a, a) negative mixing (1.6 in the code)
    pose_flip_negatives: bool = False  # official: pose-transformed views are extra pose negatives
    # with flips: other images' views are pose negatives too (all), or (official) only the flips are
    pose_negatives: Literal["all", "flips_only"] = hash_neutral("all")
    pose_head_bn: Literal["joint", "separate"] = hash_neutral("joint")  # pose head: one BN batch / (official) two
    dwa: bool = True  # alpha_pose, alpha_face of Eq. 8 from Dynamic Weight Averaging
    dwa_temperature: float = bounded(2.0, 0.0, 1e3, open_low=True)  # T of DWA
    alpha_pose: float = bounded(1.0, 0.0, 1e9)  # fixed multipliers (on top of DWA when it is on)
    alpha_face: float = bounded(1.0, 0.0, 1e9)
    augment: FaceAugmentParams = field(default_factory=FaceAugmentParams)
    # beta_pose of Eq. 7; NS averaged (ns_reduction above)
    calib_pose: CalibrationParams = field(default_factory=lambda: CalibrationParams(beta=0.2, ns_reduction="mean"))
    # beta_face of Eq. 7: the class's 1.0
    calib_face: CalibrationParams = field(default_factory=lambda: CalibrationParams(ns_reduction="mean"))


@dataclass
class PCFRLParams(PCLParams):
    """PCFRL: PCL with NPA calibration of the pose and face features on."""

    calib_pose: CalibrationParams = field(
        default_factory=lambda: dataclasses.replace(PCLParams().calib_pose, enabled=True))
    calib_face: CalibrationParams = field(
        default_factory=lambda: dataclasses.replace(PCLParams().calib_face, enabled=True))


@dataclass
class SupervisedParams:
    """The supervised ceiling (``methods/supervised.py``)."""

    target: str = ""  # batch key of the labels (set from the task)
    outputs: int = bounded(0, 0, 1_000_000)  # classes or regression outputs (set from the task)
    loss: Literal["cross_entropy", "l1", "bce"] = "cross_entropy"
    head: Literal["linear", "bn_linear"] = "bn_linear"  # BatchNorm1d on the features keeps small trunks trainable


def decoder_plan(out_size: int) -> tuple[int, int]:
    """(start side b, number of x2 stages n) with ``out_size = b * 2**n``, b odd; a ConfigError unless n >= 3
    (the decoder's channel plan needs three stages: out_size a multiple of 8)."""
    n_stages = (out_size & -out_size).bit_length() - 1 if out_size > 0 else 0
    if n_stages < 3:
        raise ConfigError(f"PDD decoder out_size (data.image_size) must be a positive multiple of 8, got {out_size}")
    return out_size >> n_stages, n_stages


def check_decoder_size(cfg: RunConfig) -> None:
    """PCL/PCFRL: the PDD decoder reconstructs the pretraining images, so their side must be a multiple of 8."""
    decoder_plan(cfg.data.image_size)


def check_bn_groups(cfg: RunConfig) -> None:
    """MoCo: the pretraining batch must split into ``method.bn_groups`` equal BatchNorm groups."""
    groups, batch = cfg.method.bn_groups, cfg.pretrain.batch_size
    if batch % groups:
        raise ConfigError(f"method.bn_groups={groups} must be a divisor of pretrain.batch_size={batch} "
                          "(equal BatchNorm groups; 1: the whole batch)")


def accept_any(cfg: RunConfig) -> None:
    """The check of a method that can be built with every resolved config."""


@dataclass(frozen=True)
class MethodSchema:
    """A method implementation's ``Params`` and its check of a resolved config (raises a ConfigError for a
    config it cannot be built with; run when the config resolves, before anything runs)."""

    Params: type
    check: Callable[[RunConfig], None] = accept_any


METHOD_PLUGINS = "pcfrl_bench.methods"  # entry points naming modules that register more methods (docs/methods.md)
METHOD_SCHEMAS: Registry[MethodSchema] = Registry("method implementation", plugins=METHOD_PLUGINS, items={
    "frozen": MethodSchema(EmptyParams),
    "simclr": MethodSchema(SimCLRParams),
    "moco": MethodSchema(MoCoParams, check_bn_groups),
    "pcl": MethodSchema(PCLParams, check_decoder_size),
    "pcfrl": MethodSchema(PCFRLParams, check_decoder_size),
    "supervised": MethodSchema(SupervisedParams),
})
