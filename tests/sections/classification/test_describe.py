"""Architecture facts read off the network itself: what follows each layer, which layers have a bias."""

import pytest

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import describe_layers
from reportgen.sections.classification.describe import structure
from reportgen.sections.classification.present import _architecture


def facts(arch: str) -> list[dict]:
    net = create_model(arch, in_channels=1, image_size=16, num_classes=10, width=0.125, dropout=0.4)
    return structure(net, describe_layers(net, (1, 16, 16)))


def test_model_two_has_no_bias_but_in_its_output_layer_which_nothing_follows() -> None:
    layers = {layer["name"]: layer for layer in facts("model2")}
    assert list(layers) == ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "fc5", "fc6", "fc7"]
    assert [name for name, layer in layers.items() if layer["bias"]] == ["fc7"]
    assert layers["conv1"]["after"] == ["bn", "relu"] and layers["conv1"]["dropout"] is None
    assert layers["conv3a"]["after"] == ["bn", "relu", "dropout"] and layers["conv3a"]["dropout"] == pytest.approx(0.2)
    assert layers["fc5"]["dropout"] == pytest.approx(0.4)
    assert layers["fc7"]["after"] == [] and layers["fc7"]["params"] == layers["fc7"]["in"] * 10 + 10
    assert [name for name, layer in layers.items() if layer["pool"]] == ["conv1", "conv2", "conv3b", "conv4b"]


def test_prose_groups_runs_of_layers_followed_by_the_same_operations() -> None:
    a = _architecture(facts("model2"))
    assert [run["names"] for run in a["runs"]] == [["conv1", "conv2"], ["conv3a", "conv3b", "conv4a", "conv4b"],
                                                   ["fc5", "fc6"]]
    assert a["runs"][0]["after"] == ["batch normalization", "a ReLU"]
    assert a["hidden_bias"] == "none" and a["bn_shift"] and a["output"]["bias"] and a["output"]["after"] == []
    assert (a["conv"], a["fc"], a["kernels"]) == (6, 3, ["3×3"])
    model1 = _architecture(facts("model1"))
    assert model1["hidden_bias"] == "all" and not model1["bn_shift"]
    assert [run["names"][0] for run in model1["runs"]] == ["conv1", "fc5"]
    assert model1["runs"][0]["after"] == ["a ReLU", "dropout with p\u00a0=\u00a00.2"]
