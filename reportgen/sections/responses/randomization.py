"""The cascading randomization test of Adebayo et al. (2018, "Sanity checks for saliency maps"): a
saliency method that explains what a network learned must change when the network's weights are
replaced by random ones. The weights are re-drawn layer by layer from the output down, and after each
step every test image's saliency map for its class unit is compared with the trained network's.
Guided backpropagation is known to fail it (its maps stay close to the trained ones: they show the
input's edges); the plain gradient passes. Both run on the same images, so the post can say which
the atlas's pictures should be read as.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import nn

from reportgen.nets.layers import UnitLayer
from reportgen.sections.responses.recording import guided_backprop
from reportgen.stats import rank_correlation

METHODS = ("guided", "gradient")


@dataclass(frozen=True)
class Cascade:
    """Similarity to the trained network's maps after each randomization step, per method and row."""

    steps: list[str]                  # the layers randomized at each step, cumulatively from the output
    rank: dict[str, np.ndarray]       # method -> (steps, rows) Spearman correlation of |saliency|
    ssim: dict[str, np.ndarray]       # method -> (steps, rows) structural similarity of the |saliency| maps


def saliency(model: nn.Module, x: torch.Tensor, path: str, channels: Sequence[int], method: str) -> np.ndarray:
    """(rows, H, W) |saliency| summed over colour channels: guided backpropagation or the plain
    gradient of each row's unit (an FC or output unit, or a channel's spatial maximum)."""
    maps = guided_backprop(model, x, path, list(channels), None, mode=method)
    return np.abs(maps).sum(axis=1)


@contextmanager
def randomized(network: nn.Module, layers: Sequence[UnitLayer], count: int, seed: int) -> Iterator[nn.Module]:
    """`network` with the parameters of its last `count` unit layers re-drawn at random while the block
    runs, each tensor from a normal distribution of its own trained mean and standard deviation (so
    activations keep their scale), seeded and drawn from the output layer down, so a layer gets the
    same random weights at every step of a cascade; the trained weights are put back afterwards. In
    place rather than on a copy: a rebuilt TorchScript network cannot be copied."""
    saved = {name: p.detach().clone() for name, p in network.named_parameters()}
    generator = torch.Generator().manual_seed(seed)
    try:
        with torch.no_grad():
            for layer in reversed(list(layers)[len(layers) - count:]):
                for p in _owner(network, layer.path).parameters():
                    std = float(p.std()) if p.numel() > 1 else 0.0
                    if std > 0:
                        p.copy_(torch.randn(p.shape, generator=generator).to(p) * std + p.mean())
        yield network
    finally:
        with torch.no_grad():
            for name, p in network.named_parameters():
                p.copy_(saved[name])


def _owner(network: nn.Module, path: str) -> nn.Module:
    """The module holding a unit layer's weights: the module at `path`, or (for a layer named by a part
    without weights, such as our blocks' 'conv1.relu') the nearest enclosing module that has some."""
    while True:
        module = network.get_submodule(path)
        if any(True for _ in module.parameters()) or "." not in path:
            return module
        path = path.rpartition(".")[0]


def cascade(network: nn.Module, layers: Sequence[UnitLayer], x: torch.Tensor, channels: Sequence[int],
            seed: int = 0) -> Cascade:
    """Randomize `layers` from the last (the output layer, whose units `channels` are) down to the
    first, one more at each step, and compare each row's saliency with the trained network's."""
    target = layers[-1].path
    trained = {m: saliency(network, x, target, channels, m) for m in METHODS}
    rank = {m: [] for m in METHODS}
    ssim = {m: [] for m in METHODS}
    for count in range(1, len(layers) + 1):
        with randomized(network, layers, count, seed) as random:
            for m in METHODS:
                maps = saliency(random, x, target, channels, m)
                rank[m].append(rank_correlation(trained[m].reshape(len(x), -1), maps.reshape(len(x), -1)))
                ssim[m].append(np.array([_ssim(a, b) for a, b in zip(trained[m], maps, strict=True)]))
    return Cascade([layer.name for layer in reversed(layers)], {m: np.stack(v) for m, v in rank.items()},
                   {m: np.stack(v) for m, v in ssim.items()})


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two saliency maps, each scaled to its own maximum (a zero map stays zero)."""
    a = a / a.max() if a.max() > 0 else a
    b = b / b.max() if b.max() > 0 else b
    side = min(a.shape)
    window = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(a, b, data_range=1.0, win_size=max(window, 3)))


def guided_fails(result: dict[str, Any]) -> bool:
    """Adebayo et al.'s failure, read from randomization.json: with the output layer randomized, guided
    backprop's pictures stay clearly closer to the trained network's than the gradient's (its interval
    lies wholly above the gradient's). False when the test had no images."""
    methods = result.get("methods") or {}
    if not result.get("steps") or not {"guided", "gradient"} <= methods.keys():
        return False
    low, high = methods["guided"]["rank_low"][0], methods["gradient"]["rank_high"][0]
    return low is not None and high is not None and low > high
