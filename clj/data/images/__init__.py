"""Image data: pure augmentations, dataset readers, and the dataset-backed data families.

- :mod:`~clj.data.images.augment`: translation, rotation, noise and flips of ``[n, H, W, C]``
  batches, one independent draw per image.
- :mod:`~clj.data.images.datasets`: scikit-learn's digits, CIFAR-10 python batches and
  MNIST-style idx files read into NumPy arrays with a fixed train/test split.
- :mod:`~clj.data.images.family`: the families ``digits``, ``cifar10``, ``mnist`` and
  ``fashion_mnist``.
"""

from clj.data.images.augment import (
    augment_images,
    gaussian_noise,
    random_flip,
    random_rotation,
    random_translation,
    rotate_images,
    shift_images,
)
from clj.data.images.datasets import (
    DATASETS,
    ImageArrays,
    load_cifar10,
    load_dataset,
    load_digits,
    load_idx_dataset,
    read_cifar_batch,
    read_idx,
)
from clj.data.images.family import (
    Cifar10,
    Digits,
    FashionMnist,
    ImageFamily,
    Mnist,
    SplitTable,
    split_table,
)

__all__ = [
    "DATASETS",
    "IMAGE_FAMILIES",
    "Cifar10",
    "Digits",
    "FashionMnist",
    "ImageArrays",
    "ImageFamily",
    "Mnist",
    "SplitTable",
    "augment_images",
    "gaussian_noise",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_idx_dataset",
    "random_flip",
    "random_rotation",
    "random_translation",
    "read_cifar_batch",
    "read_idx",
    "rotate_images",
    "shift_images",
    "split_table",
]

IMAGE_FAMILIES: tuple[type[ImageFamily], ...] = (Digits, Cifar10, Mnist, FashionMnist)
"""The dataset-backed families, registered in :data:`clj.data.FAMILIES` by name."""
