"""Layer introspection: unit layers by human name, for ours and torchvision's."""

import pytest
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import LayerError, find_layer, unit_layers


def _model(arch: str, channels: int = 1, size: int = 16) -> nn.Module:
    return create_model(arch, in_channels=channels, image_size=size, num_classes=10, width=0.125).eval()


def test_our_models_expose_the_write_ups_layer_names_with_unit_counts() -> None:
    layers = unit_layers(_model("model2"), (1, 16, 16))
    assert [la.name for la in layers] == ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "fc5", "fc6",
                                          "fc7"]
    assert layers[0].path == "conv1.relu" and layers[0].shape == (8, 16, 16) and layers[0].units == 8
    assert layers[-1].path == "fc7.linear" and layers[-1].kind == "fc" and layers[-1].units == 10
    assert [la.kind for la in layers].count("conv") == 6


def test_torchvision_models_are_enumerated_by_module_path() -> None:
    model = _model("torchvision:resnet18", channels=3, size=32)
    layers = unit_layers(model, (3, 32, 32))
    assert layers[0].name == "conv1" and layers[-1].name == "fc" and layers[-1].units == 10
    assert find_layer(layers, "layer1.0.conv1").shape == (64, 8, 8)
    with pytest.raises(LayerError, match="unknown layer 'fc9'.*known: conv1"):
        find_layer(layers, "fc9")
