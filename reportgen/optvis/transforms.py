"""Random transforms applied to the image before each forward pass, drawn per batch row.

Each row owns its own `torch.Generator`, so a unit's jitter sequence depends only on that row's
seed and never on which other units share the batch (Lucent draws one transform for the whole batch).
"""

from __future__ import annotations

import torch


def draw_shifts(generator: torch.Generator, steps: int, max_shift: int) -> torch.Tensor:
    """(steps, 2) integer (dy, dx) translations, uniform in [-max_shift, max_shift], from one row's generator."""
    if max_shift <= 0:
        return torch.zeros(steps, 2, dtype=torch.long)
    return torch.randint(-max_shift, max_shift + 1, (steps, 2), generator=generator)


def roll_rows(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Circularly translate row i of an (N, C, H, W) batch by shifts[i] = (dy, dx); differentiable.

    One gather for the whole batch instead of a `torch.roll` per row; wrapping (rather than padding)
    keeps every pixel in view so each one keeps receiving gradient.
    """
    n, c, h, w = x.shape
    shifts = shifts.to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] - shifts[:, :1]) % h  # (N, H)
    cols = (torch.arange(w, device=x.device)[None, :] - shifts[:, 1:]) % w  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
