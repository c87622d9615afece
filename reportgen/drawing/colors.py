"""Colours shared by the drawings: the dark movie palette and matplotlib's 'hot' lookup table."""

from __future__ import annotations

import numpy as np

# the dark background, text and muted text of movie frames and graph pictures
BACKGROUND = (52, 52, 58)
TEXT = (225, 225, 225)
MUTED = (160, 160, 170)


def hot_colormap() -> np.ndarray:
    """(256, 3) uint8 lookup table of matplotlib's 'hot' (black, red, yellow, white)."""
    from matplotlib import colormaps  # the colormap registry only, not pyplot: cheap to import

    return np.round(colormaps["hot"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
