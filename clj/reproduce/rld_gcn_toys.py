"""The six 2-D toy sets of ``rld-gcn``: where relative local density and Calinski–Harabasz part.

Each set has ``classes`` classes of ``per_class`` points (labels ``0, 0, …, 1, 1, …``):

- ``squares``: uniform unit squares, class ``c`` centred at ``(0.7 c, 0)``, each overlapping its
  neighbours by 0.3.
- ``rings``: concentric rings of radius ``1 + 0.5 c``, radial noise 0.05.
- ``lines``: lines through the origin at angle ``π c / classes``, ``t ~ U(−2, 2)`` along the line,
  noise 0.03.
- ``clumps``: each class is 30 tiny clumps (standard deviation 0.05) at uniform positions in
  ``[0, 10]²``, the classes' clumps interleaved.
- ``segments``: each class is 10 segments of length 1 with uniform centres in ``[0, 10]²`` and
  uniform directions, noise 0.02.
- ``blobs``: Gaussian blobs of standard deviation 0.5 centred on a circle of radius 3.

The four middle sets are locally dense (every point's neighbours share its class) but not
globally compact (class means coincide or classes interleave), so Zhang et al. (2023) expect RLD
to rank them high while CH ranks them low. Samplers are pure JAX functions of a key.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from clj import metrics

__all__ = ["LOCALLY_DENSE", "TOY_SETS", "toy_scores", "toy_set", "toy_sets", "toys_figure"]

TOY_SETS: tuple[str, ...] = ("squares", "rings", "lines", "clumps", "segments", "blobs")
"""The sets' names, in the figure's order."""

LOCALLY_DENSE: tuple[str, ...] = ("rings", "lines", "clumps", "segments")
"""The sets whose classes are locally but not globally dense."""

_CLUMPS_PER_CLASS = 30
_SEGMENTS_PER_CLASS = 10


def _squares(key: jax.Array, c: jax.Array, m: int, classes: int) -> jax.Array:
    offset = jax.random.uniform(key, (m, 2), minval=-0.5, maxval=0.5)
    return offset + jnp.stack([0.7 * c, 0.0])


def _rings(key: jax.Array, c: jax.Array, m: int, classes: int) -> jax.Array:
    k_angle, k_noise = jax.random.split(key)
    angle = jax.random.uniform(k_angle, (m,), maxval=2 * math.pi)
    radius = 1.0 + 0.5 * c + 0.05 * jax.random.normal(k_noise, (m,))
    return radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)


def _lines(key: jax.Array, c: jax.Array, m: int, classes: int) -> jax.Array:
    k_t, k_noise = jax.random.split(key)
    theta = math.pi * c / classes
    t = jax.random.uniform(k_t, (m, 1), minval=-2.0, maxval=2.0)
    direction = jnp.stack([jnp.cos(theta), jnp.sin(theta)])
    return t * direction + 0.03 * jax.random.normal(k_noise, (m, 2))


def _pieces(key: jax.Array, m: int, pieces: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each of ``m`` points' piece index ``[m]`` and the pieces' uniform centres and angles."""
    k_centre, k_angle = jax.random.split(key)
    centres = jax.random.uniform(k_centre, (pieces, 2), maxval=10.0)
    angles = jax.random.uniform(k_angle, (pieces,), maxval=math.pi)
    return jnp.arange(m) % pieces, centres, angles


def _clumps(key: jax.Array, c: jax.Array, m: int, classes: int) -> jax.Array:
    k_piece, k_noise = jax.random.split(key)
    piece, centres, _ = _pieces(k_piece, m, _CLUMPS_PER_CLASS)
    return centres[piece] + 0.05 * jax.random.normal(k_noise, (m, 2))


def _segments(key: jax.Array, c: jax.Array, m: int, classes: int) -> jax.Array:
    k_piece, k_t, k_noise = jax.random.split(key, 3)
    piece, centres, angles = _pieces(k_piece, m, _SEGMENTS_PER_CLASS)
    t = jax.random.uniform(k_t, (m, 1), minval=-0.5, maxval=0.5)
    direction = jnp.stack([jnp.cos(angles[piece]), jnp.sin(angles[piece])], axis=1)
    return centres[piece] + t * direction + 0.02 * jax.random.normal(k_noise, (m, 2))


def _blobs(key: jax.Array, c: jax.Array, m: int, classes: int) -> jax.Array:
    angle = 2 * math.pi * c / classes
    centre = 3.0 * jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    return centre + 0.5 * jax.random.normal(key, (m, 2))


_SAMPLERS: dict[str, Callable[[jax.Array, jax.Array, int, int], jax.Array]] = {
    "squares": _squares,
    "rings": _rings,
    "lines": _lines,
    "clumps": _clumps,
    "segments": _segments,
    "blobs": _blobs,
}


def toy_set(
    name: str, key: jax.Array, classes: int = 5, per_class: int = 300
) -> tuple[jax.Array, jax.Array]:
    """One toy set.

    Args:
      name: one of :data:`TOY_SETS`.
      key: PRNG key.
      classes: number of classes (static).
      per_class: points per class (static).

    Returns:
      ``(x, y)``: ``[classes · per_class, 2]`` float32 points and ``[classes · per_class]`` int32
      labels, class by class.
    """
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy set {name!r}; choose from {', '.join(TOY_SETS)}")
    for what, value in (("classes", classes), ("per_class", per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what}={value!r} must be a positive integer")
    sampler = _SAMPLERS[name]
    labels = jnp.arange(classes, dtype=jnp.int32)
    keys = jax.random.split(key, classes)
    x = jax.vmap(lambda k, c: sampler(k, c.astype(jnp.float32), per_class, classes))(keys, labels)
    return x.reshape(classes * per_class, 2), jnp.repeat(labels, per_class)


@functools.partial(jax.jit, static_argnames=("classes", "per_class"))
def toy_sets(key: jax.Array, classes: int = 5, per_class: int = 300) -> tuple[jax.Array, jax.Array]:
    """All six sets, set ``i`` drawn from ``fold_in(key, i)``.

    Returns:
      ``(x, y)``: ``[6, n, 2]`` points and ``[6, n]`` labels, ``n = classes · per_class``, in the
      order of :data:`TOY_SETS`.
    """
    pairs = [
        toy_set(name, jax.random.fold_in(key, i), classes, per_class)
        for i, name in enumerate(TOY_SETS)
    ]
    return jnp.stack([p[0] for p in pairs]), jnp.stack([p[1] for p in pairs])


def toy_scores(
    x: jax.Array, y: jax.Array, temperature: float, num_classes: int
) -> dict[str, np.ndarray]:
    """RLD and Calinski–Harabasz of every set, in one vmapped, jitted call.

    Args:
      x: ``[S, n, 2]`` points.
      y: ``[S, n]`` labels in ``[0, num_classes)``.
      temperature: RLD temperature.
      num_classes: static number of classes.

    Returns:
      ``{"rld": [S], "ch": [S]}`` host arrays.
    """

    def score(x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
        return {
            "rld": metrics.rld(x, y, temperature),
            "ch": metrics.calinski_harabasz(x, y, num_classes),
        }

    out = jax.jit(jax.vmap(score))(x, y)
    return {k: np.asarray(v) for k, v in out.items()}


def toys_figure(
    x: np.ndarray, y: np.ndarray, rld: np.ndarray, ch: np.ndarray, temperature: float
) -> Figure:
    """A 2×3 grid of scatter plots, each titled with its set's RLD and CH."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    for i, (ax, name) in enumerate(zip(axes, TOY_SETS, strict=True)):
        ax.scatter(x[i, :, 0], x[i, :, 1], c=y[i], cmap="tab10", vmin=0, vmax=9, s=3)
        ax.set_title(f"{name}: RLD({temperature:g}) = {rld[i]:.3f}, CH = {ch[i]:.3g}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
