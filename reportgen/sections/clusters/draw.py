"""Pictures of an image map: class palette, thumbnail sprite sheets, the big map PNGs and the
nearest-neighbour figure, plus the data the zoomable viewer page inlines.

Drawing only (numpy and Pillow): everything here works from arrays `compute.py` computed, so a
colour change never re-runs a network. Text is drawn with Pillow, which draws class names literally
(no markup or math parsing of `$`, `_` or `<`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from reportgen.drawing.text import fit, font

# The ten Tableau 10 colours first (familiar, colour-blind aware), then colours chosen greedily to be
# as far as possible in CIELAB from all before them, so 20 classes stay distinguishable.
_TABLEAU10 = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
              (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_BACKGROUND = (255, 255, 255)
_TEXT = (34, 34, 34)
_MUTED = (110, 110, 110)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in 0-255 -> CIELAB (D65), by scikit-image."""
    from skimage.color import rgb2lab  # imported here: only palettes beyond ten classes need it

    return rgb2lab(np.asarray(rgb, dtype=float).reshape(-1, 1, 3) / 255.0).reshape(np.shape(rgb))


@lru_cache(maxsize=8)
def palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """`n` class colours (RGB), distinguishable from each other and from a white page up to about 20."""
    chosen = [np.array(c, dtype=float) for c in _TABLEAU10[:n]]
    if n > len(chosen):
        levels = np.linspace(0, 255, 7)
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
        lab = _lab(grid)
        # readable borders on white: not too light, not grey
        usable = (lab[:, 0] < 85) & (np.hypot(lab[:, 1], lab[:, 2]) > 25)
        grid, lab = grid[usable], lab[usable]
        nearest = np.min(np.linalg.norm(lab[:, None] - _lab(np.array(chosen))[None], axis=-1), 1)
        while len(chosen) < n:
            pick = int(np.argmax(nearest))
            chosen.append(grid[pick])
            nearest = np.minimum(nearest, np.linalg.norm(lab - lab[pick], axis=-1))
    return tuple(tuple(int(round(v)) for v in c) for c in chosen)


def hex_colors(n: int) -> list[str]:
    """`palette(n)` as CSS hex strings."""
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in palette(n)]


def _rgb(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC with 1 or 3 channels (or NHW) -> uint8 NHW3."""
    if images.ndim == 3:
        images = images[..., None]
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def thumbnails(images: np.ndarray, labels: np.ndarray, size: int, num_classes: int | None = None,
               border: int | None = None) -> np.ndarray:
    """uint8 (N, size, size, 3): each image resized into a square with a border in its class colour."""
    images = _rgb(np.asarray(images))
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1 if num_classes is None and len(labels) else (num_classes or 1)
    colors = np.array(palette(num_classes), dtype=np.uint8)
    border = max(1, size // 16) if border is None else border
    inner = max(1, size - 2 * border)
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    out[:] = colors[labels][:, None, None, :]
    h, w = images.shape[1:3]
    # upscaling small images (16-28 px) stays crisp with bilinear; downscaling needs an area filter
    method = Image.Resampling.BILINEAR if inner >= max(h, w) else Image.Resampling.BOX
    for i, image in enumerate(images):
        small = image if (h, w) == (inner, inner) else np.asarray(Image.fromarray(image).resize((inner, inner), method))
        out[i, border:border + inner, border:border + inner] = small
    return out


@dataclass(frozen=True)
class SpriteSheets:
    """Where thumbnail i lies: sheet i // per_sheet, then row-major in a grid `cols` thumbnails wide."""

    files: tuple[str, ...]
    thumb: int
    cols: int
    per_sheet: int
    count: int

    def position(self, i: int) -> tuple[int, int, int]:
        """(sheet, x, y) in pixels of thumbnail `i`'s top-left corner."""
        sheet, j = divmod(i, self.per_sheet)
        row, col = divmod(j, self.cols)
        return sheet, col * self.thumb, row * self.thumb

    def to_json(self, prefix: str = "") -> dict[str, Any]:
        """The viewer's sprite description; `prefix` is the folder of the sheets relative to the page."""
        return {"files": [prefix + f for f in self.files], "thumb": self.thumb, "cols": self.cols,
                "per_sheet": self.per_sheet, "count": self.count}


def sprite_layout(count: int, thumb: int, max_side: int = 4096) -> tuple[int, int]:
    """(cols, per_sheet): sheets at most `max_side` px a side (larger images strain browsers' memory)."""
    cols = max(1, min(max_side // thumb, math.ceil(math.sqrt(max(count, 1)))))
    rows = max(1, max_side // thumb)
    return cols, cols * rows


def write_sprites(thumbs: np.ndarray, folder: Path, name: str = "sprites", max_side: int = 4096) -> SpriteSheets:
    """Write `thumbs` (N, t, t, 3) as PNG sheets `<name>-<k>.png` into `folder`; return their geometry."""
    count, thumb = len(thumbs), thumbs.shape[1]
    cols, per_sheet = sprite_layout(count, thumb, max_side)
    folder.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    for sheet, start in enumerate(range(0, max(count, 1), per_sheet)):
        part = thumbs[start:start + per_sheet]
        rows = max(1, math.ceil(len(part) / cols))
        canvas = np.full((rows * cols, thumb, thumb, 3), 255, dtype=np.uint8)
        canvas[:len(part)] = part
        # (rows*cols, t, t, 3) -> (rows*t, cols*t, 3): thumbnails row-major
        canvas = canvas.reshape(rows, cols, thumb, thumb, 3).transpose(0, 2, 1, 3, 4).reshape(rows * thumb,
                                                                                            cols * thumb, 3)
        filename = f"{name}-{sheet}.png"
        Image.fromarray(canvas).save(folder / filename, optimize=False, compress_level=6)
        files.append(filename)
    return SpriteSheets(tuple(files), thumb, cols, per_sheet, count)


def _unit(xy: np.ndarray) -> np.ndarray:
    """Points scaled into [0, 1] on both axes (the map's bounding box)."""
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) == 0:
        return xy.reshape(0, 2)
    lo, hi = xy.min(0), xy.max(0)
    return (xy - lo) / np.where(hi > lo, hi - lo, 1.0)


def draw_placed_map(images: np.ndarray, labels: np.ndarray, xy: np.ndarray, side: int = 4096,
                    thumb: int | None = None, num_classes: int | None = None) -> Image.Image:
    """Square map: every image's thumbnail at its t-SNE position (later images on top)."""
    n = len(images)
    thumb = thumb or max(8, min(64, side // max(1, math.ceil(math.sqrt(n)))))
    thumbs = thumbnails(images, labels, thumb, num_classes)
    canvas = Image.new("RGB", (side, side), _BACKGROUND)
    corners = np.round(_unit(xy) * (side - thumb)).astype(int)
    for (x, y), t in zip(corners, thumbs, strict=True):
        canvas.paste(Image.fromarray(t), (int(x), int(y)))
    return canvas


def draw_grid_map(images: np.ndarray, labels: np.ndarray, cells: np.ndarray, rows: int, cols: int,
                  max_side: int = 4096, num_classes: int | None = None) -> Image.Image:
    """The grid-snapped map: image i's thumbnail in cell `cells[i]` (row-major) of a rows x cols grid."""
    cell = max(4, min(64, max_side // max(rows, cols)))
    thumbs = thumbnails(images, labels, cell, num_classes)
    canvas = np.full((rows * cell, cols * cell, 3), 255, dtype=np.uint8)
    r, c = np.divmod(np.asarray(cells, dtype=np.int64), cols)
    for i in range(len(thumbs)):
        canvas[r[i] * cell:(r[i] + 1) * cell, c[i] * cell:(c[i] + 1) * cell] = thumbs[i]
    return Image.fromarray(canvas)


def _distance(value: float) -> str:
    """A distance short enough for a thumbnail's width, without exponent notation: 1172, 41.3, 0.0521."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def draw_neighbours(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], queries: np.ndarray,
                    indices: np.ndarray, distances: np.ndarray, predictions: np.ndarray | None = None,
                    thumb: int = 64) -> Image.Image:
    """A row per query: the query image, then its nearest neighbours with class name and distance."""
    labels = np.asarray(labels)
    k = indices.shape[1] if indices.ndim == 2 else 0
    num_classes = len(class_names)
    thumbs = thumbnails(images[np.concatenate([queries, indices.ravel()]).astype(np.int64)],
                        labels[np.concatenate([queries, indices.ravel()]).astype(np.int64)], thumb, num_classes)
    size = max(9, thumb // 6)
    face = font(size)
    line = int(size * 1.3)
    pad, gap = 6, thumb // 3
    cell_w = thumb + pad
    row_h = thumb + 2 * line + pad * 2
    width = pad + cell_w + gap + k * cell_w
    canvas = Image.new("RGB", (width, max(1, len(queries)) * row_h), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    colors = palette(num_classes)
    q_count = len(queries)
    for row, q in enumerate(queries):
        top = row * row_h + pad
        canvas.paste(Image.fromarray(thumbs[row]), (pad, top))
        name = class_names[int(labels[q])]
        draw.text((pad, top + thumb + 2), fit(name, cell_w - 2, size), fill=colors[int(labels[q])], font=face)
        if predictions is not None:
            guess = "pred " + predicted_name(class_names, int(predictions[q]))
            draw.text((pad, top + thumb + 2 + line), fit(guess, cell_w - 2, size),
                      fill=_TEXT if predictions[q] == labels[q] else (200, 0, 0), font=face)
        for j in range(k):
            left = pad + cell_w + gap + j * cell_w
            idx = int(indices[row, j])
            canvas.paste(Image.fromarray(thumbs[q_count + row * k + j]), (left, top))
            draw.text((left, top + thumb + 2), fit(class_names[int(labels[idx])], cell_w - 2, size),
                      fill=colors[int(labels[idx])], font=face)
            distance = "d " + _distance(float(distances[row, j]))
            draw.text((left, top + thumb + 2 + line), distance, fill=_MUTED, font=face)
        draw.line([(pad + cell_w + gap // 2, top), (pad + cell_w + gap // 2, top + thumb)], fill=_MUTED, width=1)
    return canvas


def predicted_name(class_names: Sequence[str], prediction: int) -> str:
    """A prediction's class name; index K (one past the data's classes) is a network's prediction of
    a class the data does not have (`checkpoint.class_probabilities`)."""
    return class_names[prediction] if prediction < len(class_names) else "other"


def page_context(class_names: Sequence[str], labels: np.ndarray, predictions: np.ndarray, confidence: np.ndarray,
                 xy: np.ndarray, cells: np.ndarray, grid: tuple[int, int], sprites: SpriteSheets,
                 neighbours: np.ndarray, distances: np.ndarray, asset_prefix: str = "",
                 description: str = "") -> dict[str, Any]:
    """JSON-able data for templates/imagemap.html (render it as the `imagemap` context variable).

    Arrays are flat lists, one entry per image: `x`, `y` in [0, 1] (t-SNE position in the map's
    bounding box, y down), `cell` (row-major grid cell), `label`, `pred` (class indices), `prob`
    (the predicted class's probability); `predicted` names the values of `pred` (the classes, then
    "other"); `neighbours.index`/`.distance` hold k entries per image, image i's at [i*k, (i+1)*k),
    nearest first, in descriptor space.
    """
    n = len(labels)
    unit = _unit(xy)
    return {
        "description": description,
        "count": n,
        "classes": [str(c) for c in class_names],
        "predicted": [predicted_name(class_names, p) for p in range(len(class_names) + 1)],
        "colors": hex_colors(len(class_names)),
        "x": [round(float(v), 4) for v in unit[:, 0]],
        "y": [round(float(v), 4) for v in unit[:, 1]],
        "cell": [int(v) for v in cells],
        "rows": int(grid[0]),
        "cols": int(grid[1]),
        "label": [int(v) for v in labels],
        "pred": [int(v) for v in predictions],
        "prob": [round(float(v), 3) for v in confidence],
        "sprites": sprites.to_json(asset_prefix),
        "neighbours": {"k": int(neighbours.shape[1]) if neighbours.ndim == 2 else 0,
                       "index": [int(v) for v in np.asarray(neighbours).ravel()],
                       "distance": [float(f"{v:.3g}") for v in np.asarray(distances).ravel()]},
    }


# ---------------------------------------------------------------------------------------------
# The drawing stage of section 4: reads the clusters stage's arrays, never a network

# The post's map images: at most this many pixels a side, which keeps a 1,000-image map near
# 1-2 MB as PNG and still shows 28 px digits at about their own size when opened full size.
MAP_SIDE = 2048
# Thumbnail side of the viewer's sprite sheets: the images' own size plus a 2 px class-coloured
# border on each side, between 24 px (a border must not eat a tiny image) and 64 px.
SPRITE_MIN, SPRITE_MAX = 24, 64
NEIGHBOUR_THUMB = 56
VIEWER_SPRITES = "clusters-viewer"


def clusters_figures_stage(folder: Path, params: dict[str, Any], dataset_art: Any, clusters_art: Any) -> dict[str, Any]:
    """Section 4's pictures: the placed and grid-snapped maps, the nearest-neighbour rows, and the
    viewer's sprite sheets plus its data (viewer.json, sprite files relative to figures/)."""
    from reportgen.nets.data import Dataset  # imported here: the drawing helpers above stay usable without torch

    dataset = Dataset.from_artifact(dataset_art)
    with np.load(clusters_art.file("clusters.npz")) as z:
        arrays = {name: z[name] for name in z.files}
    images, labels = dataset.images[arrays["rows"]], arrays["labels"]
    names, num_classes = dataset.class_names, len(dataset.class_names)
    n = len(labels)
    rows, cols = (int(v) for v in json.loads(clusters_art.file("clusters.json").read_text())["grid"])
    files: dict[str, dict[str, Any]] = {}

    def save(image: Image.Image, name: str) -> None:
        image.save(folder / name, optimize=True)
        files[name] = {"width": image.width, "height": image.height, "bytes": (folder / name).stat().st_size}

    # thumbnails about half the spacing of a uniform spread, so clusters read as clusters, not a carpet
    thumb = max(8, min(64, MAP_SIDE // max(1, 2 * math.ceil(math.sqrt(max(n, 1))))))
    save(draw_placed_map(images, labels, arrays["xy"], side=MAP_SIDE, thumb=thumb, num_classes=num_classes),
         "clusters-map-placed.png")
    save(draw_grid_map(images, labels, arrays["cells"], rows, cols, max_side=MAP_SIDE, num_classes=num_classes),
         "clusters-map-grid.png")
    queries = arrays["queries"]
    save(draw_neighbours(images, labels, names, queries, arrays["neighbours"][queries], arrays["distances"][queries],
                         arrays["predictions"], thumb=NEIGHBOUR_THUMB), "clusters-neighbours.png")
    side = int(np.clip(max(images.shape[1:3], default=0) + 4, SPRITE_MIN, SPRITE_MAX))
    sheets = write_sprites(thumbnails(images, labels, side, num_classes, border=2), folder / VIEWER_SPRITES)
    context = page_context(names, labels, arrays["predictions"], arrays["confidence"], arrays["xy"], arrays["cells"],
                           (rows, cols), sheets, arrays["neighbours"], arrays["distances"],
                           asset_prefix=VIEWER_SPRITES + "/")
    (folder / "viewer.json").write_text(json.dumps(context))
    (folder / "figures.json").write_text(json.dumps(files, indent=1))
    return {"figures": files}
