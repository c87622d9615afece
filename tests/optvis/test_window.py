"""Receptive-field windows: the network run on the crop a centre neuron sees gives the whole image's
ascent, and a network where the crop would change the answer keeps the whole image."""

import pytest
import torch
import torchvision
from torch import nn

from reportgen.nets.layers import receptive_box, receptive_fields, unit_layers
from reportgen.optvis import Settings, Unit, center_window, render
from reportgen.optvis.window import MOST_AREA
from reportgen.sections.preferred.compute import receptive_windows

pytestmark = pytest.mark.usefixtures("one_thread")
SHAPE = (3, 64, 64)


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=5).eval()


def test_early_blocks_of_a_resnet_get_windows_and_late_ones_the_whole_image(resnet: nn.Module) -> None:
    layers = unit_layers(resnet, SHAPE, [])
    windows = receptive_windows(resnet, layers, receptive_fields(resnet, SHAPE), SHAPE)
    assert sorted(windows) == ["conv1", "layer1"]  # layer2's centre neuron sees most of a 64x64 image
    window = windows["layer1"]
    # the crop starts on layer1's stride (4) and holds the receptive field of the centre neuron
    field = receptive_fields(resnet, SHAPE)["layer1"]
    top, left, bottom, right = receptive_box(field, (8, 8), SHAPE[1:])
    assert window.top % 4 == 0 and window.top <= top and (window.bottom, window.right) == (bottom, right)
    assert (bottom - window.top) * (right - window.left) <= MOST_AREA * SHAPE[1] * SHAPE[2]


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_an_ascent_on_the_window_equals_the_whole_image_ascent(resnet: nn.Module, param: str) -> None:
    layers = unit_layers(resnet, SHAPE, [])
    windows = receptive_windows(resnet, layers, receptive_fields(resnet, SHAPE), SHAPE)
    settings = Settings(steps=6, param=param, jitter=2, norm_clip_pct=5, blur_every=2)
    chosen = [Unit("layer1", i) for i in (0, 7, 33)] + [Unit("layer3", 5)]
    whole = render(resnet, chosen, SHAPE, mean=0.5, std=0.25, settings=settings)
    cropped = render(resnet, chosen, SHAPE, mean=0.5, std=0.25, settings=settings, windows=windows)
    w = windows["layer1"]
    inside = (slice(None), slice(None), slice(w.top, w.bottom), slice(w.left, w.right))
    torch.testing.assert_close(cropped.images[:3][inside], whole.images[:3][inside], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cropped.images[3], whole.images[3], atol=1e-4, rtol=1e-4)  # no window
    for a, b in zip(cropped.records, whole.records, strict=True):
        assert a.start == pytest.approx(b.start, rel=1e-4, abs=1e-5)
        assert a.reached == pytest.approx(b.reached, rel=1e-4, abs=1e-5)


class _GlobalGate(nn.Module):
    """A squeeze-excitation-like gate: every position scaled by the map's global mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))


class _SizeBound(nn.Module):
    """A network whose forward insists on its input size, as a hard-coded reshape would."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != SHAPE[-1]:
            raise RuntimeError("expected 64x64 input")
        return self.conv(x)


@pytest.mark.parametrize("net", [nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _GlobalGate()), _SizeBound()],
                         ids=["global-gate", "size-bound"])
def test_a_network_the_crop_would_change_keeps_the_whole_image(net: nn.Module) -> None:
    path = "1" if isinstance(net, nn.Sequential) else "conv"
    # a 3x3 receptive field at the centre: a tiny crop, if the crop computed the same
    assert center_window(net, path, SHAPE, (31, 31, 34, 34), (1.0, 1.0)) is None
    assert center_window(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), "0", SHAPE, (31, 31, 34, 34),
                         (1.0, 1.0)) is not None
