"""Data families backed by a fixed image dataset: digits, CIFAR-10, MNIST, Fashion-MNIST.

Inputs are flat rows ``[n, H·W·C]`` (row-major ``[H, W, C]``, the family's ``input_shape``) of
pixels scaled to ``[0, 1]`` (raw value / brightest possible value; no standardisation). The fine
label is the class. A cell's ``clusters`` is the number of classes it uses: the first
``clusters`` classes ``0 .. clusters − 1`` of the dataset's class order. Anchors are
class-balanced: a label uniform on those classes, then an image uniform (with replacement) among
that class's images of the split. Training anchors (:meth:`anchors`) come from the train split,
evaluation anchors (:meth:`heldout_anchors`) from the test split. A view is
:func:`~clj.data.images.augment.augment_images` with the family's strengths.

The pixels are a constant of the compiled program, shared by all its cells: they live in a
module-level cache (:func:`~clj.data.images.datasets.load_dataset`), never in a family's fields,
which stay small and hashable, nor in a cell's ``world`` (there is none: ``world`` is ``None``).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from clj.cell import Cell
from clj.data.base import Anchors, DataFamily, uniform_labels
from clj.data.images.augment import augment_images
from clj.data.images.datasets import ImageArrays, load_dataset

__all__ = ["Cifar10", "Digits", "FashionMnist", "ImageFamily", "Mnist", "SplitTable", "split_table"]


class SplitTable(NamedTuple):
    """One split of a dataset, arranged for class-balanced sampling inside ``jit``.

    Attributes:
      pixels: ``[N, H·W·C]`` uint8 rows, sorted by class (stable, so within a class in file
        order).
      start: ``[K]`` int32 first row of each class.
      count: ``[K]`` int32 images of each class.
    """

    pixels: np.ndarray
    start: np.ndarray
    count: np.ndarray


def split_table(x: np.ndarray, y: np.ndarray, classes: int) -> SplitTable:
    """Sorts ``x`` ``[N, H, W, C]`` by its labels ``y`` ``[N]`` into a :class:`SplitTable`."""
    order = np.argsort(y, kind="stable")
    count = np.bincount(y, minlength=classes).astype(np.int32)
    start = (np.cumsum(count) - count).astype(np.int32)
    pixels = np.ascontiguousarray(x[order].reshape(len(y), -1))
    return SplitTable(pixels, start, count)


@functools.lru_cache(maxsize=8)
def _tables(
    dataset: str, data_dir: str | None, classes: int
) -> tuple[SplitTable, SplitTable, float]:
    arrays: ImageArrays = load_dataset(dataset, data_dir)
    train = split_table(arrays.train_x, arrays.train_y, classes)
    test = split_table(arrays.test_x, arrays.test_y, classes)
    return train, test, arrays.max_value


@dataclasses.dataclass(frozen=True)
class ImageFamily(DataFamily):
    """Base of the dataset-backed families (see the module docstring).

    Subclasses set the class variables and, for file-backed datasets, a ``data_dir`` field.

    Attributes:
      shift: largest translation of a view, in whole pixels (pad-and-crop).
      rotation: largest rotation of a view, in degrees (bilinear).
      noise: standard deviation of the Gaussian noise added to a view's pixels.
      flip: probability that a view is mirrored left-right.
    """

    dataset: ClassVar[str]
    """Key of :func:`~clj.data.images.datasets.load_dataset`."""
    image_shape: ClassVar[tuple[int, int, int]]
    """``(H, W, C)`` of one image."""
    class_names: ClassVar[tuple[str, ...]]
    """Class ``c``'s name is ``class_names[c]``."""
    coarse_of: ClassVar[tuple[int, ...] | None] = None
    """Coarse label of each class, or ``None`` for coarse = fine."""

    shift: int = 1
    rotation: float = 0.0
    noise: float = 0.0
    flip: float = 0.0

    @classmethod
    def fixed_dim(cls) -> int:
        """``H·W·C`` of one image."""
        return int(np.prod(cls.image_shape))

    def __post_init__(self) -> None:
        expected = self.fixed_dim()
        if self.dim != expected:
            h, w, c = self.image_shape
            raise ValueError(
                f"dim={self.dim} does not match {self.name} images ({h}×{w}×{c} = {expected}); "
                f"use dim={expected}"
            )
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or self.shift < 0:
            raise ValueError(f"shift={self.shift!r} must be a non-negative integer (pixels)")
        if self.shift >= min(self.image_shape[:2]):
            raise ValueError(f"shift={self.shift} must be below the image size {self.image_shape}")
        for option in ("rotation", "noise"):
            value = getattr(self, option)
            if not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ValueError(f"{option}={value!r} must be a non-negative number")
        if not isinstance(self.flip, int | float) or not 0 <= self.flip <= 1:
            raise ValueError(f"flip={self.flip!r} must be a probability in [0, 1]")
        if self.max_clusters > len(self.class_names):
            raise ValueError(
                f"clusters={self.max_clusters} is above the {len(self.class_names)} classes of "
                f"{self.name}"
            )
        if hasattr(self, "data_dir") and self.data_dir is None:
            raise ValueError(
                f"{self.name} reads its files from a directory: pass --data-dir DIR "
                "(data_options data_dir=DIR)"
            )
        self.tables()  # reads (and caches) the files now, so that a bad path fails early

    # -- the dataset ----------------------------------------------------------------------------
    def data_path(self) -> str | None:
        """The resolved data directory (``None`` for bundled datasets)."""
        data_dir = getattr(self, "data_dir", None)
        return None if data_dir is None else str(Path(data_dir).expanduser().resolve())

    def tables(self) -> tuple[SplitTable, SplitTable, float]:
        """``(train, test, max_value)``: both splits (cached per dataset and directory)."""
        return _tables(self.dataset, self.data_path(), len(self.class_names))

    # -- static facts ---------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.image_shape)

    def cluster_limit(self) -> int:
        return len(self.class_names)

    def check_clusters(self, clusters: int) -> None:
        """Raises ``ValueError`` unless ``1 ≤ clusters ≤`` classes and both splits have images
        of each of the first ``clusters`` classes."""
        if not 1 <= clusters <= self.cluster_limit():
            raise ValueError(
                f"clusters={clusters} is outside 1..{self.cluster_limit()} for {self.name} "
                f"(the number of classes used)"
            )
        train, test, _ = self.tables()
        for split, table in (("train", train), ("test", test)):
            empty = np.flatnonzero(table.count[:clusters] == 0)
            if empty.size:
                raise ValueError(
                    f"clusters={clusters}: the {split} split of {self.name} has no images of "
                    f"class {int(empty[0])}"
                )

    @property
    def num_coarse_classes(self) -> int:
        if self.coarse_of is None:
            return self.num_fine_classes
        return max(self.coarse_of) + 1

    # -- pure samplers --------------------------------------------------------------------------
    def world(self, key: jax.Array, cell: Cell) -> None:
        """No per-cell structure: the dataset is shared by every cell."""
        return None

    def anchors(self, key: jax.Array, world: Any, cell: Cell, n: int) -> Anchors:
        """``n`` class-balanced training images of the first ``clusters`` classes."""
        train, _, max_value = self.tables()
        return self._draw(key, train, max_value, cell, n)

    def heldout_anchors(self, key: jax.Array, world: Any, cell: Cell, n: int) -> Anchors:
        """``n`` class-balanced test-split images of the first ``clusters`` classes."""
        _, test, max_value = self.tables()
        return self._draw(key, test, max_value, cell, n)

    def _draw(
        self, key: jax.Array, table: SplitTable, max_value: float, cell: Cell, n: int
    ) -> Anchors:
        k_label, k_pick = jax.random.split(key)
        fine = uniform_labels(k_label, cell.clusters, n)
        start = jnp.asarray(table.start)[fine]
        count = jnp.asarray(table.count)[fine]
        u = jax.random.uniform(k_pick, (n,))
        offset = jnp.minimum((u * count).astype(jnp.int32), jnp.maximum(count - 1, 0))
        x = jnp.asarray(table.pixels)[start + offset].astype(jnp.float32) / max_value
        if self.coarse_of is None:
            coarse = fine
        else:
            coarse = jnp.asarray(self.coarse_of, jnp.int32)[fine]
        return Anchors(x, fine, coarse)

    def augment(self, key: jax.Array, world: Any, cell: Cell, x: jax.Array) -> jax.Array:
        """One view of each row of ``x`` ``[n, dim]``: reshaped to images, augmented, flattened."""
        images = x.reshape(x.shape[0], *self.image_shape)
        views = augment_images(
            key, images, shift=self.shift, rotation=self.rotation, noise=self.noise, flip=self.flip
        )
        return views.reshape(x.shape)


@dataclasses.dataclass(frozen=True)
class Digits(ImageFamily):
    """scikit-learn's bundled 8×8 grey digits: 1,347 training and 450 test images, 10 classes.

    Pixels are the original 0..16 values / 16. Coarse label = fine label (the digit). Views:
    shifts of up to 1 pixel, rotations of up to 10°, noise of standard deviation 0.05.
    """

    name: ClassVar[str] = "digits"
    description: ClassVar[str] = (
        "scikit-learn's 8x8 digits (dim 64, 10 classes = first `clusters` digits); shift, "
        "rotation and noise as augmentation"
    )
    dataset: ClassVar[str] = "digits"
    image_shape: ClassVar[tuple[int, int, int]] = (8, 8, 1)
    class_names: ClassVar[tuple[str, ...]] = tuple(str(d) for d in range(10))
    shift: int = 1
    rotation: float = 10.0
    noise: float = 0.05


@dataclasses.dataclass(frozen=True)
class Cifar10(ImageFamily):
    """CIFAR-10 from its python batches in ``data_dir`` (or ``data_dir/cifar-10-batches-py``).

    ``data_batch_1`` .. ``data_batch_5`` train (50,000 images), ``test_batch`` tests (10,000);
    32×32 RGB, pixels / 255. Coarse label: 0 = vehicle (airplane, automobile, ship, truck),
    1 = animal. Views: pad-and-crop shifts of up to 4 pixels, mirror with probability 1/2, noise
    of standard deviation 0.05.
    """

    name: ClassVar[str] = "cifar10"
    description: ClassVar[str] = (
        "CIFAR-10 python batches from --data-dir (dim 3072); crop, flip and noise as augmentation"
    )
    dataset: ClassVar[str] = "cifar10"
    image_shape: ClassVar[tuple[int, int, int]] = (32, 32, 3)
    class_names: ClassVar[tuple[str, ...]] = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    coarse_of: ClassVar[tuple[int, ...] | None] = (0, 0, 1, 1, 1, 1, 1, 1, 0, 0)
    data_dir: str | None = None
    shift: int = 4
    noise: float = 0.05
    flip: float = 0.5


@dataclasses.dataclass(frozen=True)
class Mnist(ImageFamily):
    """MNIST from its idx files in ``data_dir`` (or ``data_dir/MNIST/raw``, ``data_dir/mnist``).

    ``train-*`` files train (60,000 images), ``t10k-*`` files test (10,000); 28×28 grey, pixels /
    255. Coarse label = fine label (the digit). Views: shifts of up to 3 pixels, rotations of up
    to 15°, noise of standard deviation 0.1.
    """

    name: ClassVar[str] = "mnist"
    description: ClassVar[str] = (
        "MNIST idx files from --data-dir (dim 784); shift, rotation and noise as augmentation"
    )
    dataset: ClassVar[str] = "mnist"
    image_shape: ClassVar[tuple[int, int, int]] = (28, 28, 1)
    class_names: ClassVar[tuple[str, ...]] = tuple(str(d) for d in range(10))
    data_dir: str | None = None
    shift: int = 3
    rotation: float = 15.0
    noise: float = 0.1


@dataclasses.dataclass(frozen=True)
class FashionMnist(ImageFamily):
    """Fashion-MNIST from its idx files in ``data_dir`` (or ``data_dir/FashionMNIST/raw``,
    ``data_dir/fashion_mnist``, ``data_dir/fashion-mnist``).

    Same files and split as MNIST. Coarse label: 0 = clothing (T-shirt/top, trouser, pullover,
    dress, coat, shirt), 1 = footwear (sandal, sneaker, ankle boot), 2 = bag. Views: shifts of up
    to 3 pixels, mirror with probability 1/2, noise of standard deviation 0.1.
    """

    name: ClassVar[str] = "fashion_mnist"
    description: ClassVar[str] = (
        "Fashion-MNIST idx files from --data-dir (dim 784); shift, flip and noise as augmentation"
    )
    dataset: ClassVar[str] = "fashion_mnist"
    image_shape: ClassVar[tuple[int, int, int]] = (28, 28, 1)
    class_names: ClassVar[tuple[str, ...]] = (
        "t-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    )
    coarse_of: ClassVar[tuple[int, ...] | None] = (0, 0, 0, 0, 0, 1, 0, 1, 2, 1)
    data_dir: str | None = None
    shift: int = 3
    noise: float = 0.1
    flip: float = 0.5
