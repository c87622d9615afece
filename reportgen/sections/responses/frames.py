"""Response-movie frames: the input, its class probabilities and every unit of every layer as a cell.

Everything that does not change between frames (background, title, layer and class names, the
percent labels 0%..100%) is rendered once with Pillow; a frame is then a copy of that background
plus a handful of array operations (one gather for all cells, one for the scaled input, a slice per
bar), so composition costs well under a millisecond for a few thousand units. Names are drawn
literally (no markup or math parsing); control characters are shown escaped and long names are
cut with an ellipsis to fit their column.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from reportgen.drawing.colors import BACKGROUND, MUTED, hot_colormap
from reportgen.drawing.text import text_sprite

BAR = (110, 140, 200)
BAR_TRUE = (120, 200, 120)
BAR_TRACK = (72, 72, 80)


def layer_ranges(units: Sequence[np.ndarray]) -> np.ndarray:
    """(L, 2) colour range per layer from its (frames, units) values: [min(0, lowest), highest], so one
    colour means one activation in every frame of the movie."""
    ranges = np.zeros((len(units), 2))
    for i, values in enumerate(units):
        values = np.asarray(values, dtype=np.float64)
        if values.size:
            ranges[i] = min(0.0, float(values.min())), float(values.max())
    ranges[:, 1] = np.where(ranges[:, 1] > ranges[:, 0], ranges[:, 1], ranges[:, 0] + 1)  # silent layers stay black
    return ranges


class ResponseMovie:
    """Frame composer for one model: fixed layout, per-frame `frame(image, probs, units, label)`."""

    def __init__(self, layers: Sequence[tuple[str, int]], class_names: Sequence[str],
                 image_shape: tuple[int, int, int], ranges: np.ndarray, *, title: str = "", cell: int = 6,
                 gap: int = 1, columns: int = 64, image_side: int = 112, max_bars: int = 20,
                 width: int | None = None) -> None:
        """`layers`: (name, units) in order; `image_shape`: (H, W, C) of inputs; `ranges`: (L, 2) colour
        range per layer (`layer_ranges`); `cell`/`gap`: cell side and spacing in pixels; `columns`: cells
        per row before a layer wraps; `image_side`: the input is scaled up by an integer factor to about
        this side; `max_bars`: with more classes, a frame shows the most probable ones.

        With `width` (pixels) the frame is stacked for a phone's screen instead: the input and its bars
        side by side on top, each layer below them under its name, wrapped to fit `width`."""
        self.names, self.counts = [n for n, _ in layers], [int(u) for _, u in layers]
        self.class_names = list(class_names)
        h, w = image_shape[:2]
        scale = max(1, image_side // max(h, w))
        stacked = width is not None
        margin, line, pitch = 10, 16, cell + gap
        label_w = 0 if stacked else 84
        bar_w, pct_w, name_w = (80, 34, 70) if stacked else (90, 34, 80)
        self.bars = min(len(self.class_names), max_bars)
        top = margin + (line + 4 if title else 0)
        truth_w = max(w * scale, image_side if stacked else name_w + bar_w + pct_w + 8)
        # the input image, centred over its true class; the probability bars below it (wide) or beside it
        self.image_at = (top, margin + (truth_w - w * scale) // 2)
        truth_y = top + h * scale + 4
        # stacked, the bars stand beside the input where they fit (a 28-pixel input, scaled to 112)
        beside = stacked and 2 * margin + truth_w + 12 + name_w + bar_w + pct_w + 8 <= width
        bars_x, bars_y = (margin + truth_w + 12, top) if beside else (margin, truth_y + line)
        self.bar_rows = [bars_y + 2 + i * 13 for i in range(self.bars)]
        self.name_x, self.name_w = bars_x, name_w
        self.bar_x = bars_x + name_w + 4
        self.bar_w, self.bar_h = bar_w, 9
        self.pct_x, self.pct_w = self.bar_x + bar_w + 4, pct_w
        head_h = max(truth_y + line, bars_y + 2 + self.bars * 13)
        # one block of cells per layer, wrapped at `columns`: right of the input column (wide), or below the
        # inputs with each layer's name above its cells (stacked)
        if stacked:
            columns = max(1, (width - 2 * margin) // pitch)
            grid_x, y = margin, head_h + 8
        else:
            grid_x, y = margin + truth_w + 16 + label_w, top
        blocks, labels = [], []
        for count in self.counts:
            cols = max(1, min(count, columns))
            if stacked:
                labels.append((y, grid_x))
                y += line + 2
            else:  # the label's middle on the middle of the layer's first row of cells
                labels.append((max(y + cell // 2 - line // 2, 0), grid_x - label_w))
            blocks.append((y, cols))
            y += max(1, math.ceil(count / cols)) * pitch + 5
        if stacked:
            frame_w = max(width, 2 * margin + truth_w)  # an input wider than the screen widens the frame
        else:
            frame_w = grid_x + min(max(self.counts, default=1), columns) * pitch + margin
        height = max(head_h, y) + margin
        width, height = math.ceil(frame_w / 16) * 16, math.ceil(height / 16) * 16  # H.264-ready, no padding later
        self.size = (width, height)
        name_room = width - grid_x - margin if stacked else label_w - 8

        background = np.empty((height, width, 3), np.uint8)
        background[:] = BACKGROUND
        if title:
            _blit(background, text_sprite(title, width - 2 * margin, line, size=13), margin, margin)
        for (ly, lx), name in zip(labels, self.names, strict=True):
            _blit(background, text_sprite(name, name_room, line, MUTED), ly, lx)
        for y0 in self.bar_rows:
            background[y0:y0 + self.bar_h, self.bar_x:self.bar_x + bar_w] = BAR_TRACK
        if self.bars == len(self.class_names):  # fixed order: names drawn once
            for y0, name in zip(self.bar_rows, self.class_names, strict=False):
                _blit(background, self._name(name), y0 - 2, self.name_x)
        self.background = background
        self.truth_at = (truth_y, margin)
        self.truth = [text_sprite(f"true: {name}", truth_w, line) for name in self.class_names]
        self.sprites = [self._name(name) for name in self.class_names]
        self.percents = [text_sprite(f"{p}%", pct_w, 13, align="right") for p in range(101)]

        # each layer's cells as (top, left, full rows, columns, units); a frame fills them through strided views
        self.cell, self.pitch = cell, pitch
        self.blocks = [(by, grid_x, count // cols, cols, count) for (by, cols), count in zip(blocks, self.counts,
                                                                                            strict=True)]
        self.starts = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self.scale_by = scale
        ranges = np.asarray(ranges, dtype=np.float64).reshape(len(self.counts), 2)
        self.low = np.repeat(ranges[:, 0], self.counts).astype(np.float32)
        self.scale = (255.0 / np.repeat(ranges[:, 1] - ranges[:, 0], self.counts)).astype(np.float32)
        self.lut = hot_colormap()

    def cell_at(self, layer: int, unit: int) -> tuple[int, int]:
        """(row, column) of the top-left pixel of a unit's cell in the frame."""
        top, left, _, cols, _ = self.blocks[layer]
        return top + (unit // cols) * self.pitch, left + (unit % cols) * self.pitch

    def _name(self, name: str) -> np.ndarray:
        return text_sprite(name, self.name_w, 13)

    def frame(self, image: np.ndarray, probs: np.ndarray, units: Sequence[np.ndarray] | np.ndarray,
              label: int | None = None) -> np.ndarray:
        """uint8 (H, W, 3) frame: `image` uint8 (h, w, c) input, `probs` (K,) class probabilities, `units`
        per-layer (C,) values (or all layers concatenated), `label` the true class or None."""
        out = self.background.copy()
        values = units if isinstance(units, np.ndarray) and units.ndim == 1 else np.concatenate(
            [np.asarray(u, dtype=np.float32).reshape(-1) for u in units])
        level = np.clip((values.astype(np.float32) - self.low) * self.scale, 0, 255).astype(np.uint8)
        colors = self.lut[level]
        cell, pitch = self.cell, self.pitch
        for (top, left, rows, cols, count), start in zip(self.blocks, self.starts[:-1].tolist(), strict=True):
            if rows:  # full rows of cells: (rows, pitch, cols, pitch, 3) view, cell x cell corner of each
                grid = _tiles(out[top:top + rows * pitch, left:left + cols * pitch], rows, pitch, cols, pitch)
                grid[:, :cell, :, :cell] = colors[start:start + rows * cols].reshape(rows, 1, cols, 1, 3)
            rest = count - rows * cols
            if rest:
                y = top + rows * pitch
                grid = _tiles(out[y:y + pitch, left:left + rest * pitch], 1, pitch, rest, pitch)
                grid[:, :cell, :, :cell] = colors[start + rows * cols:start + count].reshape(1, 1, rest, 1, 3)
        picture = image if image.ndim == 3 else image[:, :, None]
        picture = picture[:, :, :3] if picture.shape[2] >= 3 else picture[:, :, :1]
        h, w, s = picture.shape[0], picture.shape[1], self.scale_by
        y, x = self.image_at
        _tiles(out[y:y + h * s, x:x + w * s], h, s, w, s)[:] = picture[:, None, :, None, :]
        if label is not None:
            _blit(out, self.truth[label], *self.truth_at)
        probs = np.asarray(probs, dtype=np.float64)
        order = np.arange(self.bars) if self.bars == len(probs) else np.argsort(-probs, kind="stable")[:self.bars]
        for y0, c in zip(self.bar_rows, order.tolist(), strict=True):
            p = float(probs[c])
            length = int(round(p * self.bar_w))
            out[y0:y0 + self.bar_h, self.bar_x:self.bar_x + length] = BAR_TRUE if c == label else BAR
            _blit(out, self.percents[int(round(p * 100))], y0 - 2, self.pct_x)
            if self.bars != len(probs):
                _blit(out, self.sprites[c], y0 - 2, self.name_x)
        return out


def _tiles(region: np.ndarray, rows: int, tall: int, cols: int, wide: int) -> np.ndarray:
    """A (rows, tall, cols, wide, 3) view of a (rows * tall, cols * wide, 3) region: writing to it writes the
    frame (as_strided never copies, where reshape of a slice may)."""
    s0, s1, s2 = region.strides
    return np.lib.stride_tricks.as_strided(region, (rows, tall, cols, wide, 3), (s0 * tall, s0, s1 * wide, s1, s2))


def _blit(out: np.ndarray, sprite: np.ndarray, y: int, x: int) -> None:
    h, w = sprite.shape[:2]
    h, w = min(h, out.shape[0] - y), min(w, out.shape[1] - x)
    if h > 0 and w > 0:
        out[y:y + h, x:x + w] = sprite[:h, :w]


def response_frames(layers: Sequence[tuple[str, int]], class_names: Sequence[str], images: np.ndarray,
                    probs: np.ndarray, labels: np.ndarray, indices: Sequence[int], rows: Sequence[np.ndarray], *,
                    title: str = "", **layout: int) -> tuple[ResponseMovie, Iterator[np.ndarray]]:
    """A composer and one frame per test image in `indices`, in that order (the movie's); `rows[i]` is
    layer i's (frames, units) responses to those images, and each layer's colours span its range over
    these frames, so one colour means one activation in every frame of the movie."""
    movie = ResponseMovie(list(layers), class_names, images.shape[1:], layer_ranges(rows), title=title, **layout)
    values = np.concatenate(rows, axis=1) if len(rows) else np.zeros((len(indices), 0), np.float32)

    def frames() -> Iterator[np.ndarray]:
        for row, index in enumerate(indices):
            yield movie.frame(images[index], probs[index], values[row], int(labels[index]))

    return movie, frames()
