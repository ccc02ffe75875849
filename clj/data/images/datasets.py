"""Readers of image datasets into NumPy arrays: scikit-learn's digits, CIFAR-10, MNIST-style idx.

Every reader returns an :class:`ImageArrays` with a fixed train/test split, raw ``uint8`` pixels
``[N, H, W, C]`` and ``int32`` labels. A missing file raises ``FileNotFoundError`` and a malformed
one ``ValueError``, each one line naming the path. :func:`load_dataset` caches what it read, so a
dataset is read once per process however many families and programs use it.
"""

from __future__ import annotations

import functools
import gzip
import pickle
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "DATASETS",
    "ImageArrays",
    "find_data_dir",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_idx_dataset",
    "read_cifar_batch",
    "read_idx",
]

IDX_IMAGES_MAGIC = 2051
"""Big-endian magic number of an idx file of ``uint8`` images ``[n, rows, cols]``."""

IDX_LABELS_MAGIC = 2049
"""Big-endian magic number of an idx file of ``uint8`` labels ``[n]``."""

DIGITS_TRAIN = 1347
"""scikit-learn's digits: the first 1,347 of the 1,797 images train, the last 450 test."""

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
"""The four files of MNIST and Fashion-MNIST (each may also be gzipped, ``NAME.gz``)."""

CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"


class ImageArrays(NamedTuple):
    """A dataset with its fixed train/test split.

    Attributes:
      train_x: ``[N_train, H, W, C]`` uint8 pixels.
      train_y: ``[N_train]`` int32 class labels.
      test_x: ``[N_test, H, W, C]`` uint8 pixels.
      test_y: ``[N_test]`` int32 class labels.
      max_value: the brightest possible pixel (255; 16 for digits); pixels / max_value lie in
        ``[0, 1]``.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    max_value: float


# ----------------------------------------------------------------------------- digits


def load_digits() -> ImageArrays:
    """scikit-learn's bundled 8×8 digits (1,797 images, values 0..16, 10 classes).

    The split is fixed: the first :data:`DIGITS_TRAIN` (1,347) images in scikit-learn's order
    train and the last 450 test (each class has 41 to 48 test images).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = bunch.images.astype(np.uint8)[..., None]
    y = bunch.target.astype(np.int32)
    return ImageArrays(x[:DIGITS_TRAIN], y[:DIGITS_TRAIN], x[DIGITS_TRAIN:], y[DIGITS_TRAIN:], 16.0)


# ----------------------------------------------------------------------------- files


def find_data_dir(data_dir: str | Path | None, subdirs: tuple[str, ...], marker: str) -> Path:
    """The first of ``data_dir/subdir`` (in order) and ``data_dir`` itself that holds ``marker``.

    ``marker`` counts as present also gzipped (``marker.gz``).

    Raises:
      ValueError: ``data_dir`` is None.
      FileNotFoundError: ``data_dir`` is not a directory, or none of the candidates has
        ``marker``.
    """
    if data_dir is None:
        raise ValueError(f"no data directory given: pass --data-dir DIR holding {marker}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {str(root)!r} does not exist")
    for candidate in (*(root / s for s in subdirs), root):
        if (candidate / marker).is_file() or (candidate / f"{marker}.gz").is_file():
            return candidate
    where = ", ".join(repr(str(root / s)) for s in subdirs)
    raise FileNotFoundError(f"{str(root / marker)!r} does not exist (nor in {where})")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Reads an idx file of unsigned bytes (``NAME`` or ``NAME.gz``) whose magic is ``magic``.

    The idx format: a big-endian ``uint32`` magic number ``0x0000 08 D`` (``08``: unsigned
    bytes, ``D``: number of dimensions), ``D`` big-endian ``uint32`` sizes, then the data.

    Returns:
      ``uint8`` array of the sizes in the header, e.g. ``[n, rows, cols]`` for images (2051).

    Raises:
      FileNotFoundError: neither ``path`` nor ``path.gz`` exists.
      ValueError: the magic number is not ``magic``, or the data's length disagrees with the
        header; the message names the path.
    """
    path = Path(path)
    if not path.is_file() and Path(f"{path}.gz").is_file():
        path = Path(f"{path}.gz")
    if not path.is_file():
        raise FileNotFoundError(f"idx file {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise ValueError(f"idx file {str(path)!r} cannot be read: {err}") from None
    if len(raw) < 4:
        raise ValueError(f"idx file {str(path)!r} is too short for a header ({len(raw)} bytes)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(f"idx file {str(path)!r} has magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"idx file {str(path)!r} is too short for a header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = len(raw) - header
    if body != int(np.prod(shape)):
        raise ValueError(
            f"idx file {str(path)!r} holds {body} bytes of data, its header {shape} says "
            f"{int(np.prod(shape))}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def load_idx_dataset(directory: str | Path, classes: int = 10) -> ImageArrays:
    """MNIST or Fashion-MNIST from the four idx files of :data:`IDX_FILES` in ``directory``.

    The split is the files' own: 60,000 training and 10,000 test images of 28×28 for both.

    Raises:
      FileNotFoundError, ValueError: a missing or malformed file, or images and labels that
        disagree in number or labels outside ``0 .. classes − 1``, naming the path.
    """
    directory = Path(directory)
    arrays = {}
    for split in ("train", "test"):
        x_path = directory / IDX_FILES[f"{split}_x"]
        y_path = directory / IDX_FILES[f"{split}_y"]
        x = read_idx(x_path, IDX_IMAGES_MAGIC)
        y = read_idx(y_path, IDX_LABELS_MAGIC)
        if len(x) != len(y):
            raise ValueError(
                f"idx files {str(x_path)!r} and {str(y_path)!r} hold {len(x)} images but "
                f"{len(y)} labels"
            )
        _check_labels(y, classes, y_path)
        arrays[f"{split}_x"] = x[..., None]
        arrays[f"{split}_y"] = y.astype(np.int32)
    return ImageArrays(**arrays, max_value=255.0)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: a pickled dict with ``data`` and ``labels``.

    ``data`` is ``[n, 3072]`` uint8, each row the 1,024 red, then green, then blue values of a
    32×32 image in row-major order. Keys may be bytes (as the original files load with
    ``encoding="bytes"``) or str. Unpickling runs code from the file: read only trusted files.

    Returns:
      ``([n, 32, 32, 3]`` uint8 images, ``[n]`` int32 labels``)``.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: the file is not such a pickle, naming the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {str(path)!r} does not exist")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except Exception as err:  # any unpickling failure means a malformed file
        raise ValueError(f"CIFAR-10 batch {str(path)!r} is not a readable pickle: {err}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR-10 batch {str(path)!r} does not hold a dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"CIFAR-10 batch {str(path)!r} lacks 'data' or 'labels'")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(
            f"CIFAR-10 batch {str(path)!r}: data is {data.dtype}{list(data.shape)}, "
            "expected uint8[n, 3072]"
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"CIFAR-10 batch {str(path)!r}: labels have shape {list(labels.shape)}, "
            f"expected {len(data)} integers"
        )
    _check_labels(labels, 10, path)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def load_cifar10(directory: str | Path) -> ImageArrays:
    """CIFAR-10 from ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch`` (test)."""
    directory = Path(directory)
    train = [read_cifar_batch(directory / name) for name in CIFAR10_TRAIN]
    test_x, test_y = read_cifar_batch(directory / CIFAR10_TEST)
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return ImageArrays(train_x, train_y, test_x, test_y, 255.0)


def _check_labels(labels: np.ndarray, classes: int, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(
            f"{str(path)!r} has labels in {labels.min()}..{labels.max()}, outside 0..{classes - 1}"
        )


# ----------------------------------------------------------------------------- registry

DATASETS: dict[str, tuple[tuple[str, ...], str]] = {
    "cifar10": (("cifar-10-batches-py",), CIFAR10_TEST),
    "mnist": (("MNIST/raw", "mnist"), IDX_FILES["train_x"]),
    "fashion_mnist": (("FashionMNIST/raw", "fashion_mnist", "fashion-mnist"), IDX_FILES["train_x"]),
}
"""File-backed datasets: the sub-directories of ``--data-dir`` searched (before the directory
itself) and the file whose presence picks the directory."""


@functools.lru_cache(maxsize=8)
def load_dataset(name: str, data_dir: str | None = None) -> ImageArrays:
    """Dataset ``name`` (``digits`` or a key of :data:`DATASETS`), read once and cached.

    Args:
      name: dataset name.
      data_dir: directory holding the files (ignored for ``digits``); its sub-directories named in
        :data:`DATASETS` (e.g. ``cifar-10-batches-py``, ``MNIST/raw``) are searched first.

    Returns:
      Read-only arrays.
    """
    if name == "digits":
        arrays = load_digits()
    elif name in DATASETS:
        subdirs, marker = DATASETS[name]
        directory = find_data_dir(data_dir, subdirs, marker)
        arrays = load_cifar10(directory) if name == "cifar10" else load_idx_dataset(directory)
    else:
        raise ValueError(
            f"unknown image dataset {name!r}; choose from digits, {', '.join(DATASETS)}"
        )
    for array in arrays[:4]:
        array.setflags(write=False)
    return arrays
