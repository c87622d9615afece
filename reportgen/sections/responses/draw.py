"""Section 3's drawing stage: response movies, activated units, feature maps and top-patch sheets.

Reads one model's section-3 data (compute.py) and the test images, and writes PNG/MP4 under
`responses/<model key>/`, plus `layout.json` (where each unit's tile sits in the atlas sheets). No
model runs here, so a colour or layout change redraws without a forward pass. Everything is
composed with array operations; text comes from frames.text_sprite.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reportgen.cache import Artifact
from reportgen.drawing.charts import finish_chart
from reportgen.drawing.colors import hot_colormap
from reportgen.drawing.sheets import SUFFIX, save_sheet
from reportgen.drawing.text import text_sprite
from reportgen.drawing.video import accelerating_durations, write_mp4
from reportgen.nets.data import Dataset
from reportgen.report.pages import ATLAS_PAGE_UNITS
from reportgen.sections.preferred.compute import read as read_preferred
from reportgen.sections.responses.compute import ResponseFrames, load_summary
from reportgen.sections.responses.frames import response_frames
from reportgen.sections.responses.randomization import guided_fails

GREY = (150, 150, 150)       # a unit that did not activate
EMPTY = (230, 230, 230)      # no image: padding of a clipped crop, a missing gradient
WHITE = (255, 255, 255)
FPS = 10                     # repeats at 10 fps realize durations down to 0.1 s at a third of 25 fps's frames
FIRST, LAST = 0.6, 0.1       # seconds per frame at the start and the end of a movie
# Width of the stacked movie a phone plays: a wide figure on a 390-px screen is 390 - 2.2 rem = 355 CSS px
# wide, so the frame shows at about its own size; the wide movie there was 138 px tall, a third of it
# under the player's controls
NARROW = 352
TILE = 24                    # displayed side of a top-patch tile in the post's figure, pixels
SHEET_UNITS = 8              # units per row of an atlas sheet
# Largest side of one crop in an atlas sheet: twice the side the atlas shows it at (ATLAS_CROP CSS px),
# sharp on high-density screens; a deep layer of a 224x224 network sees the whole image, and its sheet
# at full size was 250 MB for 512 units
ATLAS_SIDE = 60


def drawing_stage(folder: Path, params: dict[str, Any], dataset_art: Artifact, computed: Artifact,
                  checked: Artifact) -> dict[str, Any]:
    """Every section-3 picture of one model; `params`: the model's display name and key, the grey
    threshold, the atlas's guided-backprop images per unit and its saliency method ('auto': the
    randomization test, `checked`, decides)."""
    summary, frames = load_summary(computed), ResponseFrames.load(computed)
    images, _ = Dataset.from_artifact(dataset_art).part("test")
    out = folder / "responses" / params["key"]
    out.mkdir(parents=True)
    names, a, b = summary["classes"], summary["a"], summary["b"]
    units = [layer.units for layer in frames.layers]
    keep = frames.keep.tolist()
    probs_labels = _probs(computed)
    videos = {}
    movies = [("movie", summary["movie"], 0, f"{params['name']}: {names[a]} and {names[b]} test images"),
              ("low", summary["low"], len(summary["movie"]), f"{params['name']}: low-confidence {names[a]} and "
                                                             f"{names[b]}, and {_third(summary)}")]
    for stem, indices, offset, title in movies:
        rows = [u[offset:offset + len(indices)] for u in units]
        videos[stem] = _movie(out / f"{stem}.mp4", summary, images, probs_labels, indices, rows, title)
    shown = len(keep) - 2
    activated = []
    for j in range(2):
        values = [u[shown + j] for u in units]
        path = out / f"activated-{'ab'[j]}.png"
        activated.append(activated_units(path, summary, values, images[summary["shown"][j]], params["threshold"]))
    feature_grid(out / "feature-maps.png", frames.feature_maps, images[summary["shown"][0]])
    patch_figure(out / "patches.png", summary, frames, images)
    saliency = atlas_method(params["atlas_method"], json.loads(checked.file("randomization.json").read_text()))
    layout = atlas_sheets(out, summary, frames, images, params["atlas_gradients"], saliency["method"])
    (folder / "layout.json").write_text(json.dumps({"videos": videos, "activated": activated, "atlas": layout,
                                                    "saliency": saliency}))
    return {"videos": videos}


def _third(summary: dict[str, Any]) -> str:
    return summary["classes"][summary["third"]] if summary["third"] >= 0 else "no third class"


def _probs(computed: Artifact) -> tuple[np.ndarray, np.ndarray]:
    from reportgen.sections.responses.recording import Responses

    rec = Responses.load(computed.file("responses.npz"))
    # the bars are the data's classes: a network's 'other' column (outputs of other classes) is no bar
    return rec.probs[:, :len(rec.class_names)], rec.labels


def _movie(path: Path, summary: dict[str, Any], images: np.ndarray, probs_labels: tuple[np.ndarray, np.ndarray],
           indices: Sequence[int], rows: list[np.ndarray], title: str) -> dict[str, Any]:
    """One response movie, wide for a desktop and stacked for a phone (`path` with '-narrow'): a frame
    per image, colours normalized per layer over this movie's frames."""
    layers = [(layer["name"], layer["units"]) for layer in summary["layers"]]
    made = {}
    for variant, stem, layout in (("wide", path.stem, {}), ("narrow", f"{path.stem}-narrow", {"width": NARROW})):
        _, frames = response_frames(layers, summary["classes"], images, *probs_labels, indices, rows, title=title,
                                    **layout)
        file = path.with_name(f"{stem}.mp4")
        info = write_mp4(frames, file, accelerating_durations(len(indices), FIRST, LAST), file.with_suffix(".png"),
                         fps=FPS)
        made[variant] = {"file": file.name, "poster": f"{stem}.png", "width": info.size[0], "height": info.size[1],
                         "bytes": file.stat().st_size}
    return {"frames": info.inputs, "encoded": info.frames, "seconds": round(info.seconds, 1), "fps": info.fps,
            **made["wide"], "narrow": made["narrow"]}


def _blit(out: np.ndarray, sprite: np.ndarray, y: int, x: int) -> None:
    h, w = sprite.shape[:2]
    out[y:y + h, x:x + w] = sprite


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]


def _scaled(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(_rgb(image), factor, axis=0), factor, axis=1)


def active_mask(values: np.ndarray, threshold: float) -> np.ndarray:
    """Units that count as active for one image: response above `threshold` times the layer's largest
    positive response for that image (threshold 0: any positive response)."""
    values = np.asarray(values, dtype=np.float64)
    top = max(float(values.max(initial=0.0)), 0.0)
    return values > threshold * top if top > 0 else np.zeros(values.shape, bool)


def activated_units(path: Path, summary: dict[str, Any], values: Sequence[np.ndarray], image: np.ndarray,
                    threshold: float, cell: int = 12, columns: int = 32) -> dict[str, Any]:
    """The fully connected layers' units for one image: active units coloured by response (hot, scaled
    to the layer's largest response for this image), the others grey. Returns the active counts.

    Each unit is one square cell; when section 2's preferred inputs exist, a cell can become that
    unit's thumbnail (same layout, same grey rule)."""
    lut = hot_colormap()
    fc = [(layer, v) for layer, v in zip(summary["layers"], values, strict=True) if layer["kind"] == "fc"]
    margin, line, pitch = 10, 16, cell + 2
    scale = max(1, 96 // image.shape[0])
    blocks, y = [], margin
    for layer, v in fc:
        rows = math.ceil(layer["units"] / columns)
        blocks.append((y, layer, v))
        y += line + rows * pitch + 8
    width = margin * 3 + image.shape[1] * scale + columns * pitch
    height = max(y, margin * 2 + image.shape[0] * scale) + margin
    out = np.full((height, width, 3), WHITE, np.uint8)
    _blit(out, _scaled(image, scale), margin, margin)
    left = margin * 2 + image.shape[1] * scale
    counts = []
    for top, layer, v in blocks:
        active = active_mask(v, threshold)
        # dark red (weak) to yellow (strong); the LUT's white end would vanish on the white page
        level = np.clip(v / max(float(v.max(initial=0.0)), 1e-12), 0, 1)
        colors = np.where(active[:, None], lut[(55 + level * 170).astype(np.int64)], np.array(GREY, np.uint8))
        label = f"{layer['name']}: {int(active.sum())} of {layer['units']} active"
        _blit(out, text_sprite(label, columns * pitch, line, (40, 40, 40), 12, WHITE), top, left)
        for u in range(layer["units"]):
            r, c = divmod(u, columns)
            y0, x0 = top + line + r * pitch, left + c * pitch
            out[y0:y0 + cell, x0:x0 + cell] = colors[u]
        counts.append({"layer": layer["name"], "active": int(active.sum()), "units": layer["units"]})
    Image.fromarray(out).save(path)
    return {"counts": counts, "width": width, "height": height}


def feature_grid(path: Path, maps: np.ndarray, image: np.ndarray, side: int = 42, gap: int = 3) -> None:
    """The activation maps of one conv layer for one input, on one hot scale (so a dim map looks dim),
    beside the input; a grid as square as the channel count allows."""
    lut = hot_colormap()
    channels, h, w = maps.shape
    factor = max(1, side // max(h, w))
    top = float(maps.max(initial=0.0))
    level = np.clip(maps / top, 0, 1) if top > 0 else np.zeros_like(maps)
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols)
    th, tw = h * factor, w * factor
    in_factor = max(1, (rows * (th + gap) - gap) // image.shape[0] // 2) or 1
    picture = _scaled(image, in_factor)
    left = picture.shape[1] + 4 * gap
    out = np.full((max(rows * (th + gap) - gap, picture.shape[0]), left + cols * (tw + gap) - gap, 3), WHITE, np.uint8)
    _blit(out, picture, 0, 0)
    for ch in range(channels):
        r, c = divmod(ch, cols)
        tile = lut[(level[ch] * 255).astype(np.uint8)]
        _blit(out, np.repeat(np.repeat(tile, factor, axis=0), factor, axis=1), r * (th + gap), left + c * (tw + gap))
    Image.fromarray(out).save(path)


def _crop(image: np.ndarray, box: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """The receptive field's pixels as a (size) tile; where the field overhangs the image, EMPTY fills
    the overhanging side."""
    top, left, bottom, right = box
    tile = np.empty((size[0], size[1], 3), np.uint8)
    tile[:] = EMPTY
    piece = _rgb(image[top:bottom, left:right])
    y = size[0] - piece.shape[0] if top == 0 else 0
    x = size[1] - piece.shape[1] if left == 0 else 0
    tile[y:y + piece.shape[0], x:x + piece.shape[1]] = piece
    return tile


def unit_tiles(summary: dict[str, Any], frames: ResponseFrames, images: np.ndarray, index: int,
               unit: int) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """One unit's top-k crops and guided-backprop crops (None where there is no image or no gradient)."""
    layer = summary["layers"][index]
    rec = frames.layers[index].top.tolist()
    size = layer["rf"]
    crops, grads = [], []
    rows = {tuple(r): n for n, r in enumerate(frames.layers[index].grad_rows.tolist())}
    for j in range(summary["k"]):
        image_index = rec[unit][j]
        if image_index < 0:
            crops.append(None)
            grads.append(None)
            continue
        box = layer["rf_box"][unit][j] if layer["rf_box"] else [0, 0, images.shape[1], images.shape[2]]
        crops.append(_crop(images[image_index], box, size))
        n = rows.get((unit, j))
        grads.append(_crop(frames.layers[index].grads[n], box, size) if n is not None else None)
    return crops, grads


def _row(tiles: list[np.ndarray | None], side: int, gap: int = 1) -> np.ndarray:
    """Images side by side, each scaled to `side` pixels; EMPTY where there is none."""
    out = np.full((side, len(tiles) * (side + gap) - gap, 3), WHITE, np.uint8)
    for j, tile in enumerate(tiles):
        x = j * (side + gap)
        if tile is None:
            out[:, x:x + side] = EMPTY
        else:
            # pixels enlarged stay crisp squares; shrunk ones are averaged, not aliased
            img = Image.fromarray(tile).resize((side, side), Image.NEAREST if side >= tile.shape[0] else Image.BOX)
            out[:, x:x + side] = np.asarray(img)
    return out


def _block(crops: list[np.ndarray | None], grads: list[np.ndarray | None], side: int, gap: int = 1) -> np.ndarray:
    """A unit's tile in the post's figure: its crops in the top row, their gradients below."""
    top, bottom = _row(crops, side, gap), _row(grads, side, gap)
    return np.concatenate([top, np.full((gap, top.shape[1], 3), WHITE, np.uint8), bottom])


def patch_figure(path: Path, summary: dict[str, Any], frames: ResponseFrames, images: np.ndarray) -> None:
    """The post's sample: per layer (a row), the sampled units' top-k crops over their guided-backprop images."""
    label_w, gap, margin = 120, 14, 8
    rows = []
    for i, layer in enumerate(summary["layers"]):
        blocks = [_block(*unit_tiles(summary, frames, images, i, u), TILE) for u in layer["sample"]]
        rows.append((layer, blocks))
    block_h = 2 * TILE + 1
    block_w = max((b.shape[1] for _, blocks in rows for b in blocks), default=TILE)
    per_row = max(len(blocks) for _, blocks in rows)
    width = margin * 2 + label_w + per_row * (block_w + gap)
    height = margin * 2 + len(rows) * (block_h + 18 + gap)
    out = np.full((height, width, 3), WHITE, np.uint8)
    y = margin
    for layer, blocks in rows:
        size = "x".join(str(s) for s in layer["rf"])
        field = f"field {size} px" if layer["kind"] == "conv" else "whole image"
        _blit(out, text_sprite(layer["name"], label_w - 8, 16, (30, 30, 30), 13, WHITE), y + 14, margin)
        _blit(out, text_sprite(field, label_w - 8, 14, (90, 90, 90), 11, WHITE), y + 32, margin)
        for n, (block, unit) in enumerate(zip(blocks, layer["sample"], strict=True)):
            x = margin + label_w + n * (block_w + gap)
            _blit(out, text_sprite(f"unit {unit}", block_w, 16, (60, 60, 60), 11, WHITE), y, x)
            _blit(out, block, y + 18, x)
        y += block_h + 18 + gap
    Image.fromarray(out).save(path)


def atlas_method(setting: str, randomized: dict[str, Any]) -> dict[str, Any]:
    """Which saliency pictures the atlas shows: the configured method, or with 'auto' the plain gradient
    where the randomization test (`randomized`, its JSON) finds that guided backprop ignores the
    weights, else guided backprop."""
    fails = guided_fails(randomized)
    method = setting if setting != "auto" else ("gradient" if fails else "guided")
    return {"method": method, "setting": setting, "guided_fails": fails}


def atlas_sheets(out: Path, summary: dict[str, Any], frames: ResponseFrames, images: np.ndarray,
                 gradients: int, method: str = "guided") -> list[dict[str, Any]]:
    """Sprite sheets of every unit's strip (its top-k crops, then the guided-backprop images of its best
    `gradients` of them: every unit has those, so no cell is a blank placeholder) at the receptive
    field's own pixel size, or ATLAS_SIDE for larger fields. One sheet per atlas page of a layer, so a
    page loads its own units' pictures only. Returns per layer the sheets' files and sizes, and where
    each unit's strip sits in its page's sheet."""
    layout = []
    for i, layer in enumerate(summary["layers"]):
        side = min(max(layer["rf"]), ATLAS_SIDE)
        strips = []
        plain = _plain_crops(summary, frames, images, i) if method == "gradient" else None
        for u in range(layer["units"]):
            crops, grads = unit_tiles(summary, frames, images, i, u)
            shown = [plain.get((u, j)) for j in range(gradients)] if plain is not None else grads[:gradients]
            strips.append(_strip(crops, shown, side))
        th, tw = strips[0].shape[:2]
        gap = 2
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", layer["name"]).strip("-") or str(i)
        files, sizes, places = [], [], []
        for first in range(0, len(strips), ATLAS_PAGE_UNITS):
            page = strips[first:first + ATLAS_PAGE_UNITS]
            cols = max(1, min(SHEET_UNITS // 4, len(page)))  # strips are wide: a squarer sheet of them
            rows = math.ceil(len(page) / cols)
            sheet = np.full((rows * (th + gap), cols * (tw + gap), 3), WHITE, np.uint8)
            for k, strip in enumerate(page):
                r, c = divmod(k, cols)
                _blit(sheet, strip, r * (th + gap), c * (tw + gap))
                places.append([len(files), c * (tw + gap), r * (th + gap), tw, th])
            # a '.' cannot come from the slug: no layer's page-0 sheet takes another's later page's name
            name = f"patches-{slug}{f'.p{len(files)}' if first else ''}{SUFFIX}"
            save_sheet(sheet, out / name)
            files.append(name)
            sizes.append([sheet.shape[1], sheet.shape[0]])
        layout.append({"layer": layer["name"], "files": files, "sizes": sizes, "tiles": places, "side": side,
                       "gradients": gradients})
    return layout


def _plain_crops(summary: dict[str, Any], frames: ResponseFrames, images: np.ndarray, index: int
                 ) -> dict[tuple[int, int], np.ndarray]:
    """The plain-gradient pictures of one layer's atlas rows, cropped like the guided ones, by (unit, rank)."""
    layer, recorded = summary["layers"][index], frames.layers[index]
    found = {}
    for (unit, j), picture in zip(recorded.plain_rows.tolist(), recorded.plain, strict=True):
        box = layer["rf_box"][unit][j] if layer["rf_box"] else [0, 0, images.shape[1], images.shape[2]]
        found[(unit, j)] = _crop(picture, box, layer["rf"])
    return found


def _strip(crops: list[np.ndarray | None], grads: list[np.ndarray | None], side: int) -> np.ndarray:
    """A unit's atlas strip: its crops in a row, then (after a wider gap) the guided-backprop images of
    the first of them, each scaled to `side` pixels."""
    row = _row(crops, side)
    if not grads:
        return row
    gap = max(2, side // 6)
    explained = _row(grads, side)
    out = np.full((side, row.shape[1] + gap + explained.shape[1], 3), WHITE, np.uint8)
    out[:, :row.shape[1]] = row
    out[:, row.shape[1] + gap:] = explained
    return out


def activated_inputs_stage(folder: Path, params: dict[str, Any], dataset_art: Artifact, computed: Artifact,
                           preferred: Artifact) -> dict[str, Any]:
    """The write-up's activated-units figure with pictures: for the two shown test images, every fully
    connected unit that has a preferred input (section 2's `preferred` artifact of the same model) as
    its thumbnail, faded to grey where the unit does not activate. `params`: the model's key, the
    grey threshold."""
    summary, frames = load_summary(computed), ResponseFrames.load(computed)
    images, _ = Dataset.from_artifact(dataset_art).part("test")
    inputs = read_preferred(preferred)
    by_name = {layer["name"]: inputs.layers[i] for i, layer in enumerate(inputs.summary["layers"])}
    out = folder / "responses" / params["key"]
    out.mkdir(parents=True)
    shown = len(frames.keep) - 2
    drawn = []
    for j in range(2):
        layers = [(layer, frame.units[shown + j], by_name[layer["name"]])
                  for layer, frame in zip(summary["layers"], frames.layers, strict=True)
                  if layer["kind"] == "fc" and layer["name"] in by_name]
        path = out / f"activated-inputs-{'ab'[j]}.png"
        drawn.append(activated_thumbnails(path, layers, images[summary["shown"][j]], params["threshold"]))
    return {"figures": drawn}


def activated_thumbnails(path: Path, layers: list[tuple[dict[str, Any], np.ndarray, Any]], image: np.ndarray,
                         threshold: float, cell: int = 22, columns: int = 24) -> dict[str, Any]:
    """`activated_units` with each unit's preferred input in its cell (first seed), faded to grey when
    the unit is not active; a layer sampled in section 2 shows its sampled units only."""
    margin, line, pitch = 10, 16, cell + 2
    scale = max(1, 96 // image.shape[0])
    rows_of = [math.ceil(len(inputs.unit) / columns) for _, _, inputs in layers]
    height = max(margin + sum(line + r * pitch + 8 for r in rows_of), margin * 2 + image.shape[0] * scale) + margin
    width = margin * 3 + image.shape[1] * scale + columns * pitch
    out = np.full((height, width, 3), WHITE, np.uint8)
    _blit(out, _scaled(image, scale), margin, margin)
    left, top = margin * 2 + image.shape[1] * scale, margin
    counts = []
    for (layer, values, inputs), rows in zip(layers, rows_of, strict=True):
        active = active_mask(values, threshold)[inputs.unit]
        sampled = f" (a sample of {layer['units']})" if len(inputs.unit) < layer["units"] else ""
        label = f"{layer['name']}: {int(active.sum())} of {len(inputs.unit)} units active{sampled}"
        _blit(out, text_sprite(label, columns * pitch, line, (40, 40, 40), 12, WHITE), top, left)
        for k, unit_image in enumerate(inputs.images[:, 0]):
            thumb = np.asarray(Image.fromarray(_rgb(unit_image)).resize((cell, cell), Image.BILINEAR), np.float64)
            if not active[k]:  # faded to the grey of an inactive cell, still recognisable
                thumb = 0.25 * thumb + 0.75 * np.array(GREY, np.float64)
            r, c = divmod(k, columns)
            y0, x0 = top + line + r * pitch, left + c * pitch
            out[y0:y0 + cell, x0:x0 + cell] = np.round(thumb).astype(np.uint8)
        counts.append({"layer": layer["name"], "active": int(active.sum()), "units": int(len(inputs.unit))})
        top += line + rows * pitch + 8
    Image.fromarray(out).save(path)
    return {"counts": counts, "width": width, "height": height}


def randomization_figure_stage(folder: Path, params: dict[str, Any], checked: Artifact) -> dict[str, Any]:
    """The cascading randomization curves of one model: each method's similarity to the trained
    network's maps as more layers are randomized, with 95% intervals. `params`: the model's name, key."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on build machines or CI
    import matplotlib.pyplot as plt

    result = json.loads(checked.file("randomization.json").read_text())
    out = folder / "responses" / params["key"]
    out.mkdir(parents=True)
    path = out / "randomization.png"
    steps = result["steps"]
    if not steps or not result["methods"]:  # no class unit had a top image to explain: nothing to draw
        return {"width": 0, "height": 0}
    with plt.rc_context({"font.size": 11}):
        fig, ax = plt.subplots(figsize=(4.0, 3.0), dpi=160)
        x = np.arange(1, len(steps) + 1)
        for method, colour, label in (("guided", "#d62728", "guided backprop"), ("gradient", "#1f4e9c", "gradient")):
            entry = result["methods"].get(method)
            if not entry:
                continue
            ax.plot(x, entry["rank"], color=colour, lw=2, marker="o", ms=4, label=label)
            low = [np.nan if v is None else v for v in entry["rank_low"]]
            high = [np.nan if v is None else v for v in entry["rank_high"]]
            ax.fill_between(x, low, high, color=colour, alpha=0.15, lw=0)
        ax.set_xticks(x, [steps[0], *("+" + s for s in steps[1:])], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(-0.2, 1.05)
        ax.set_ylabel("rank corr. with trained")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=9)
        return finish_chart(fig, ax, params["name"], path)


def path_figure_stage(folder: Path, params: dict[str, Any], checked: Artifact) -> dict[str, Any]:
    """The path check of one model, per layer: the spread of its units' path scores (each preferred
    input against the mean of its top images) beside their yardsticks (the least typical top image
    against the others). `params`: the model's name, key."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on build machines or CI
    import matplotlib.pyplot as plt

    result = json.loads(checked.file("paths.json").read_text())
    out = folder / "responses" / params["key"]
    out.mkdir(parents=True)
    path = out / "paths.png"
    layers = [e for e in result["layers"] if any(e["checked"])]
    with plt.rc_context({"font.size": 11}):
        fig, ax = plt.subplots(figsize=(4.0, 3.0), dpi=160)
        x = np.arange(1, len(layers) + 1)
        for offset, key, colour, label in ((-0.18, "score", "#d62728", "preferred input"),
                                           (0.18, "reference", "#7f7f7f", "least typical top image")):
            values = [[v for v in e[key] if v is not None] for e in layers]
            if values:
                parts = ax.boxplot(values, positions=x + offset, widths=0.3, patch_artist=True, showfliers=False,
                                   medianprops={"color": "black"})
                for box in parts["boxes"]:
                    box.set(facecolor=colour, alpha=0.6)
            ax.plot([], [], color=colour, lw=6, alpha=0.6, label=label)
        ax.set_xticks(x, [e["name"] for e in layers], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(-0.3, 1.05)
        ax.set_ylabel("path score (corr.)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(frameon=False, fontsize=8, loc="lower left")
        return finish_chart(fig, ax, params["name"], path)

