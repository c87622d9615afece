"""What gradient ascent raises: per-row scores computed from recorded layer outputs.

An `Objective` maps (layer outputs by module path, input image) to one score per batch row and
names the module paths it reads, so the forward pass can stop once they exist. Objectives combine
with `+`, `-` and `*` (by a number or another objective), row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Outputs = dict[str, torch.Tensor]
REDUCTIONS = ("center", "mean", "max")


@dataclass(frozen=True, order=True)
class Unit:
    """One unit: a module path whose output holds it and its index there (conv channel or FC feature)."""

    path: str
    index: int


class Objective:
    """A per-row score of a batch: `objective(outputs, image)` is a tensor of shape (N,)."""

    def __init__(self, fn: Callable[[Outputs, torch.Tensor], torch.Tensor], paths: frozenset[str] = frozenset(),
                 name: str = "objective") -> None:
        self.fn = fn
        self.paths = frozenset(paths)
        self.name = name

    def __call__(self, outputs: Outputs, image: torch.Tensor) -> torch.Tensor:
        return self.fn(outputs, image)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def __add__(self, other: Objective | float) -> Objective:
        if isinstance(other, Objective):
            return Objective(lambda o, x: self(o, x) + other(o, x), self.paths | other.paths,
                             f"{self.name} + {other.name}")
        return Objective(lambda o, x: self(o, x) + other, self.paths, f"{self.name} + {other:g}")

    __radd__ = __add__  # lets sum([...]) start from 0

    def __mul__(self, other: Objective | float) -> Objective:
        if isinstance(other, Objective):
            return Objective(lambda o, x: self(o, x) * other(o, x), self.paths | other.paths,
                             f"({self.name}) * ({other.name})")
        return Objective(lambda o, x: self(o, x) * other, self.paths, f"{other:g} * ({self.name})")

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)


def unit_activation(output: torch.Tensor, channels: torch.Tensor, reduce: str = "center",
                    center: tuple[int, int] | None = None) -> torch.Tensor:
    """Row i's activation of unit channels[i] in a layer output of shape (N, C, H, W) or (N, F).

    For conv channels `reduce` picks the centre neuron ('center', at H//2, W//2, or at `center` for an
    output computed from a crop of the image), the spatial mean ('mean') or the spatial maximum
    ('max'); an FC feature is its own value whatever `reduce` says.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}; known: {', '.join(REDUCTIONS)}")
    rows = torch.arange(output.shape[0], device=output.device)
    picked = output[rows, channels.to(output.device)]
    if picked.dim() == 1:
        return picked
    if reduce == "center":
        if picked.dim() == 3:
            row, col = center or (picked.shape[1] // 2, picked.shape[2] // 2)
            return picked[:, row, col]
        return picked.reshape(len(rows), -1)[:, picked[0].numel() // 2]
    spatial = picked.reshape(len(rows), -1)
    return spatial.mean(dim=1) if reduce == "mean" else spatial.amax(dim=1)


def units(rows: Sequence[Unit], reduce: str = "center", center: tuple[int, int] | None = None) -> Objective:
    """Row i scores the activation of rows[i]; rows may come from different layers (`center`: where
    the centre neuron is, for rows of one layer run on a crop of the image)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}; known: {', '.join(REDUCTIONS)}")
    groups: dict[str, list[int]] = {}
    for i, unit in enumerate(rows):
        groups.setdefault(unit.path, []).append(i)
    order = torch.tensor([i for members in groups.values() for i in members], dtype=torch.long)
    back = torch.empty_like(order)
    back[order] = torch.arange(len(order))
    channels = {path: torch.tensor([rows[i].index for i in members]) for path, members in groups.items()}
    members_t = {path: torch.tensor(members) for path, members in groups.items()}

    def score(outputs: Outputs, _image: torch.Tensor) -> torch.Tensor:
        parts = []
        for path in groups:
            output = outputs[path]
            mine = output if len(groups) == 1 else output[members_t[path].to(output.device)]
            parts.append(unit_activation(mine, channels[path], reduce, center))
        return torch.cat(parts)[back.to(parts[0].device)]

    return Objective(score, frozenset(groups), f"units({len(rows)}, {reduce})")


def image_l2(weight: float = 1.0) -> Objective:
    """Minus `weight` times each row's mean squared pixel: the R(x) = ||x||^2 prior as a penalty term."""
    return Objective(lambda _o, x: -weight * x.pow(2).flatten(1).mean(dim=1), frozenset(), f"-{weight:g} * l2")
