"""Task parameters (``task.*`` of a config) by implementation, and which tasks give labelled training data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import SEED_MAX, bounded, hash_neutral

SEED = (-SEED_MAX - 1, SEED_MAX)
IMAGES_MAX = 100_000  # synthetic images rendered for one split
FOLDS = (2, 100)
from ..registry import Registry


@dataclass
class DigitsParams:
    """scikit-learn digits (``tasks/digits.py``)."""

    test_fraction: float = bounded(0.3, 0.0, 1.0, open_low=True, open_high=True)
    split_seed: int = bounded(0, *SEED)


@dataclass
class SyntheticTaskParams:
    """A synthetic-world task (``tasks/synthetic.py``)."""

    n_train: int = bounded(2000, 1, IMAGES_MAX)  # images of the probe's training split
    n_test: int = bounded(1000, 1, IMAGES_MAX)  # images of the test split (pairs for synth-fr)
    seed: int = bounded(0, *SEED)  # seed of the evaluation data (identities, factors, nuisance)


@dataclass
class SyntheticExpressionParams(SyntheticTaskParams):
    expression_scale: float = bounded(1.0, 0.0, 100.0)  # multiplies the rendered AU intensities (expression strength of synth-fer/-au)


@dataclass
class SyntheticVerificationParams(SyntheticTaskParams):
    # the supervised ceiling's identity data: "clips" = 4 frames per epoch of every pretraining clip (background and
    # light fixed per clip); "faces" = n_train faces of ``train_identities`` other people, nuisance drawn per image
    supervision: Literal["clips", "faces"] = hash_neutral("clips")
    train_identities: int = bounded(200, 1, IMAGES_MAX, neutral=True)


@dataclass
class DataParams:
    """Where a task's dataset lives (shared by every real task)."""

    root: str = ""  # absolute dataset folder; overrides the data root and subdir
    subdir: str = ""  # folder below --data-root; "" = the dataset's default folder (docs/datasets.md)


@dataclass
class RafdbParams(DataParams):
    image_folder: str = "aligned"  # "original" reads Image/original/


@dataclass
class Fer2013Params(DataParams):
    test_usage: str = "PrivateTest"  # PublicTest, PrivateTest or both ("PublicTest+PrivateTest")
    variant: str = "auto"  # auto, csv, icml, folders


@dataclass
class Bu3dfeParams(DataParams):
    train_list: str = "train.txt"
    test_list: str = "test.txt"
    image_root: str = ""
    num_pose_classes: int = bounded(0, 0, 10_000)  # 0 = one more than the largest pose id in the lists


@dataclass
class LfwParams(DataParams):
    image_dir: str = ""  # "" = the first of lfw-deepfunneled/, lfw/, lfw_funneled/ that exists
    pairs_file: str = "pairs.txt"


@dataclass
class CplfwParams(DataParams):
    pairs_file: str = "pairs_CPLFW.txt"
    image_dir: str = ""  # "" = images/ (or "aligned images/")
    n_folds: int = bounded(10, *FOLDS)


@dataclass
class CalfwParams(DataParams):
    pairs_file: str = "pairs_CALFW.txt"
    image_dir: str = ""
    n_folds: int = bounded(10, *FOLDS)


@dataclass
class DisfaParams(DataParams):
    frames_root: str = ""  # "" = <dataset folder>/frames
    frame_format: str = "{t}"  # frame t of subject S is <frames_root>/S/<frame_format><ext>, t 0-based
    threshold: int = bounded(1, 0, 5)  # positive if intensity > threshold (PCFRL Sec. 4.2.1); intensities are 0..5
    missing_frames: str = "error"  # or "skip" frames without an image
    n_folds: int = bounded(3, *FOLDS)


@dataclass
class Aflw2000Params(DataParams):
    train: str = "300W_LP"
    test: str = "AFLW2000"
    limit: float = bounded(99.0, 0.0, 180.0)
    train_list: str = ""
    test_list: str = ""
    crop_margin: float = bounded(0.6, 0.0, 10.0)  # .jpg/.mat layout: landmark box enlarged by this share per side (FSA-Net: 0.6)


BUILT_IN = "built in"


@dataclass(frozen=True)
class TaskSchema:
    """A task implementation's ``Params``; whether it gives labelled training data (the ``supervised`` ceiling,
    ``data.source: task``); and, for a task whose data is not read from disk, what ``list`` reports as its data
    (tasks read from disk are those whose YAML names a ``dataset``)."""

    Params: type
    supervision: bool
    built_in: str = BUILT_IN


SYNTHETIC_WORLD = f"{BUILT_IN} (synthetic world)"

TASK_SCHEMAS: Registry[TaskSchema] = Registry("task implementation", {
    "digits": TaskSchema(DigitsParams, True),
    "synth-fer": TaskSchema(SyntheticExpressionParams, True, SYNTHETIC_WORLD),
    "synth-posecls": TaskSchema(SyntheticTaskParams, True, SYNTHETIC_WORLD),
    "synth-hpe": TaskSchema(SyntheticTaskParams, True, SYNTHETIC_WORLD),
    "synth-au": TaskSchema(SyntheticExpressionParams, True, SYNTHETIC_WORLD),
    "synth-fr": TaskSchema(SyntheticVerificationParams, True, SYNTHETIC_WORLD),
    "rafdb": TaskSchema(RafdbParams, True),
    "fer2013": TaskSchema(Fer2013Params, True),
    "bu3dfe": TaskSchema(Bu3dfeParams, True),
    "image-classification": TaskSchema(DataParams, True),  # any dataset with train/test splits and a 'label'

    "lfw": TaskSchema(LfwParams, False),
    "cplfw": TaskSchema(CplfwParams, False),
    "calfw": TaskSchema(CalfwParams, False),
    "disfa": TaskSchema(DisfaParams, False),
    "aflw2000": TaskSchema(Aflw2000Params, True),
})
