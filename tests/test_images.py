"""Tests of clj.data.images: augmentations against NumPy, file readers, the image families."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import pickle
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clj.cell import stack_cells
from clj.cli import _config_from_args, _parser, main
from clj.config import ConfigError, SweepConfig
from clj.data import FAMILIES, Anchors, GaussianMixture, make_family
from clj.data.images import (
    IMAGE_FAMILIES,
    augment_images,
    gaussian_noise,
    load_cifar10,
    load_dataset,
    load_digits,
    random_flip,
    random_rotation,
    random_translation,
    read_cifar_batch,
    read_idx,
    rotate_images,
    shift_images,
)
from clj.evaluate import make_evaluate
from clj.spec import Spec
from clj.train import make_train


def make_cell(**values):
    """One cell (scalar fields) with defaults for everything not given."""
    defaults = dict(
        seed=0,
        width=4,
        clusters=10,
        out_dim=2,
        lr=1e-3,
        weight_decay=0.0,
        temperature=0.5,
        dof=5.0,
        lam=1.0,
    )
    return jax.tree.map(lambda a: a[0], stack_cells([{**defaults, **values}]))


def _images(n=6, h=7, w=7, c=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, h, w, c)).astype(np.float32)


# ----------------------------------------------------------------------------- augmentations


def _np_shift(x, dy, dx):
    """Reference: out[i, r, c] = x[i, r - dy, c - dx] where that exists, else 0."""
    out = np.zeros_like(x)
    _, h, w, _ = x.shape
    for i in range(len(x)):
        for r in range(h):
            for c in range(w):
                if 0 <= r - dy[i] < h and 0 <= c - dx[i] < w:
                    out[i, r, c] = x[i, r - dy[i], c - dx[i]]
    return out


def test_shift_matches_numpy_and_roll():
    x = _images()
    dy = np.array([0, 1, -2, 3, -3, 2])
    dx = np.array([0, -1, 2, 3, 1, -3])
    got = np.asarray(jax.jit(shift_images, static_argnums=3)(x, dy, dx, 3))
    chex.assert_shape(got, x.shape)
    np.testing.assert_array_equal(got, _np_shift(x, dy, dx))
    # A shift by (1, 2) is np.roll with the wrapped-around rows and columns zeroed.
    rolled = np.roll(x[1:2], (1, 2), axis=(1, 2))
    rolled[:, :1] = 0
    rolled[:, :, :2] = 0
    np.testing.assert_array_equal(shift_images(x[1:2], np.array([1]), np.array([2]), 2), rolled)


def test_random_translation_draws_per_image_shifts_in_range():
    # One bright pixel in the middle of each image: its new position gives the shift drawn.
    n, size, m = 400, 9, 2
    x = np.zeros((n, size, size, 1), np.float32)
    x[:, 4, 4, 0] = 1.0
    out = np.asarray(jax.jit(lambda k: random_translation(k, x, m))(jax.random.key(1)))
    rows, cols = np.nonzero(out[..., 0].sum(axis=2))[1], np.nonzero(out[..., 0].sum(axis=1))[1]
    assert len(rows) == len(cols) == n  # every pixel is still inside the image
    shifts = np.stack([rows - 4, cols - 4], 1)
    assert shifts.min() == -m and shifts.max() == m
    counts = np.unique(shifts, axis=0, return_counts=True)[1]
    assert len(counts) == (2 * m + 1) ** 2  # every (dy, dx) occurs
    assert counts.min() > 0.4 * n / 25


def _np_rotate(x, degrees):
    """Reference bilinear rotation about the centre, zeros outside (pixel by pixel)."""
    n, h, w, _ = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    cr, cc = (h - 1) / 2, (w - 1) / 2
    for i in range(n):
        t = np.deg2rad(degrees[i])
        for r in range(h):
            for col in range(w):
                sr = cr + np.cos(t) * (r - cr) + np.sin(t) * (col - cc)
                sc = cc + np.cos(t) * (col - cc) - np.sin(t) * (r - cr)
                r0, c0 = int(np.floor(sr)), int(np.floor(sc))
                for rr, cc_, wgt in (
                    (r0, c0, (1 - (sr - r0)) * (1 - (sc - c0))),
                    (r0, c0 + 1, (1 - (sr - r0)) * (sc - c0)),
                    (r0 + 1, c0, (sr - r0) * (1 - (sc - c0))),
                    (r0 + 1, c0 + 1, (sr - r0) * (sc - c0)),
                ):
                    if 0 <= rr < h and 0 <= cc_ < w:
                        out[i, r, col] += wgt * x[i, rr, cc_]
    return out


def test_rotation_identity_rot90_and_numpy_bilinear():
    x = _images(n=5)
    angles = np.array([0.0, 90.0, -90.0, 180.0, 23.0], np.float32)
    got = np.asarray(jax.jit(rotate_images)(x, angles))
    chex.assert_shape(got, x.shape)
    np.testing.assert_array_equal(got[0], x[0])  # exactly the identity
    np.testing.assert_allclose(got[1], np.rot90(x[1], 1, axes=(0, 1)), atol=1e-5)
    np.testing.assert_allclose(got[2], np.rot90(x[2], -1, axes=(0, 1)), atol=1e-5)
    np.testing.assert_allclose(got[3], np.rot90(x[3], 2, axes=(0, 1)), atol=1e-5)
    np.testing.assert_allclose(got, _np_rotate(x, angles), atol=1e-5)
    # Non-square images and random angles within the strength.
    wide = _images(n=3, h=5, w=8, c=1)
    random_angles = np.array([-7.5, 3.0, 11.0], np.float32)
    np.testing.assert_allclose(
        jax.jit(rotate_images)(wide, random_angles), _np_rotate(wide, random_angles), atol=1e-5
    )
    assert random_rotation(jax.random.key(0), x, 0) is x


def test_random_rotation_stays_within_strength():
    # A rotation preserves the pixel at the exact centre and moves an off-centre one by at most
    # the strength: the angle of its (bilinear) centre of mass tells the angle drawn.
    size, n, max_degrees = 21, 200, 20.0
    x = np.zeros((n, size, size, 1), np.float32)
    x[:, 10, 18, 0] = 1.0  # 8 pixels right of the centre
    rotate = jax.jit(random_rotation, static_argnums=2)
    out = np.asarray(rotate(jax.random.key(3), x, max_degrees))[..., 0]
    rows, cols = np.mgrid[:size, :size]
    mass = out.sum(axis=(1, 2))
    r = (out * rows).sum(axis=(1, 2)) / mass - 10
    c = (out * cols).sum(axis=(1, 2)) / mass - 10
    angles = np.degrees(np.arctan2(-r, c))  # counter-clockwise, rows point down
    assert np.all(np.abs(angles) <= max_degrees + 0.5)
    assert angles.max() > 0.8 * max_degrees and angles.min() < -0.8 * max_degrees


def test_noise_statistics_and_flip():
    x = np.zeros((64, 16, 16, 3), np.float32)
    noisy = np.asarray(jax.jit(gaussian_noise, static_argnums=2)(jax.random.key(0), x, 0.3))
    assert abs(noisy.mean()) < 4 * 0.3 / np.sqrt(noisy.size)
    np.testing.assert_allclose(noisy.std(), 0.3, rtol=0.02)
    assert gaussian_noise(jax.random.key(0), x, 0.0) is x

    images = _images(n=400, h=3, w=4, c=1)
    flipped = np.asarray(jax.jit(random_flip, static_argnums=2)(jax.random.key(2), images, 0.25))
    mirrored = np.all(flipped == images[:, :, ::-1], axis=(1, 2, 3))
    unchanged = np.all(flipped == images, axis=(1, 2, 3))
    assert np.all(mirrored ^ unchanged)
    assert abs(mirrored.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 400)


def test_augment_is_pure_per_view_and_vmaps():
    x = jnp.asarray(_images(n=8, h=8, w=8, c=1))
    augment = functools.partial(augment_images, shift=2, rotation=10.0, noise=0.1, flip=0.5)
    keys = jax.random.split(jax.random.key(0), 3)
    one = jax.jit(lambda k: augment(k, x))
    batched = jax.jit(jax.vmap(one))(keys)
    chex.assert_shape(batched, (3, 8, 8, 8, 1))
    for i, key in enumerate(keys):
        np.testing.assert_allclose(batched[i], one(key), atol=1e-6)
    assert not np.allclose(batched[0], batched[1])  # independent views
    # No strength: the images come back unchanged.
    np.testing.assert_array_equal(augment_images(keys[0], x), x)


# ----------------------------------------------------------------------------- files


def _write_idx(path: Path, array: np.ndarray, magic: int, gz: bool = False) -> Path:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def _marked_images(labels: np.ndarray, shape: tuple, marker: int) -> np.ndarray:
    """Images whose every pixel is ``20 · label + marker``, so a row tells its label and split."""
    values = (20 * labels + marker).astype(np.uint8)
    return np.broadcast_to(values.reshape(-1, *[1] * len(shape)), (len(labels), *shape)).copy()


def _write_mnist(root: Path, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, n, marker in (("train", 30, 0), ("t10k", 20, 7)):
        labels = np.arange(n) % 10
        images = _marked_images(labels, (28, 28), marker)
        _write_idx(root / f"{split}-images-idx3-ubyte", images, 2051, gz)
        _write_idx(root / f"{split}-labels-idx1-ubyte", labels, 2049, gz)
    return root


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """``[n, 32, 32, 3]`` to CIFAR-10's rows: all red values, then green, then blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _write_cifar(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, marker in [*((f"data_batch_{i}", 0) for i in range(1, 6)), ("test_batch", 7)]:
        labels = np.arange(10)
        images = _marked_images(labels, (32, 32, 3), marker)
        images[:, 0, 0, 2] = 255  # blue top-left pixel: checks the channel order
        batch = {b"batch_label": name.encode(), b"labels": list(labels)}
        batch[b"data"] = _cifar_rows(images)
        with (root / name).open("wb") as f:
            pickle.dump(batch, f)
    return root


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip_and_errors(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    path = _write_idx(tmp_path / "x-idx3-ubyte", images, 2051, gz)
    np.testing.assert_array_equal(read_idx(tmp_path / "x-idx3-ubyte", 2051), images)
    with pytest.raises(ValueError, match="magic number 2051, expected 2049") as err:
        read_idx(path, 2049)
    assert str(path) in str(err.value)
    if not gz:
        path.write_bytes(path.read_bytes()[:-3])
        with pytest.raises(ValueError, match=r"holds 57 bytes of data, its header \(3, 4, 5\)"):
            read_idx(path, 2051)
    with pytest.raises(FileNotFoundError, match="missing-idx"):
        read_idx(tmp_path / "missing-idx", 2051)


def test_mnist_family_reads_splits_and_labels(tmp_path):
    root = _write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    arrays = load_dataset("mnist", str(tmp_path))  # found in the MNIST/raw sub-directory
    chex.assert_shape([arrays.train_x], (30, 28, 28, 1))
    chex.assert_shape([arrays.test_x], (20, 28, 28, 1))
    np.testing.assert_array_equal(arrays.train_y, np.arange(30) % 10)
    family = make_family("mnist", 784, 10, data_dir=str(root))
    assert family.input_shape == (28, 28, 1)
    _check_marked_anchors(family, clusters=4)


def test_fashion_mnist_coarse_groups(tmp_path):
    root = _write_mnist(tmp_path / "fashion")
    family = make_family("fashion_mnist", 784, 10, data_dir=str(root))
    assert family.num_coarse_classes == 3
    anchors = jax.jit(lambda k: family.anchors(k, None, make_cell(clusters=10), 200))(
        jax.random.key(0)
    )
    groups = np.array([0, 0, 0, 0, 0, 1, 0, 1, 2, 1])  # clothing, footwear, bag
    np.testing.assert_array_equal(anchors.coarse, groups[np.asarray(anchors.fine)])


def test_cifar10_batches_layout_and_family(tmp_path):
    root = _write_cifar(tmp_path / "cifar-10-batches-py")
    images, labels = read_cifar_batch(root / "test_batch")
    chex.assert_shape(images, (10, 32, 32, 3))
    np.testing.assert_array_equal(labels, np.arange(10))
    assert np.all(images[:, 0, 0, 2] == 255) and np.all(images[:, 0, 0, :2] == images[:, 1, 1, :2])
    arrays = load_cifar10(root)
    assert len(arrays.train_x) == 50 and len(arrays.test_x) == 10
    family = make_family("cifar10", 3072, 10, data_dir=str(tmp_path))
    assert family.num_coarse_classes == 2
    train = _check_marked_anchors(family, clusters=10, pixel=(1, 1, 0))
    vehicle = np.isin(np.asarray(train.fine), [0, 1, 8, 9])
    np.testing.assert_array_equal(np.asarray(train.coarse), np.where(vehicle, 0, 1))


def _check_marked_anchors(family, clusters, pixel=(0, 0, 0)):
    """Training anchors come from the train split (marker 0), held-out ones from the test split
    (marker 7), every image with its own label; pixels are scaled to [0, 1]."""
    cell = make_cell(clusters=clusters)
    draw = jax.jit(
        lambda k: (family.anchors(k, None, cell, 300), family.heldout_anchors(k, None, cell, 300))
    )
    train, test = draw(jax.random.key(5))
    for anchors, marker in ((train, 0), (test, 7)):
        chex.assert_shape(anchors.x, (300, family.dim))
        chex.assert_type([anchors.fine, anchors.coarse], jnp.int32)
        fine = np.asarray(anchors.fine)
        assert set(fine) == set(range(clusters))
        image = np.asarray(anchors.x).reshape(300, *family.input_shape)
        np.testing.assert_allclose(
            image[(slice(None), *pixel)] * 255, 20 * fine + marker, atol=1e-3
        )
    return train


def test_malformed_and_missing_files_name_the_path(tmp_path):
    root = _write_cifar(tmp_path / "c")
    (root / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"data_batch_3.*not a readable pickle"):
        load_cifar10(root)
    with (root / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"data_batch_3.*expected uint8\[n, 3072\]"):
        load_cifar10(root)
    (root / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        make_family("cifar10", 3072, 10, data_dir=str(root))

    mnist = _write_mnist(tmp_path / "m")
    _write_idx(mnist / "t10k-labels-idx1-ubyte", np.arange(19) % 10, 2049)
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        make_family("mnist", 784, 10, data_dir=str(mnist))
    _write_idx(mnist / "t10k-labels-idx1-ubyte", np.arange(20) + 3, 2049)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*outside 0\.\.9"):
        make_family("mnist", 784, 10, data_dir=str(mnist))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        make_family("fashion_mnist", 784, 10, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="--data-dir"):
        make_family("mnist", 784, 10)


# ----------------------------------------------------------------------------- digits


def test_digits_split_labels_and_pixels():
    arrays = load_digits()
    assert len(arrays.train_x) == 1347 and len(arrays.test_x) == 450
    family = make_family("digits", 64, 10)
    assert family.input_shape == (8, 8, 1)
    train_rows = {
        row.tobytes(): y
        for row, y in zip(arrays.train_x.reshape(-1, 64), arrays.train_y, strict=True)
    }
    test_rows = {
        row.tobytes(): y
        for row, y in zip(arrays.test_x.reshape(-1, 64), arrays.test_y, strict=True)
    }
    cell = make_cell(clusters=6)
    draw = jax.jit(
        lambda k: (family.anchors(k, None, cell, 600), family.heldout_anchors(k, None, cell, 600))
    )
    for anchors, rows in zip(draw(jax.random.key(0)), (train_rows, test_rows), strict=True):
        x = np.asarray(anchors.x)
        assert x.min() >= 0 and x.max() <= 1
        raw = np.rint(x * 16).astype(np.uint8)
        np.testing.assert_allclose(raw / 16, x, atol=1e-6)
        labels = [rows.get(r.tobytes(), -1) for r in raw]  # each anchor is an image of its split
        np.testing.assert_array_equal(labels, anchors.fine)
        np.testing.assert_array_equal(anchors.coarse, anchors.fine)
        counts = np.bincount(anchors.fine, minlength=6)
        assert len(counts) == 6 and np.all(np.abs(counts - 100) < 4.5 * np.sqrt(100 * 5 / 6))


def test_digits_views_and_padding_invariance():
    cell = make_cell(clusters=4)

    def draw(family):
        return jax.jit(lambda k: family.anchors(k, None, cell, 64))(jax.random.key(2))

    family = make_family("digits", 64, 10)
    anchors = draw(family)
    chex.assert_trees_all_equal(draw(make_family("digits", 64, 4)), anchors)
    views = jax.jit(lambda k: family.views(k, None, cell, anchors))(jax.random.key(3))
    chex.assert_shape([views.x1, views.x2], (64, 64))
    assert not np.allclose(views.x1, views.x2)
    np.testing.assert_array_equal(views.fine, anchors.fine)
    # With rotation, shift and noise off, a view is the anchor itself.
    plain = make_family("digits", 64, 4, shift=0, rotation=0.0, noise=0.0)
    same = plain.augment(jax.random.key(0), None, cell, anchors.x)
    np.testing.assert_array_equal(same, anchors.x)


def test_image_families_registered_with_clear_errors():
    for cls in IMAGE_FAMILIES:
        assert FAMILIES[cls.name] is cls and cls.description
    with pytest.raises(ValueError, match=r"dim=32 does not match digits images .* use dim=64"):
        make_family("digits", 32, 10)
    with pytest.raises(ValueError, match="clusters=12 is above the 10 classes of digits"):
        make_family("digits", 64, 12)
    with pytest.raises(ValueError, match=r"clusters=0 is outside 1\.\.10"):
        make_family("digits", 64, 10).check_clusters(0)
    with pytest.raises(ValueError, match="shift=8"):
        make_family("digits", 64, 10, shift=8)
    with pytest.raises(ValueError, match="flip=2"):
        make_family("digits", 64, 10, flip=2)
    with pytest.raises(ConfigError, match="dim=32 does not match digits"):
        SweepConfig(data="digits", dim=32, clusters=10)
    with pytest.raises(ConfigError, match="clusters=11"):
        SweepConfig(data="digits", dim=64, clusters=(4, 11))


def test_cli_data_dir_errors_and_route(tmp_path, capsys):
    missing = tmp_path / "absent"
    assert main(["sweep", "--data", "mnist", "--dim", "784", "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"clj: error: --data-dir {str(missing)!r} is not a directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["sweep", "--data", "cifar10", "--dim", "3072", "--clusters", "10"]
    assert main([*args, "--data-dir", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "test_batch" in err[0] and str(empty) in err[0]
    # --data-dir joins the --data-option values in data_options, as an absolute path.
    root = _write_mnist(tmp_path / "m")
    flags = ["sweep", "--data", "mnist", "--dim", "784", "--clusters", "10"]
    parsed = _parser().parse_args([*flags, "--data-dir", str(root), "--data-option", "noise=0.2"])
    config = _config_from_args(parsed)
    assert config.options_for("mnist") == {"data_dir": str(root.resolve()), "noise": 0.2}


# ----------------------------------------------------------------------------- evaluation hook


@dataclasses.dataclass(frozen=True)
class _RelabelledHeldOut(GaussianMixture):
    """Held-out anchors whose labels are shifted by one: a probe fitted on the training anchors
    gets them all wrong if and only if the evaluator tests on ``heldout_anchors``."""

    def heldout_anchors(self, key, world, cell, n):
        a = self.anchors(key, world, cell, n)
        return Anchors(a.x, (a.fine + 1) % cell.clusters, a.coarse)


def test_evaluate_tests_probes_on_heldout_anchors():
    # Well-separated clusters: on the true labels both probes would be near-perfect.
    family = _RelabelledHeldOut(dim=4, max_clusters=3, radius=4.0, spread=0.05)
    spec = Spec(family=family, encoder="linear", max_out_dim=4, batch=8, steps=0)
    spec = dataclasses.replace(spec, eval_size=64, log_every=1, kmeans_iters=1)
    trainer = make_train(spec)
    cell = make_cell(clusters=3, out_dim=4)
    state = jax.jit(trainer.init)(cell)
    metrics = jax.jit(make_evaluate(trainer))(state, cell, jnp.zeros(0))
    assert float(metrics["probe_fine"]) < 0.05
    assert float(metrics["knn_fine"]) < 0.05
