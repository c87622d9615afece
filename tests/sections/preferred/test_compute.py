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
