"""Planning: split a grid into compiled programs, by static axes and then by width bucket.

Cells that differ in a static axis (data family, dimension, encoder, depth, loss, optimiser,
batch, steps, evaluation size) need programs of their own. Within one static group, cells are
further split into width buckets when :mod:`clj.buckets`'s cost model says padding them all to the
widest costs more than compiling another program. On a CPU, an MLP trained by a pair loss keeps
its buckets in one program instead, as width classes (:mod:`clj.width_classes`), priced at
:data:`~clj.buckets.CLASS_FLOPS` each.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from clj.buckets import CLASS_FLOPS, COMPILE_FLOPS, mlp_step_flops, plan_buckets
from clj.config import STATIC_AXES, SweepConfig
from clj.data import make_family
from clj.spec import Spec
from clj.step_cost import analytic, step_flops

__all__ = ["Program", "plan_programs"]


@dataclasses.dataclass(frozen=True)
class Program:
    """One compiled program: a static :class:`Spec` and the cells that share it.

    Attributes:
      spec: static configuration (padded to the widest cell of this program).
      cells: the cells' coordinates (dicts as :meth:`SweepConfig.cells` gives).
      index: each cell's position in the whole grid.
      width_classes: the padded widths its cells train at (:mod:`clj.width_classes`), increasing,
        the last one ``spec.max_width``; empty when every cell trains at ``spec.max_width``.
    """

    spec: Spec
    cells: tuple[dict[str, Any], ...]
    index: tuple[int, ...]
    width_classes: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """A short human-readable name for progress bars and logs."""
        s = self.spec
        if s.encoder == "linear":
            width = "linear"
        elif self.width_classes:
            width = "widths≤" + "/".join(map(str, self.width_classes))
        else:
            width = f"width≤{s.max_width}"
        return f"{s.family.name} {s.loss} {width} ({len(self.cells)} cells)"


def plan_programs(
    config: SweepConfig, backend: str | None = None, bucket_widths: bool | None = None
) -> list[Program]:
    """Splits the grid into programs: by static axes, then into width buckets.

    Args:
      config: the sweep.
      backend: ``"cpu"``, ``"gpu"`` or ``"tpu"`` for the cost model (default: JAX's backend).
      bucket_widths: override ``config.bucket_widths``.
    """
    backend = backend or jax.default_backend()
    bucket = config.bucket_widths if bucket_widths is None else bucket_widths
    groups: dict[tuple, list[int]] = {}
    cells = config.cells()
    for i, cell in enumerate(cells):
        groups.setdefault(tuple(cell[a] for a in STATIC_AXES), []).append(i)

    programs = []
    for key, members in groups.items():
        static = dict(zip(STATIC_AXES, key, strict=True))
        group = [cells[i] for i in members]
        classes = _classes_apply(config, static, group, backend)
        widths = _width_buckets(config, static, group, backend, bucket, classes)
        if classes and len(widths) > 1:
            program = _program(config, static, group, members)
            programs.append(
                dataclasses.replace(program, width_classes=tuple(max(b) for b in widths))
            )
            continue
        for bucket_widths_ in widths:
            chosen = [i for i in members if cells[i]["width"] in bucket_widths_]
            programs.append(_program(config, static, [cells[i] for i in chosen], chosen))
    return programs


def _classes_apply(config: SweepConfig, static: dict, cells: list[dict], backend: str) -> bool:
    """Whether a static group's width buckets become width classes of one program: on a CPU
    (whose devices train cells in groups), for an MLP trained by a pair loss, whose padded
    units stay exactly zero."""
    if backend != "cpu" or static["encoder"] != "mlp":
        return False
    return analytic(_program(config, static, cells, list(range(len(cells)))).spec)


def _width_buckets(
    config: SweepConfig,
    static: dict,
    cells: list[dict],
    backend: str,
    bucket: bool,
    classes: bool = False,
) -> list[tuple[int, ...]]:
    widths = sorted({c["width"] for c in cells})
    if static["encoder"] == "linear" or not bucket or len(widths) == 1:
        return [tuple(widths)]
    counts = {w: sum(c["width"] == w for c in cells) for w in widths}
    out_dim = max(c["out_dim"] for c in cells)

    spec = _program(config, static, cells, list(range(len(cells)))).spec

    def cost(width: int) -> float:
        if analytic(spec):
            flops = mlp_step_flops(static["dim"], width, out_dim, static["depth"], static["batch"])
        else:  # convolutions, decoders, heads: XLA's count for the traced step
            flops = step_flops(dataclasses.replace(spec, max_width=width))
        return flops * static["steps"]

    prices = CLASS_FLOPS if classes else COMPILE_FLOPS
    return plan_buckets(counts, cost, prices.get(backend, COMPILE_FLOPS["gpu"]))


def _program(config: SweepConfig, static: dict, cells: list[dict], index: list[int]) -> Program:
    family = make_family(
        static["data"],
        static["dim"],
        max(c["clusters"] for c in cells),
        **config.options_for(static["data"]),
    )
    spec = Spec(
        family=family,
        encoder=static["encoder"],
        depth=static["depth"],
        max_width=max(c["width"] for c in cells) if static["encoder"] != "linear" else 1,
        max_out_dim=max(c["out_dim"] for c in cells),
        loss=static["loss"],
        optimizer=static["optimizer"],
        batch=static["batch"],
        steps=static["steps"],
        eval_size=static["eval_size"],
        log_every=config.log_every,
        pool_size=config.pool_size,
        views=config.views,
    )
    return Program(spec=spec, cells=tuple(cells), index=tuple(index))
