"""scikit-learn's bundled handwritten digits (1,797 8x8 images, 10 classes) as 3-channel images.

Real data shipped inside scikit-learn: the first general image-classification task, needing no download.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..schema.tasks import DigitsParams
from .tensors import resize_batch


def digits_split(split: str, image_size: int, test_fraction: float = DigitsParams.test_fraction,
                 split_seed: int = DigitsParams.split_seed) -> tuple[Tensor, Tensor]:
    """(images (N, 3, S, S) in [0, 1], labels (N,)) of a fixed stratified train/test split."""
    if split not in ("train", "test"):
        raise ValueError(f"digits split must be 'train' or 'test', got {split!r}")
    from sklearn.datasets import load_digits  # imported when used: sklearn is slow to import
    from sklearn.model_selection import train_test_split

    data = load_digits()
    index = np.arange(len(data.target))
    train, test = train_test_split(index, test_size=test_fraction, stratify=data.target, random_state=split_seed)
    chosen = np.sort(train if split == "train" else test)
    pixels = torch.from_numpy(data.images[chosen].astype(np.float32) / 16.0).unsqueeze(1)
    images = resize_batch(pixels, image_size).expand(-1, 3, -1, -1).contiguous()
    return images, torch.from_numpy(data.target[chosen]).long()
