"""Task parameters (``task.*`` of a config) by implementation, and which tasks give labelled training data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import hash_neutral
from ..registry import Registry


@dataclass
class DigitsParams:
    """scikit-learn digits (``tasks/digits.py``)."""

    test_fraction: float = 0.3
    split_seed: int = 0


@dataclass
class SyntheticTaskParams:
    """A synthetic-world task (``tasks/synthetic.py``)."""

    n_train: int = 2000  # images of the probe's training split
    n_test: int = 1000  # images of the test split (pairs for synth-fr)
    seed: int = 0  # seed of the evaluation data (identities, factors, nuisance)


@dataclass
class SyntheticExpressionParams(SyntheticTaskParams):
    expression_scale: float = 1.0  # multiplies the rendered AU intensities (expression strength of synth-fer/-au)


@dataclass
class SyntheticVerificationParams(SyntheticTaskParams):
    # the supervised ceiling's identity data: "clips" = 4 frames per epoch of every pretraining clip (background and
    # light fixed per clip); "faces" = n_train faces of ``train_identities`` other people, nuisance drawn per image
    supervision: Literal["clips", "faces"] = hash_neutral("clips")
    train_identities: int = hash_neutral(200)


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
    num_pose_classes: int = 0  # 0 = one more than the largest pose id in the lists


@dataclass
class LfwParams(DataParams):
    image_dir: str = ""  # "" = the first of lfw-deepfunneled/, lfw/, lfw_funneled/ that exists
    pairs_file: str = "pairs.txt"


@dataclass
class CplfwParams(DataParams):
    pairs_file: str = "pairs_CPLFW.txt"
    image_dir: str = ""  # "" = images/ (or "aligned images/")
    n_folds: int = 10


@dataclass
class CalfwParams(DataParams):
    pairs_file: str = "pairs_CALFW.txt"
    image_dir: str = ""
    n_folds: int = 10


@dataclass
class DisfaParams(DataParams):
    frames_root: str = ""  # "" = <dataset folder>/frames
    frame_format: str = "{t}"  # frame t of subject S is <frames_root>/S/<frame_format><ext>, t 0-based
    threshold: int = 1  # positive if intensity > threshold (PCFRL Sec. 4.2.1)
    missing_frames: str = "error"  # or "skip" frames without an image
    n_folds: int = 3


@dataclass
class Aflw2000Params(DataParams):
    train: str = "300W_LP"
    test: str = "AFLW2000"
    limit: float = 99.0
    train_list: str = ""
    test_list: str = ""
    crop_margin: float = 0.6  # .jpg/.mat layout: landmark box enlarged by this share per side (FSA-Net: 0.6)


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
