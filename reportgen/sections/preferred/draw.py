"""Section 2's drawing stage: pictures of one model's preferred inputs, from the compute stage's data.

Writes, under `preferred/<model key>/`: a sprite sheet per layer (every unit's reconstruction, cropped
to its receptive field where only that matters; the atlas and the graph page show tiles of it), the
class-unit figure (a row per output class, a column per noise seed), the first-layer filters, and
the unit graph: its layout as JSON (for the pannable page) and an MP4 (with a WebP poster) that starts
on the whole graph and zooms through it layer by layer. No model runs here: a colour change redraws
in seconds without re-optimizing anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from reportgen.cache import Artifact
from reportgen.drawing.charts import finish_chart
from reportgen.drawing.colors import BACKGROUND, MUTED, TEXT, hot_colormap
from reportgen.drawing.sheets import SUFFIX, save_sheet
from reportgen.drawing.text import fit, font
from reportgen.drawing.video import write_mp4
from reportgen.sections.preferred.compute import read

THUMB = 28          # graph thumbnail side, graph pixels
GAP = 4             # between thumbnails
PER_ROW = 32        # thumbnails per row before a layer wraps
LAYER_GAP = 56      # vertical room between layers, where most edges run
LABEL = 96          # left column holding layer names
FRAME = (768, 432)  # movie frame (width, height): multiples of 16, 16:9; thumbnails reach 1:1 on a layer
FRAME_LABEL_PX = 16  # layer names in the movie, frame pixels: ~15 CSS px in the post's column at any zoom
CRF = 28            # x264 quality: the frames are noisy thumbnails, and crf 20 made 2.4 MB of 48 tiny-build frames
EDGE_LOW = 0.35     # weakest drawn edge's position on the hot colormap (0 is black, invisible here)
SHEET_COLUMNS = 32
SHEET_GAP = 1          # white pixels between a sheet's tiles: a unit's seeds, side by side, stay apart


@dataclass(frozen=True)
class Node:
    layer: int          # 0 = the input layer, i + 1 = unit layer i
    unit: int           # the node's place in its layer: a row of the layer's preferred inputs
    x: int
    y: int
    flagged: bool


def preferred_figures_stage(folder: Path, params: dict[str, Any], computed: Artifact) -> dict[str, Any]:
    """Draw one model's section-2 pictures; `params` = {"key": model key, "name": its display name,
    "edges": per unit, "fps": movie}."""
    result = read(computed)
    summary, weights = result.summary, result.weights
    out = folder / "preferred" / params["key"]
    out.mkdir(parents=True)
    layers = summary["layers"]
    tiles = [layer_tiles(inputs.images, layer["box"]) for inputs, layer in zip(result.layers, layers, strict=True)]
    sheets = []
    for i, layer in enumerate(layers):
        name = f"sheet-{i}-{_slug(layer['name'])}{SUFFIX}"
        sheets.append({"file": name, **write_sheet(tiles[i], out / name)})
    planes = input_tiles(weights["input"])
    inputs = {"file": f"sheet-input{SUFFIX}", **write_sheet(planes, out / f"sheet-input{SUFFIX}")}
    class_units(tiles[-1], summary["class_names"], out / "class-units.png")
    seed_figure = seed_check_figure(layers, out / "seeds.png", params["name"])
    if "filters" in weights:
        filters_image(weights["filters"], out / "filters.png")
    flagged = [inputs.flagged for inputs in result.layers]
    graph = layout(weights["input"], [layer["name"] for layer in layers],
                   [len(inputs.unit) for inputs in result.layers], flagged)
    edges = strongest_edges(shown_weights(weights, [inputs.unit for inputs in result.layers]), len(layers),
                            params["edges"])
    index = [np.arange(weights["input"].shape[-1])] + [inputs.unit for inputs in result.layers]
    picture = draw_graph(graph, weights["input"], tiles, edges)
    frames, count = zoom_frames(picture, graph, fps=params["fps"])
    info = write_mp4(frames, out / "graph.mp4", params["fps"], out / "graph.webp", crf=CRF)
    (out / "graph.json").write_text(json.dumps({
        "size": [graph["width"], graph["height"]], "layers": graph["layers"], "thumb": THUMB,
        # [layer, row, x, y, flagged, unit index]: a sampled layer's rows are not its unit indices
        "nodes": [[n.layer, n.unit, n.x, n.y, int(n.flagged), int(index[n.layer][n.unit])] for n in graph["nodes"]],
        "edges": [[*e[:2], *e[2:4], round(float(e[4]), 4)] for e in edges_geometry(graph, edges)],
        "sheets": sheets, "input_sheet": inputs,
        "movie": {"frames": info.frames, "size": list(info.size), "fps": info.fps, "seconds": info.seconds,
                  "keyframes": count},
        "filters": "filters" in weights, "seeds": seed_figure}))
    return {"movie_frames": info.frames}


def seed_check_figure(layers: list[dict[str, Any]], path: Path, name: str) -> dict[str, int] | None:
    """Per layer with a seed check (compute.seed_check): how alike two seeds' pictures of a unit are to
    the network, the sampled units' mean with its 95% bootstrap interval, beside the agreement of
    different units' pictures (what 'alike' is measured against). None when no layer has one."""
    checked = [layer for layer in layers if layer.get("seed_check")]
    if not checked:
        return None
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on build machines or CI
    import matplotlib.pyplot as plt

    from reportgen.stats import bootstrap_ci

    with plt.rc_context({"font.size": 11}):
        fig, ax = plt.subplots(figsize=(4.0, 3.0), dpi=160)
        x = np.arange(1, len(checked) + 1)
        same = [np.asarray(layer["seed_check"]["same"], dtype=np.float64) for layer in checked]
        cis = [bootstrap_ci(values) for values in same]
        means = [values.mean() for values in same]
        ax.errorbar(x, means, yerr=[[m - ci.low for m, ci in zip(means, cis, strict=True)],
                                    [ci.high - m for m, ci in zip(means, cis, strict=True)]],
                    fmt="o", color="#1f4e9c", capsize=3, label="two seeds, one unit")
        ax.plot(x, [layer["seed_check"]["different"] for layer in checked], "s", color="#7f7f7f",
                label="different units")
        ax.set_xticks(x, [layer["name"] for layer in checked], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(-0.55, 1.05)  # room below the markers for the legend
        ax.set_ylabel("response correlation")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(frameon=False, fontsize=8, loc="lower center", ncol=2)
        return finish_chart(fig, ax, name, path)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-") or "layer"


def layer_tiles(images: np.ndarray, box: list[int] | None) -> np.ndarray:
    """(units, seeds, h, w, C) reconstructions, cropped to the receptive-field box when there is one."""
    if box is None:
        return images
    top, left, bottom, right = box
    return images[:, :, top:bottom, left:right]


def write_sheet(tiles: np.ndarray, path: Path) -> dict[str, Any]:
    """Every tile of a layer, unit-major then seed, row by row with SHEET_GAP white pixels between
    them; a row holds whole units, so one view of the sheet shows all of a unit's seeds side by side.
    Returns the sheet's "size" [W, H], "tile" [w, h], "columns" and "gap"."""
    units, seeds, h, w, c = tiles.shape
    flat = tiles.reshape(-1, h, w, c)
    n = len(flat)
    columns = min(n, seeds * max(1, SHEET_COLUMNS // seeds))
    rows = math.ceil(n / columns)
    size = [columns * (w + SHEET_GAP) - SHEET_GAP, rows * (h + SHEET_GAP) - SHEET_GAP]
    sheet = np.full((size[1], size[0], c), 255, np.uint8)
    for k in range(n):
        r, col = divmod(k, columns)
        y, x = r * (h + SHEET_GAP), col * (w + SHEET_GAP)
        sheet[y:y + h, x:x + w] = flat[k]
    save_sheet(sheet, path)
    return {"size": size, "tile": [w, h], "columns": columns, "gap": SHEET_GAP}

def _rgb(tile: np.ndarray) -> np.ndarray:
    return np.repeat(tile, 3, axis=-1) if tile.shape[-1] == 1 else tile[..., :3]


def _scaled(tile: np.ndarray, side: int) -> np.ndarray:
    """An RGB tile resized to side x side: nearest-neighbour when enlarging (a 3x3 crop stays 9 squares)."""
    image = Image.fromarray(_rgb(tile))
    method = Image.NEAREST if max(image.size) <= side else Image.BILINEAR
    return np.asarray(image.resize((side, side), method))


def class_units(tiles: np.ndarray, class_names: list[str], path: Path, side: int = 84) -> None:
    """A row per output class (its name on the left), a column per noise seed."""
    units, seeds = tiles.shape[:2]
    gap, label = 6, 110
    width, height = label + seeds * (side + gap), units * (side + gap) + gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for u in range(units):
        y = gap + u * (side + gap)
        name = class_names[u] if u < len(class_names) else str(u)
        draw.text((label - 8, y + side / 2), fit(name, label - 12, 14), fill=(30, 30, 30), font=font(14),
                  anchor="rm")
        for s in range(seeds):
            canvas.paste(Image.fromarray(_scaled(tiles[u, s], side)), (label + s * (side + gap), y))
    canvas.save(path)


def filters_image(filters: np.ndarray, path: Path, cell: int = 12, columns: int = 16) -> None:
    """First-layer filters (out, in, kh, kw) as small images: one channel in gray, three in colour,
    scaled symmetrically so zero weight is mid-gray (white = most positive)."""
    out, cin, kh, kw = filters.shape
    scale = float(np.abs(filters).max()) or 1.0
    unit = (filters / scale + 1) / 2   # -> [0, 1], 0.5 = zero weight
    pictures = np.round(unit * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    pictures = pictures if cin in (1, 3) else pictures.mean(axis=3, keepdims=True).astype(np.uint8)
    gap = max(2, cell // 3)
    columns = min(out, columns)
    rows = math.ceil(out / columns)
    side_h, side_w = kh * cell, kw * cell
    canvas = np.full((rows * (side_h + gap) + gap, columns * (side_w + gap) + gap, 3), 255, np.uint8)
    for k in range(out):
        r, c = divmod(k, columns)
        big = np.repeat(np.repeat(_rgb(pictures[k]), cell, axis=0), cell, axis=1)
        y, x = gap + r * (side_h + gap), gap + c * (side_w + gap)
        canvas[y:y + side_h, x:x + side_w] = big
    Image.fromarray(canvas).save(path)


def layout(example: np.ndarray, names: list[str], counts: list[int], flagged: list[np.ndarray]) -> dict[str, Any]:
    """Graph coordinates: the input layer (one image per channel) on top, then each layer in order,
    wrapping after PER_ROW units, rows centred, names in a left column."""
    width = LABEL + PER_ROW * (THUMB + GAP) + GAP
    nodes: list[Node] = []
    bands = []
    y = LAYER_GAP // 2
    for layer, (name, count) in enumerate(zip(["input", *names], [example.shape[-1], *counts], strict=True)):
        rows = math.ceil(count / PER_ROW)
        top = y
        for k in range(count):
            r, c = divmod(k, PER_ROW)
            in_row = min(PER_ROW, count - r * PER_ROW)
            left = LABEL + (PER_ROW - in_row) * (THUMB + GAP) // 2 + GAP
            bad = bool(flagged[layer - 1][k]) if layer else False
            nodes.append(Node(layer, k, left + c * (THUMB + GAP), y + r * (THUMB + GAP), bad))
        y += rows * (THUMB + GAP) - GAP
        bands.append({"name": name, "top": top, "bottom": y, "units": count})
        y += LAYER_GAP
    return {"width": width, "height": y - LAYER_GAP // 2, "nodes": nodes, "layers": bands}


def shown_weights(weights: dict[str, np.ndarray], shown: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The edge matrices between the units that have a preferred input (rows: a layer's shown units,
    columns: the previous layer's; the input layer's channels are all shown)."""
    out = {}
    for i, rows in enumerate(shown):
        matrix = weights.get(f"edges_{i}")
        if matrix is not None:
            out[f"edges_{i}"] = matrix[rows][:, shown[i - 1]] if i else matrix[rows]
    return out


def strongest_edges(weights: dict[str, np.ndarray], layers: int, k: int) -> list[tuple[int, int, int, float]]:
    """(target layer, target unit, source unit, weight) of each unit's k strongest incoming edges after
    ReLU thresholding (negative weights are not edges), weights scaled to [0, 1] between the weakest and
    the strongest drawn edge of the layer: scaled by the maximum alone, nearly every kept edge of the
    default build's graphs came out in the top quarter of the colormap, all yellow."""
    edges = []
    for i in range(layers):
        matrix = weights.get(f"edges_{i}")
        if matrix is None:
            continue
        positive = np.maximum(matrix, 0)
        keep = min(k, positive.shape[1])
        order = np.argsort(-positive, axis=1, kind="stable")[:, :keep]
        kept = [(unit, int(source), float(positive[unit, source])) for unit in range(positive.shape[0])
                for source in order[unit] if positive[unit, source] > 0]
        if not kept:
            continue
        low, high = min(w for *_, w in kept), max(w for *_, w in kept)
        span = high - low or 1.0
        edges += [(i + 1, unit, source, (w - low) / span if high > low else 1.0) for unit, source, w in kept]
    return edges


def edges_geometry(graph: dict[str, Any], edges: list[tuple[int, int, int, float]]
                   ) -> list[tuple[float, float, float, float, float]]:
    """(x1, y1, x2, y2, weight) per edge, from the bottom of the source to the top of the target, weakest first."""
    where = {(n.layer, n.unit): n for n in graph["nodes"]}
    lines = []
    for layer, unit, source, w in sorted(edges, key=lambda e: e[3]):
        a, b = where[(layer - 1, source)], where[(layer, unit)]
        lines.append((a.x + THUMB / 2, a.y + THUMB, b.x + THUMB / 2, b.y, w))
    return lines


def edge_color(w: float) -> tuple[int, int, int]:
    """Hot colormap (dark red -> yellow -> white) of a weight in [0, 1]."""
    lut = hot_colormap()
    return tuple(int(v) for v in lut[int(round((EDGE_LOW + (1 - EDGE_LOW) * w) * 255))])  # type: ignore[return-value]


def draw_graph(graph: dict[str, Any], example: np.ndarray, tiles: list[np.ndarray],
               edges: list[tuple[int, int, int, float]]) -> Image.Image:
    """The whole graph as one RGB picture: edges (hotter = larger weight), then thumbnails on top.
    Dead or flat units are dimmed and outlined, so a failed reconstruction is not read as a result.
    No labels: the movie shrinks a deep graph 5x or more, so they are drawn on each frame."""
    canvas = Image.new("RGB", (graph["width"], graph["height"]), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for x1, y1, x2, y2, w in edges_geometry(graph, edges):
        draw.line((x1, y1, x2, y2), fill=edge_color(w), width=1)
    planes = input_tiles(example)
    for n in graph["nodes"]:
        tile = planes[n.unit, 0] if n.layer == 0 else tiles[n.layer - 1][n.unit, 0]
        thumb = _scaled(tile, THUMB)
        if n.flagged:
            thumb = (thumb.astype(np.float32) * 0.3 + np.array(BACKGROUND) * 0.7).astype(np.uint8)
        canvas.paste(Image.fromarray(thumb), (n.x, n.y))
        if n.flagged:
            draw.rectangle((n.x, n.y, n.x + THUMB - 1, n.y + THUMB - 1), outline=MUTED)
    return canvas  # the layers' names are drawn on each frame instead, at the frame's own scale


def input_tiles(example: np.ndarray) -> np.ndarray:
    """(channels, 1, H, W, 3): each channel of one input as an image, in its own colour (red, green,
    blue) for RGB input, in gray otherwise."""
    channels = example.shape[-1]
    planes = np.zeros((channels, 1, *example.shape[:2], 3), np.uint8)
    for c in range(channels):
        if channels == 3:
            planes[c, 0, ..., c] = example[..., c]
        else:
            planes[c, 0] = example[..., c, None]
    return planes


def _viewports(graph: dict[str, Any]) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) keyframes: the whole graph, each layer (with the edges arriving from above), the whole again."""
    whole = (0.0, 0.0, float(graph["width"]), float(graph["height"]))
    views = [whole]
    for band in graph["layers"]:
        top = max(0.0, band["top"] - LAYER_GAP * 0.9)
        bottom = band["bottom"] + LAYER_GAP * 0.3
        views.append((0.0, top, float(graph["width"]), bottom))
    return [*views, whole]


def _fit(view: tuple[float, float, float, float], max_zoom: float = 3.0) -> tuple[float, float, float]:
    """(centre x, centre y, graph pixels per frame pixel) showing the whole view in the frame."""
    x0, y0, x1, y1 = view
    per_pixel = max((x1 - x0) / FRAME[0], (y1 - y0) / FRAME[1], 1 / max_zoom)
    return (x0 + x1) / 2, (y0 + y1) / 2, per_pixel


def zoom_frames(picture: Image.Image, graph: dict[str, Any], move: float = 0.6, hold: float = 0.4,
                fps: float = 20.0) -> tuple[Iterator[np.ndarray], int]:
    """Frames that hold on each keyframe and ease between them (centre linearly, scale geometrically);
    timings are in seconds at `fps` frames per second of movie time. Returns (frames, keyframes)."""
    keys = [_fit(v) for v in _viewports(graph)]

    def camera() -> Iterator[tuple[float, float, float]]:
        for a, b in zip(keys[:-1], keys[1:], strict=True):
            for _ in range(max(1, round(hold * fps))):
                yield a
            steps = max(1, round(move * fps))
            for s in range(1, steps):
                t = s / steps
                t = t * t * (3 - 2 * t)   # smoothstep: no jolt at either end
                yield (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] * (b[2] / a[2]) ** t)
        for _ in range(max(1, round(hold * fps))):
            yield keys[-1]

    labels = [(band["name"], (band["top"] + band["bottom"]) / 2) for band in graph["layers"]]

    def frames() -> Iterator[np.ndarray]:
        for cx, cy, per_pixel in camera():
            yield _frame(picture, cx, cy, per_pixel, labels)

    return frames(), len(keys)


def _frame(picture: Image.Image, cx: float, cy: float, per_pixel: float,
           labels: Sequence[tuple[str, float]] = ()) -> np.ndarray:
    """The frame seeing graph pixels around (cx, cy) at `per_pixel` graph pixels per frame pixel;
    what lies outside the picture is background. `labels`: (layer name, graph y) written at the left
    edge in FRAME_LABEL_PX type whatever the zoom, so the overview's names stay legible."""
    w, h = FRAME
    x0, y0 = cx - w / 2 * per_pixel, cy - h / 2 * per_pixel
    x1, y1 = x0 + w * per_pixel, y0 + h * per_pixel
    # the part of the view inside the picture, and where it lands in the frame
    ix0, iy0 = max(x0, 0.0), max(y0, 0.0)
    ix1, iy1 = min(x1, float(picture.width)), min(y1, float(picture.height))
    frame = Image.new("RGB", FRAME, BACKGROUND)
    if ix1 > ix0 and iy1 > iy0:
        fx0, fy0 = round((ix0 - x0) / per_pixel), round((iy0 - y0) / per_pixel)
        fx1, fy1 = round((ix1 - x0) / per_pixel), round((iy1 - y0) / per_pixel)
        if fx1 > fx0 and fy1 > fy0:
            method = Image.NEAREST if per_pixel < 0.5 else Image.BILINEAR
            # reducing_gap: shrink by whole factors first (fast), then resample; the overview frames are 4x smaller
            part = picture.resize((fx1 - fx0, fy1 - fy0), method, box=(ix0, iy0, ix1, iy1), reducing_gap=2.0)
            frame.paste(part, (fx0, fy0))
    if labels:
        draw, face = ImageDraw.Draw(frame), font(FRAME_LABEL_PX)
        edge = (LABEL - 8 - x0) / per_pixel  # the right edge of the graph's label column, in the frame
        for name, y in labels:
            fy = (y - y0) / per_pixel
            if FRAME_LABEL_PX / 2 <= fy <= h - FRAME_LABEL_PX / 2:
                text = fit(name, LABEL - 16, FRAME_LABEL_PX)
                draw.text((max(8 + draw.textlength(text, font=face), edge), fy), text, fill=TEXT, font=face,
                          anchor="rm")
    return np.asarray(frame)


def class_units_figures_stage(folder: Path, params: dict[str, Any], computed: Artifact) -> dict[str, Any]:
    """Per model, its class units under every prior, a row per class and a column per prior:
    `params` = {"keys": model keys in order, "class_names": the data's classes}."""
    out = folder / "preferred" / "priors"
    out.mkdir(parents=True)
    kinds = json.loads(computed.file("classes.json").read_text())["kinds"]
    sizes = {}
    with np.load(computed.file("classes.npz")) as arrays:
        for i, key in enumerate(params["keys"]):
            path = out / f"{key}.png"
            priors_figure([arrays[f"{kind}_{i}"] for kind in kinds], [PRIOR_NAMES[k] for k in kinds],
                          params["class_names"], path)
            with Image.open(path) as image:
                sizes[key] = list(image.size)
    return {"sizes": sizes}


# column heads of the priors figure, by class-units kind (compute.CLASS_KINDS)
PRIOR_NAMES = {"bare": "none", "decay": "L2 decay", "blur": "+ blur", "norm_clip": "+ pixel clip",
               "contrib_clip": "+ contrib. clip", "regularized": "searched"}


def priors_figure(columns: list[np.ndarray], heads: list[str], class_names: list[str], path: Path,
                  side: int = 60, column: int = 84) -> None:
    """A row per class (its name on the left), a column per kind of image (its head on top)."""
    gap, label, head = 6, 96, 22
    ink = (30, 30, 30)  # on white, as the other figures of the post
    classes = len(columns[0])
    canvas = Image.new("RGB", (label + len(columns) * column, head + classes * (side + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (images, name) in enumerate(zip(columns, heads, strict=True)):
        x = label + k * column
        draw.text((x + column / 2, head - 6), fit(name, column - 4, 12), fill=ink, font=font(12), anchor="ms")
        for c in range(classes):
            canvas.paste(Image.fromarray(_scaled(images[c], side)), (x + (column - side) // 2, head + c * (side + gap)))
    for c in range(classes):
        draw.text((label - 8, head + c * (side + gap) + side / 2), fit(class_names[c], label - 12, 13), fill=ink,
                  font=font(13), anchor="rm")
    canvas.save(path)
