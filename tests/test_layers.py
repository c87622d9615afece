"""Layer introspection: unit layers by human name, hooks that capture and stop, for ours and torchvision's."""

import pytest
import torch
from torch import nn

from reportgen.layers import LayerError, capture, find_layer, forward_to, unit_layers
from reportgen.models import create_model


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


def test_capture_equals_a_manual_forward_and_hooks_are_removed() -> None:
    model = _model("model1")
    x = torch.randn(3, 1, 16, 16)
    with capture(model, ["conv2.relu", "fc5.relu"]) as outputs:
        logits = model(x)
    manual = model.fc5(model.flatten(model.conv4(model.conv3(model.conv2(model.conv1(x))))))
    assert torch.allclose(outputs["fc5.relu"], manual) and torch.allclose(logits, model.fc7(model.fc6(manual)))
    assert all(not m._forward_hooks for m in model.modules())


def test_forward_to_stops_at_the_target_layer() -> None:
    model = _model("model1")
    ran: list[str] = []
    model.fc6.register_forward_hook(lambda *_: ran.append("fc6"))
    out = forward_to(model, torch.randn(2, 1, 16, 16), ["conv1.relu"])
    assert list(out) == ["conv1.relu"] and out["conv1.relu"].requires_grad and ran == []
    with pytest.raises(LayerError, match="no module 'conv9'"):
        forward_to(model, torch.randn(1, 1, 16, 16), ["conv9"])
    assert ran == [] and sum(len(m._forward_hooks) for m in model.modules()) == 1  # only the test's own hook
