"""Costs read from traced programs (clj.step_cost) against closed forms, and their use in planning
and in the memory estimate."""

import pytest

from clj import memory, step_cost
from clj.buckets import mlp_step_flops
from clj.config import SweepConfig
from clj.data import make_family
from clj.plan import plan_programs
from clj.spec import Spec


def _spec(data, dim, clusters, **fields):
    return Spec(make_family(data, dim, clusters), batch=64, steps=20, eval_size=128, **fields)


def test_mlp_flops_match_the_closed_form():
    spec = _spec("gaussian_mixture", 16, 4, encoder="mlp", max_width=128, max_out_dim=8)
    closed = mlp_step_flops(16, 128, 8, spec.depth, spec.batch)
    # XLA also counts the loss, the data draw and the optimiser: some percent more.
    assert closed <= step_cost.step_flops(spec) <= 1.15 * closed


def test_cnn2d_flops_match_the_convolutions():
    width, batch = 16, 64
    spec = _spec("digits", 64, 10, encoder="cnn2d", max_width=width, max_out_dim=8)
    # 8 × 8 positions; a 3 × 3 convolution 1 → w channels, then w → w; pooled linear w → 8.
    macs = 64 * 9 * (1 * width + width * width) + width * 8
    closed = 3 * 2 * macs * 2 * batch  # forward and twice that backward, both views
    assert closed <= step_cost.step_flops(spec) <= 1.25 * closed
    assert step_cost.analytic(spec) is False


def test_memory_of_a_cnn_counts_its_feature_maps():
    spec = _spec("digits", 64, 10, encoder="cnn2d", max_width=32, max_out_dim=8)
    feature_maps = 2 * spec.batch * 64 * 32 * spec.depth * 4  # both views, every layer, float32
    assert step_cost.step_intermediate_bytes(spec) >= feature_maps
    assert memory.cell_bytes(spec) >= memory.SAFETY * feature_maps
    # The closed form, which knows only the MLP, would see a few thousand floats per row.
    mlp_like = _spec("digits", 64, 10, encoder="mlp", max_width=32, max_out_dim=8)
    assert memory.cell_bytes(spec) > 4 * memory.cell_bytes(mlp_like)


def test_simvae_state_counts_the_decoder():
    kwargs = dict(encoder="mlp", max_width=32, max_out_dim=4)
    vae = _spec("gaussian_mixture", 16, 4, loss="simvae", **kwargs)
    pairs = _spec("gaussian_mixture", 16, 4, loss="spectral", **kwargs)
    assert step_cost.analytic(pairs) and not step_cost.analytic(vae)
    assert step_cost.state_bytes(vae) > 1.5 * step_cost.state_bytes(pairs)


@pytest.mark.parametrize(("encoder", "programs"), [("mlp", 1), ("cnn2d", 2)])
def test_expensive_cnn_widths_get_their_own_programs(encoder, programs):
    """At widths 4 and 64 an MLP step is cheap next to a compile and shares one program; a 2-D
    CNN step over 8 × 8 feature maps is not, and the planner splits it."""
    config = SweepConfig(
        data="digits",
        dim=64,
        encoder=encoder,
        widths=[4, 64],
        clusters=[10],
        out_dims=[8],
        seeds=1,
        steps=2000,
        batch=256,
    )
    assert len(plan_programs(config, backend="cpu")) == programs
