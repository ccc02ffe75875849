"""Encoders whose hidden width and output dimension vary per cell by padding and masking.

Every encoder is a Flax Linen module called as ``module.apply(variables, x, *cell_values)``
where ``x`` is ``[n, dim]`` (flat inputs; convolutional encoders reshape them to the family's
``input_shape``) and ``cell_values`` are the :class:`~clj.cell.Cell` fields the module names in
its ``cell_inputs`` class attribute (``("width", "out_dim")`` for the MLP). The output is
``[n, max_out_dim]`` with exactly zero columns beyond the cell's ``out_dim``.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn

from clj.encoders.cnn1d import MaskedCNN1D, MaskedConv1D
from clj.encoders.cnn2d import MaskedCNN2D, MaskedConv2D
from clj.encoders.lipschitz import LipschitzMLP, capped_kernel, spectral_norm_bound
from clj.encoders.mlp import MaskedDense, MaskedMLP, dense_product, stored_param, unit_mask

__all__ = [
    "ENCODERS",
    "ENCODER_DESCRIPTIONS",
    "LipschitzMLP",
    "MaskedCNN1D",
    "MaskedCNN2D",
    "MaskedConv1D",
    "MaskedConv2D",
    "MaskedDense",
    "MaskedMLP",
    "capped_kernel",
    "dense_product",
    "make_encoder",
    "spectral_norm_bound",
    "stored_param",
    "unit_mask",
]

EncoderFactory = Callable[[int, int, int, tuple[int, ...]], nn.Module]
"""``(depth, max_width, max_out_dim, input_shape) -> module``."""


def _mlp(depth: int, max_width: int, max_out_dim: int, input_shape: tuple[int, ...]) -> nn.Module:
    del input_shape
    return MaskedMLP(depth=depth, max_width=max_width, max_out_dim=max_out_dim)


def _lipschitz_mlp(
    depth: int, max_width: int, max_out_dim: int, input_shape: tuple[int, ...]
) -> nn.Module:
    del input_shape
    return LipschitzMLP(depth=depth, max_width=max_width, max_out_dim=max_out_dim)


def _linear(
    depth: int, max_width: int, max_out_dim: int, input_shape: tuple[int, ...]
) -> nn.Module:
    del depth, max_width, input_shape
    return MaskedMLP(depth=0, max_width=1, max_out_dim=max_out_dim)


def _cnn1d(depth: int, max_width: int, max_out_dim: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) != 2:
        raise ValueError(
            f"encoder cnn1d needs (patches, patch_len) inputs, got input_shape={input_shape}"
        )
    return MaskedCNN1D(
        depth=depth, max_width=max_width, max_out_dim=max_out_dim, input_shape=input_shape
    )


def _cnn2d(depth: int, max_width: int, max_out_dim: int, input_shape: tuple[int, ...]) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(
            f"encoder cnn2d needs image inputs (height, width, channels), got "
            f"input_shape={input_shape}; use an image data family such as digits"
        )
    return MaskedCNN2D(
        depth=depth, max_width=max_width, max_out_dim=max_out_dim, input_shape=input_shape
    )


ENCODERS: dict[str, EncoderFactory] = {"mlp": _mlp, "linear": _linear, "cnn1d": _cnn1d}
"""Encoder constructors ``(depth, max_width, max_out_dim, input_shape) -> module`` by name."""
ENCODERS["lipschitz_mlp"] = _lipschitz_mlp
ENCODERS["cnn2d"] = _cnn2d

ENCODER_DESCRIPTIONS: dict[str, str] = {
    "mlp": "ReLU MLP with `depth` hidden layers of per-cell width, masked to the grid's maximum",
    "linear": "linear map x -> Wx + b to the per-cell output dimension (width and depth unused)",
    "lipschitz_mlp": "the mlp with each layer spectrally normalised so that the network is at "
    "most `lipschitz`-Lipschitz (per-cell cap; inf: the plain mlp)",
    "cnn1d": "1-D CNN over (patches, patch_len) inputs: `depth` one-patch convolutions + ReLU of "
    "per-cell channels, mean pooling over positions, linear output",
    "cnn2d": "2-D CNN over (H, W, C) images: `depth` 3x3 convolutions + ReLU of per-cell "
    "channels, global average pooling, linear output",
}


def make_encoder(
    name: str,
    depth: int,
    max_width: int,
    max_out_dim: int,
    input_shape: tuple[int, ...] | None = None,
) -> nn.Module:
    """Builds encoder ``name``; raises ``ValueError`` naming an unknown encoder.

    Args:
      name: a key of :data:`ENCODERS`.
      depth: hidden layers.
      max_width: padded width (hidden units, or channels of a convolutional encoder).
      max_out_dim: padded output dimension.
      input_shape: the shape of one input before flattening (the data family's
        ``input_shape``); only convolutional encoders use it.
    """
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
    return ENCODERS[name](depth, max_width, max_out_dim, tuple(input_shape or ()))
