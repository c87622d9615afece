"""Colours shared by the drawings: the dark movie palette and matplotlib's 'hot' lookup table."""

from __future__ import annotations

import numpy as np

# the dark background, text and muted text of movie frames and graph pictures
BACKGROUND = (52, 52, 58)
TEXT = (225, 225, 225)
MUTED = (160, 160, 170)


def hot_colormap() -> np.ndarray:
    """(256, 3) uint8 lookup table of matplotlib's 'hot' (black, red, yellow, white), from its segment data
    so drawing a frame needs no matplotlib import."""
    x = np.linspace(0, 1, 256)
    red = np.interp(x, [0, 0.365079, 1], [0.0416, 1, 1])
    green = np.interp(x, [0, 0.365079, 0.746032, 1], [0, 0, 1, 1])
    blue = np.interp(x, [0, 0.746032, 1], [0, 0, 1])
    return np.round(np.stack([red, green, blue], axis=1) * 255).astype(np.uint8)
