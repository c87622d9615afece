"""Layer introspection: unit layers by human name, for ours and torchvision's."""

import pytest
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import (
    LayerError,
    default_descriptor_layer,
    default_feature_layer,
    find_layer,
    unit_layers,
)


def _model(arch: str, channels: int = 1, size: int = 16) -> nn.Module:
    return create_model(arch, in_channels=channels, image_size=size, num_classes=10, width=0.125).eval()


def test_our_models_expose_the_write_ups_layer_names_with_unit_counts() -> None:
    layers = unit_layers(_model("model2"), (1, 16, 16))
    assert [la.name for la in layers] == ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "fc5", "fc6",
                                          "fc7"]
    assert layers[0].path == "conv1.relu" and layers[0].shape == (8, 16, 16) and layers[0].units == 8
    assert layers[-1].path == "fc7.linear" and layers[-1].kind == "fc" and layers[-1].units == 10
    assert [la.kind for la in layers].count("conv") == 6


def test_other_networks_are_enumerated_by_their_top_level_blocks() -> None:
    model = _model("torchvision:resnet18", channels=3, size=32)
    layers = unit_layers(model, (3, 32, 32))
    assert [la.name for la in layers] == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert find_layer(layers, "layer1").shape == (64, 8, 8) and layers[-1].kind == "fc" and layers[-1].units == 10
    with pytest.raises(LayerError, match="unknown layer 'fc9'.*known: conv1"):
        find_layer(layers, "fc9")
    # a features container of many blocks is opened one level; a short classifier head is one block
    mobile = unit_layers(_model("torchvision:mobilenet_v3_small", channels=3, size=32), (3, 32, 32))
    assert [la.name for la in mobile] == [f"features.{i}" for i in range(13)] + ["classifier"]
    # in a plain stack of convolutions and activations, a unit is what the next layer sees: after the ReLU
    vgg = unit_layers(_model("torchvision:vgg11", channels=3, size=32), (3, 32, 32))
    assert (vgg[0].name, vgg[0].path, vgg[0].kind) == ("features.0", "features.1", "conv")
    # gray input through the RGB wrapper: the same blocks, under the wrapper's path
    gray = unit_layers(_model("torchvision:resnet18", channels=1, size=32), (1, 32, 32))
    assert [la.path for la in gray][:2] == ["net.conv1", "net.layer1"]


def test_default_layers_fit_any_network() -> None:
    ours = unit_layers(_model("model1"), (1, 16, 16))
    assert default_feature_layer(ours).name == "conv2" and default_descriptor_layer(ours).name == "fc5"
    resnet = unit_layers(_model("torchvision:resnet18", channels=3, size=32), (3, 32, 32))
    assert default_feature_layer(resnet).name == "layer1" and default_descriptor_layer(resnet).name == "layer4"
