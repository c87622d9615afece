"""Hooks that capture and stop, always removed, and eval mode restored, on any nn.Module."""

import pytest
import torch
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.optvis.hooks import HookError, capture, eval_mode, forward_to


def _model(arch: str, channels: int = 1, size: int = 16) -> nn.Module:
    return create_model(arch, in_channels=channels, image_size=size, num_classes=10, width=0.125).eval()


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
    with pytest.raises(HookError, match="no module 'conv9'"):
        forward_to(model, torch.randn(1, 1, 16, 16), ["conv9"])
    assert ran == [] and sum(len(m._forward_hooks) for m in model.modules()) == 1  # only the test's own hook


def test_eval_mode_restores_each_modules_own_mode_even_on_errors() -> None:
    model = _model("model1").train()
    model.conv1.eval()  # a frozen part stays frozen
    with pytest.raises(RuntimeError), eval_mode(model):
        assert not any(m.training for m in model.modules())
        raise RuntimeError
    assert model.training and not model.conv1.training and model.conv2.training
