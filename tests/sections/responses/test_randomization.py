"""The cascading randomization test: what it re-draws, and what it finds on the tiny build's models."""

import json

import numpy as np
import torch

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import unit_layers
from reportgen.sections.responses import randomization
from tests.conftest import BuiltSite


def test_randomizing_the_top_layers_redraws_their_weights_only_and_puts_them_back() -> None:
    torch.manual_seed(0)
    net = create_model("model1", in_channels=1, image_size=16, num_classes=10, width=0.125).eval()
    layers = unit_layers(net, (1, 16, 16), [])
    trained = {name: p.detach().clone() for name, p in net.named_parameters()}
    with randomization.randomized(net, layers, 2, seed=0):  # fc7 and fc6, the owners of 'fc7.linear', 'fc6.relu'
        drawn = {name: p.detach().clone() for name, p in net.named_parameters()}
    for name, p in net.named_parameters():
        assert torch.equal(p, trained[name])  # put back
        changed = not torch.equal(drawn[name], trained[name])
        assert changed == (name.startswith(("fc6.", "fc7.")) and float(trained[name].std()) > 0), name
    with randomization.randomized(net, layers, 1, seed=0):  # the output layer alone: the same draw as above
        assert torch.equal(net.fc7.linear.weight, drawn["fc7.linear.weight"])


def test_the_build_reports_both_methods_after_every_step(tiny_site: BuiltSite) -> None:
    html = (tiny_site.site / "posts" / "visualizing-two-cnns" / "index.html").read_text()
    for checked in tiny_site.stages("randomization"):
        result = json.loads(checked.file("randomization.json").read_text())
        assert result["rows"] == 2 * 10 and result["steps"][0] == "fc7" and result["steps"][-1] == "conv1"
        for method in randomization.METHODS:
            rank = np.asarray(result["methods"][method]["rank"])
            assert len(rank) == len(result["steps"]) and np.all((rank >= -1) & (rank <= 1))
            low, high = result["methods"][method]["rank_low"], result["methods"][method]["rank_high"]
            assert all(lo <= r <= hi for lo, r, hi in zip(low, rank, high, strict=True))
        # the gradient depends on the output layer's weights: re-drawing them changes its pictures
        assert result["methods"]["gradient"]["rank"][0] < 0.99
    assert 'id="figure-randomization"' in html and "Adebayo" in html


def test_with_the_output_layer_redrawn_guided_backprop_stays_and_the_gradient_changes(tiny_site: BuiltSite) -> None:
    """Adebayo et al.'s finding, as the tiny build measured it on both its trained models: once the
    weights that decide the class are random, guided backprop's pictures stay nearly the trained
    network's while the plain gradient's move away, clearly enough (disjoint intervals) for
    guided_fails, which chooses the atlas's pictures. A test that re-drew nothing would see 1 and 1."""
    for checked in tiny_site.stages("randomization"):
        result = json.loads(checked.file("randomization.json").read_text())
        guided, gradient = result["methods"]["guided"], result["methods"]["gradient"]
        assert guided["rank"][0] > 0.9 and gradient["rank"][0] < guided["rank"][0], (guided, gradient)
        # clearly: the gradient's 95% interval lies wholly below guided backprop's
        assert randomization.guided_fails(result), (guided, gradient)
