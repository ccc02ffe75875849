"""Width buckets: split one program's cells into programs of smaller padded width when cheaper.

Padding every cell to the grid's widest wastes work on the narrow cells; compiling one program per
width wastes compile time. :func:`plan_buckets` picks contiguous groups of the sorted widths that
minimise a simple cost model: ``Σ_bucket cells(bucket) · step_flops(max width of bucket) · steps``
plus a fixed price per extra compiled program, expressed in FLOPs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

__all__ = ["CLASS_FLOPS", "COMPILE_FLOPS", "mlp_step_flops", "plan_buckets"]

COMPILE_FLOPS = {"cpu": 5e11, "gpu": 5e13, "tpu": 5e13}
"""Price of compiling one more program, in FLOPs of training it could have done instead
(compiling takes seconds; a 2-core CPU trains ~1e11 FLOP/s, an accelerator ~1e13)."""

CLASS_FLOPS = {"cpu": 1.5e11}
"""Price of one more width class inside a program (:mod:`clj.width_classes`; CPU only), in FLOPs:
only its step chunk compiles again. On the reference grid (2026-12-02, 2-core CPU) a third class
(32, beside 64 and 256) compiled 1.2 s longer and trained 3.5 s faster (a 3.8e11-FLOP saving); a
fourth (16: 0.9e11 FLOPs saved) compiled 1.5 s longer and trained no faster."""


def mlp_step_flops(dim: int, width: int, out_dim: int, depth: int, batch: int) -> float:
    """FLOPs of one training step (forward and backward, both views) of an MLP cell.

    A dense layer of fan-in ``a`` and fan-out ``b`` costs ``2ab`` FLOPs a row forward and about
    twice that backward; each step encodes ``2 · batch`` rows.
    """
    if depth == 0:
        sizes = [dim, out_dim]
    else:
        sizes = [dim, *([width] * depth), out_dim]
    per_row = sum(2 * a * b for a, b in itertools.pairwise(sizes))
    return 3.0 * per_row * 2 * batch


def plan_buckets(
    cells_per_width: Mapping[int, int],
    cost: callable,
    compile_cost: float,
) -> list[tuple[int, ...]]:
    """Optimal contiguous partition of the widths into buckets.

    Args:
      cells_per_width: number of cells of each width.
      cost: ``width -> cost`` of training one cell padded to ``width``.
      compile_cost: cost of each program, in the same units.

    Returns:
      Buckets, each a tuple of widths in increasing order; together they cover every width once.
    """
    widths = sorted(cells_per_width)
    n = len(widths)
    # best[j]: cheapest cost of the first j widths; cut[j]: start of the last bucket.
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        count = 0
        for i in range(j, 0, -1):  # last bucket holds widths[i-1 : j], padded to widths[j-1]
            count += cells_per_width[widths[i - 1]]
            total = best[i - 1] + compile_cost + count * cost(widths[j - 1])
            if total < best[j]:
                best[j], cut[j] = total, i - 1
    buckets = []
    j = n
    while j > 0:
        buckets.append(tuple(widths[cut[j] : j]))
        j = cut[j]
    return buckets[::-1]
