"""Section 2's compute stage: the effective weights between consecutive layers (the graph's edges)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import unit_layers
from reportgen.sections.preferred.compute import incoming_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def test_edges_follow_the_weights_between_consecutive_layers() -> None:
    torch.manual_seed(0)
    net = create_model("model2", in_channels=3, image_size=16, num_classes=4, width=0.125).eval()
    with torch.no_grad():  # a batch norm gain of -1 must flip the sign of that unit's incoming weights
        net.conv2.bn.weight[0] = -net.conv2.bn.running_var[0].add(net.conv2.bn.eps).sqrt()
    layers = unit_layers(net, (3, 16, 16))
    weights = incoming_weights(net, layers, 3)
    assert [w.shape for w in weights] == [(layer.units, before) for layer, before in
                                          zip(layers, [3] + [layer.units for layer in layers[:-1]], strict=True)]
    np.testing.assert_allclose(weights[1][0], -net.conv2.conv.weight[0].detach().sum(dim=(1, 2)).numpy(), rtol=1e-5)
    # fc5 reads the pooled conv4b map flattened: its weights are summed over each channel's positions
    fc5 = net.fc5.linear.weight.detach().reshape(layers[6].units, layers[5].units, -1).sum(2)
    gain = net.fc5.bn.weight.detach() / torch.sqrt(net.fc5.bn.running_var + net.fc5.bn.eps)
    np.testing.assert_allclose(weights[6], (fc5 * gain[:, None]).numpy(), rtol=1e-5)


def test_the_ladder_of_priors_changes_one_thing_at_a_time() -> None:
    from dataclasses import asdict

    from reportgen.optvis import Settings
    from reportgen.sections.preferred.compute import CLASS_KINDS, PRIOR_DEFAULTS, prior_settings

    chosen = Settings(steps=16, lr=0.1, param="fourier", jitter=2, decay=0.05, blur_every=0, norm_clip_pct=30.0,
                      contrib_clip_pct=0.0)
    ladder = prior_settings(chosen)
    assert list(ladder) == list(CLASS_KINDS[:-1])
    bare = ladder["bare"]
    assert (bare.param, bare.jitter, bare.decay, bare.blur_every, bare.norm_clip_pct, bare.contrib_clip_pct) == \
        ("pixel", 0, 0.0, 0, 0.0, 0.0) and (bare.steps, bare.lr) == (16, 0.1)
    changed = {"decay": {"decay"}, "blur": {"blur_every"}, "norm_clip": {"norm_clip_pct"},
               "contrib_clip": {"contrib_clip_pct"}}
    kinds = list(ladder)
    for before, kind in zip(kinds, kinds[1:], strict=False):
        a, b = asdict(ladder[before]), asdict(ladder[kind])
        assert {k for k in a if a[k] != b[k]} == changed[kind], kind
    # the search's strength where it turned a prior on, the default where it did not
    assert ladder["decay"].decay == 0.05 and ladder["norm_clip"].norm_clip_pct == 30.0
    assert ladder["blur"].blur_every == PRIOR_DEFAULTS["blur_every"]
    assert ladder["contrib_clip"].contrib_clip_pct == PRIOR_DEFAULTS["clip_pct"]
