"""Text drawn into pictures: one font, names shown literally (control characters escaped) and cut
with an ellipsis to fit their room, whatever a config or folder name contains."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reportgen.drawing.colors import BACKGROUND, TEXT


@lru_cache(maxsize=4)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at `size` pixels (bundled with Pillow, so every machine draws the same glyphs)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def printable(text: str) -> str:
    """The text with control and format characters shown as escapes, so one line stays one line."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
                   else ch for ch in str(text))


def fit(text: str, width: int, size: int = 11) -> str:
    """`printable(text)`, cut with an ellipsis so it is at most `width` pixels wide."""
    face, text = font(size), printable(text)
    if face.getlength(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if face.getlength(text[:mid] + "…") <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…"


def text_sprite(text: str, width: int, height: int, color: tuple[int, int, int] = TEXT, size: int = 11,
                background: tuple[int, int, int] = BACKGROUND, align: str = "left") -> np.ndarray:
    """uint8 (height, width, 3) image of one line of text, fitted to `width`."""
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    line = fit(text, width, size)
    x = width - font(size).getlength(line) if align == "right" else 0
    draw.text((x, height / 2), line, fill=color, font=font(size), anchor="lm")
    return np.asarray(image)
