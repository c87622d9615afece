"""Sprite sheets: one image file per layer (or per atlas page) holding many small tiles.

They are saved as lossless WebP: every browser the site targets shows it (in <img> and in SVG
<image>), the pixels are exactly the PNG's, and the sheets of crops and guided-backprop images that
dominate an atlas page's weight are 3.3x smaller (Model I's conv4 crops: 1.25 MB as PNG, 378 kB as
WebP), so a page reaches its largest paint sooner on a slow connection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SUFFIX = ".webp"


def save_sheet(image: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) or (H, W, 1) uint8 sheet losslessly; grey sheets stay one channel."""
    array = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    # method 4 of 0-6 is Pillow's default; 6 saved nothing more on these sheets
    Image.fromarray(array).save(path.with_suffix(SUFFIX), format="WEBP", lossless=True, method=4)
