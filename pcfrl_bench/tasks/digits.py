"""scikit-learn digits: 10-class linear probe accuracy (a small stand-in for the paper's Table 9)."""

from __future__ import annotations

from torch.utils.data import Dataset

from ..data.digits import digits_split
from ..data.tensors import TensorImageDataset
from ..schema.tasks import DigitsParams
from .base import TASKS, ClassificationTask


@TASKS.register("digits")
class DigitsTask(ClassificationTask):
    num_classes = 10

    Params = DigitsParams

    def splits(self, image_size: int) -> dict[str, Dataset]:
        out = {}
        for split in ("train", "test"):
            images, labels = digits_split(split, image_size, self.params.test_fraction, self.params.split_seed)
            out[split] = TensorImageDataset(images, {"label": labels})
        return out
