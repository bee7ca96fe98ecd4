"""scikit-learn digits: 10-class linear probe accuracy (a small stand-in for the paper's Table 9)."""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import Dataset

from ..data.digits import digits_split
from ..data.tensors import TensorImageDataset
from .base import TASKS, ClassificationTask


@TASKS.register("digits")
class DigitsTask(ClassificationTask):
    num_classes = 10

    @dataclass
    class Params:
        test_fraction: float = 0.3
        split_seed: int = 0

    def splits(self, image_size: int) -> dict[str, Dataset]:
        out = {}
        for split in ("train", "test"):
            images, labels = digits_split(split, image_size, self.params.test_fraction, self.params.split_seed)
            out[split] = TensorImageDataset(images, {"label": labels})
        return out
