"""How many cells fit on a device at once: a per-cell memory estimate and the device's budget."""

from __future__ import annotations

import itertools
import os

import jax

from clj.spec import Spec
from clj.step_cost import analytic, encode_intermediate_bytes, state_bytes, step_intermediate_bytes

__all__ = ["cell_bytes", "device_budget_bytes", "max_cells_per_chunk"]

SAFETY = 2.0
"""Headroom factor on the estimate, for XLA's temporaries."""

BUDGET_FRACTION = 0.6
"""Fraction of a device's memory (host RAM for the CPU) that a chunk of cells may use."""


def cell_bytes(spec: Spec) -> int:
    """Rough peak bytes one cell needs, training or evaluating (float32).

    Counts parameters with their gradient and optimiser moments, the activations of a training
    step (kept for the backward pass), the batch's Gram matrices, and the evaluation's features,
    pairwise distances and k-means distances. MLP and linear encoders with a pair loss use a
    closed form; other encoders and objectives are measured on their traced step
    (:mod:`clj.step_cost`).
    """
    d, w, k, b = spec.family.dim, spec.max_width, spec.max_out_dim, spec.batch
    n = spec.eval_size
    classes = spec.family.num_fine_classes
    evaluate = 4 * (6 * n * (d + k) + 3 * n * n + 2 * n * classes + k * classes)
    if analytic(spec):
        depth = spec.depth if spec.encoder == "mlp" else 0
        sizes = [d, *([w] * depth), k]
        params = sum(a * c + c for a, c in itertools.pairwise(sizes))
        train = 4 * (5 * params + 2 * b * sum(sizes) * 3 + 4 * (2 * b) ** 2)
        pool = 4 * (spec.pool_size or 0) * (d + 2)
    else:  # read from the traced program (the state includes any pool)
        train = state_bytes(spec) + step_intermediate_bytes(spec)
        evaluate += encode_intermediate_bytes(spec)
        pool = 0
    return int(SAFETY * (max(train, evaluate) + pool + 4 * spec.curve_length))


def device_budget_bytes() -> int:
    """Memory a chunk of cells may use on one device."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        total = stats["bytes_limit"]
    else:  # CPU: the host's physical memory, shared by its CPU devices
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        total //= max(len(jax.local_devices()), 1)
    return int(total * BUDGET_FRACTION)


def max_cells_per_chunk(spec: Spec, num_devices: int) -> int:
    """Most cells of ``spec`` that fit at once on ``num_devices`` devices (a multiple of it)."""
    per_device = max(1, device_budget_bytes() // cell_bytes(spec))
    return per_device * num_devices
