"""Receptive-field windows: the crop of the input that a conv channel's centre neuron sees.

The centre neuron of an early layer sees a small part of the image (a ResNet-18's layer1 ~ 43x43 of
224x224), so gradient ascent on it need only run the network on that crop: the image, its
parameterization, jitter and regularizers stay whole (they are cheap), and each step slices the
window out of the jittered image before the forward pass. Pixels outside the window get no gradient
either way, so the result is the full-image ascent's, up to float rounding, at a fraction of the cost.
A window is used only after checking, on random images, that the network computes the same centre
activations from the crop as from the whole image; an architecture where it does not (a global
pooling inside a block, a forward that insists on its input size) keeps the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reportgen.optvis.hooks import eval_mode, forward_to

# a window must cut the network's work at least this much to be worth a second code path
MOST_AREA = 0.6


@dataclass(frozen=True)
class Window:
    """Rows top:bottom and columns left:right of the input (bottom/right exclusive), and where the
    full image's centre neuron sits in the output map the network computes from that crop."""

    top: int
    left: int
    bottom: int
    right: int
    row: int
    col: int

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top:self.bottom, self.left:self.right]


def center_window(model: nn.Module, path: str, input_shape: tuple[int, int, int],
                  box: tuple[int, int, int, int], jump: tuple[float, float]) -> Window | None:
    """The window for the centre neuron of the conv layer at `path`, whose receptive field is `box`
    (top, left, bottom, right, clipped to the image) with cumulative stride `jump`; None when the
    crop would not save enough or does not reproduce the full image's centre activations."""
    height, width = input_shape[1:]
    strides = [int(j) for j in jump]
    if any(s != j or s < 1 for s, j in zip(strides, jump, strict=True)):
        return None
    # start on a multiple of the cumulative stride, so every layer's grid on the crop lines up with
    # its grid on the whole image (then neuron k of the crop is neuron k + offset / stride)
    top, left = box[0] // strides[0] * strides[0], box[1] // strides[1] * strides[1]
    bottom, right = box[2], box[3]
    if (bottom - top) * (right - left) > MOST_AREA * height * width:
        return None
    generator = torch.Generator().manual_seed(0)
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32
    x = torch.randn(2, *input_shape, generator=generator).to(device=device, dtype=dtype)
    with eval_mode(model):
        full = forward_to(model, x, [path], grad=False)[path]
        if full.dim() != 4:
            return None
        rows, cols = full.shape[2:]
        window = Window(top, left, bottom, right, rows // 2 - top // strides[0], cols // 2 - left // strides[1])
        try:
            part = forward_to(model, window.crop(x), [path], grad=False)[path]
        except Exception:  # a network may refuse another input size, with any exception type
            return None
    if part.dim() != 4 or not (0 <= window.row < part.shape[2] and 0 <= window.col < part.shape[3]):
        return None
    want, got = full[:, :, rows // 2, cols // 2], part[:, :, window.row, window.col]
    scale = float(want.abs().max()) or 1.0
    return window if torch.allclose(got, want, rtol=1e-4, atol=1e-5 * scale) else None
