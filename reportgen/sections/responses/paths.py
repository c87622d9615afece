"""The path check of Geirhos et al. (2024, "Don't trust your eyes: on the (un)reliability of feature
visualizations"): a preferred input explains a unit only if the network processes it the way it
processes the natural images that drive that unit; a synthetic image can reach the same activation
along a different path. For each unit with a preferred input (section 2) and top test images
(section 3), the response pattern of every layer up to the unit's own (each layer's channels, averaged
over space) is compared between the preferred input and the mean of the top images, by Pearson
correlation, and averaged over those layers: the path score. Its yardstick is the same score of each
top image against the mean of the others; a unit whose preferred input scores below the least typical
of its own top images is flagged as processed unlike them.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reportgen.cache import Artifact
from reportgen.nets.checkpoint import Normalizer, load_model, torch_threads
from reportgen.nets.data import Dataset
from reportgen.optvis.hooks import forward_to
from reportgen.optvis.render import in_channels_last
from reportgen.sections.preferred.compute import read as read_preferred
from reportgen.sections.responses.compute import ResponseFrames, load_summary

log = logging.getLogger("reportgen")


def signatures(network: nn.Module, x: torch.Tensor, paths: Sequence[str], batch_size: int = 256,
               layout: torch.memory_format = torch.contiguous_format) -> list[np.ndarray]:
    """Per layer at `paths`, an (N, channels) float64 response pattern of each input row: a conv
    layer's channels averaged over space, a fully connected layer's units as they are. `layout`: the
    memory format the inputs are put in (`optvis.render.in_channels_last` gives it)."""
    found: list[list[np.ndarray]] = [[] for _ in paths]
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            out = forward_to(network, batch.contiguous(memory_format=layout) if batch.dim() == 4 else batch,
                             list(paths), grad=False)
            for i, path in enumerate(paths):
                value = out[path].float()
                value = value.flatten(2).mean(2) if value.dim() > 2 else value.flatten(1)
                found[i].append(value.double().cpu().numpy())
    return [np.concatenate(parts) if parts else np.zeros((0, 0)) for parts in found]


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (..., C) arrays; NaN where a row does not vary."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    norm = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(-1) / np.where(norm > 0, norm, 1), np.nan)


@dataclass(frozen=True)
class PathScores:
    """Per unit: the preferred input's path score, the least typical top image's (the yardstick), and
    whether the preferred input fell below it. NaN scores: a unit with fewer than 2 top images, or
    whose layers do not vary; such a unit is not checked (checked False)."""

    score: np.ndarray        # (units,)
    reference: np.ndarray    # (units,)
    flagged: np.ndarray      # (units,) bool
    checked: np.ndarray      # (units,) bool


def path_scores(preferred: Sequence[np.ndarray], top: Sequence[np.ndarray], valid: np.ndarray) -> PathScores:
    """`preferred`: per layer on the path, (units, C) patterns of each unit's preferred input; `top`: per
    layer, (units, k, C) patterns of its top images; `valid`: (units, k) which top images exist."""
    units, k = valid.shape
    weight = valid[..., None].astype(np.float64)
    count = valid.sum(1)
    pref_r, loo_r = [], []
    for p, t in zip(preferred, top, strict=True):
        total = (t * weight).sum(1)                                      # (units, C)
        mean = total / np.maximum(count, 1)[:, None]
        pref_r.append(_corr(p, mean))
        # each top image against the mean of the others
        others = (total[:, None, :] - t) / np.maximum(count - 1, 1)[:, None, None]
        loo_r.append(np.where(valid, _corr(t, others), np.nan))
    with warnings.catch_warnings():  # a unit whose every layer is flat averages NaNs: it is not checked
        warnings.simplefilter("ignore", RuntimeWarning)
        score = np.nanmean(np.stack(pref_r), axis=0) if pref_r else np.full(units, np.nan)
        per_image = np.nanmean(np.stack(loo_r), axis=0) if loo_r else np.full((units, k), np.nan)
        reference = np.nanmin(np.where(valid, per_image, np.nan), axis=1)
    checked = (count >= 2) & np.isfinite(score) & np.isfinite(reference)
    return PathScores(score, reference, checked & (score < reference), checked)


def seen(x: torch.Tensor, boxes: Sequence[Sequence[int]] | None,
         window: tuple[int, int] | None = None) -> torch.Tensor:
    """Each normalized input as its unit sees it: inside its receptive-field box (top, left, bottom,
    right), the training mean (0 once normalized) outside; unchanged where there are no boxes (the unit
    sees the whole image). Both kinds of image meet the network this way, so neither path score is
    about pixels the unit never sees. With a `window` (height, width, at least every box's size) each
    box is cut out into a window of that size instead of kept in a whole image of zeros: the network
    then runs on the receptive field alone (a ResNet-18's layer1 on 46x46 of 224x224), and the
    patterns average over the positions that see the box rather than over a mostly empty image. A box
    clipped at the image's top or left edge sits at the window's bottom or right, where the image
    would have been."""
    if boxes is None:
        return x
    if window is None:
        mask = torch.zeros_like(x[:, :1])
        for row, (top, left, bottom, right) in enumerate(boxes):
            mask[row, :, top:bottom, left:right] = 1
        return x * mask
    out = x.new_zeros(len(x), x.shape[1], *window)
    for row, (top, left, bottom, right) in enumerate(boxes):
        down = window[0] - (bottom - top) if top == 0 else 0
        across = window[1] - (right - left) if left == 0 else 0
        out[row, :, down:down + bottom - top, across:across + right - left] = x[row, :, top:bottom, left:right]
    return out


def window_size(layer: dict[str, Any], boxes: Sequence[Sequence[Sequence[int]]]) -> tuple[int, int] | None:
    """The window the path check cuts a layer's boxes into: present only where section 2 checked that
    the network computes this layer from a crop (its `window`), and as large as that window or the
    largest box."""
    if not layer.get("window"):
        return None
    top, left, bottom, right = layer["window"][:4]
    every = [layer["box"], *(box for unit in boxes for box in unit)]
    return (max(bottom - top, *(b[2] - b[0] for b in every)), max(right - left, *(b[3] - b[1] for b in every)))


# top images (each seen through one box) one forward pass holds: bounds memory at 224x224
IMAGES_PER_PASS = 144


def _seen_tops(net: nn.Module, norm: Normalizer, images: np.ndarray, top: np.ndarray,
               boxes: Sequence[Sequence[Sequence[int]]], window: tuple[int, int] | None, along: Sequence[str],
               layout: torch.memory_format, drawn: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per layer along the path, the (units, k, C) patterns of each unit's top images, each seen
    through its box (`seen`). An image seen through the same box for several units runs once: in a
    ResNet-18's layer3, 2,302 top images were 1,601 distinct (image, box) pairs. Missing top images
    (-1) get any pattern; `path_scores` leaves them out."""
    pairs: dict[tuple[int, tuple[int, ...]], int] = {}
    index = np.zeros(top.shape, np.int64)
    for u, k in zip(*np.nonzero(top >= 0), strict=True):
        index[u, k] = pairs.setdefault((int(top[u, k]), tuple(boxes[u][k])), len(pairs))
    if not pairs:
        return [np.zeros((*top.shape, d.shape[1])) for d in drawn]
    keys = list(pairs)
    parts: list[list[np.ndarray]] = [[] for _ in along]
    for s in range(0, len(keys), IMAGES_PER_PASS):
        chunk = keys[s:s + IMAGES_PER_PASS]
        x = seen(norm.images(images[[image for image, _ in chunk]]), [box for _, box in chunk], window)
        for part, found in zip(parts, signatures(net, x, along, layout=layout), strict=True):
            part.append(found)
    return [np.concatenate(part)[index] for part in parts]


def path_stage(folder: Path, params: dict[str, Any], dataset_art: Artifact, model_art: Artifact,
               computed: Artifact, preferred: Artifact) -> dict[str, Any]:
    """The path check of one model: every unit with a preferred input (section 2's `preferred`
    artifact; its first seed) and top test images (section 3's `computed`), unless the preferred input
    is flat (not a result); conv units' images seen through their receptive fields -> paths.json, per
    layer each unit's path score, its yardstick and whether it is flagged. `params`: device, the torch
    threads (keyed, as sums split across threads round differently)."""
    device = torch.device(params["device"])
    trained = load_model(model_art.file(model_art.manifest["file"]), device)
    net, norm = trained.network, trained.normalizer
    images, _ = Dataset.from_artifact(dataset_art).part("test")
    frames = ResponseFrames.load(computed)
    recorded = {layer["name"]: (j, layer) for j, layer in enumerate(load_summary(computed)["layers"])}
    inputs = read_preferred(preferred)
    layers = inputs.summary["layers"]
    module_paths = [layer["path"] for layer in layers]
    start = time.perf_counter()

    def check(layout: torch.memory_format) -> list[dict[str, Any]]:
        found_layers: list[dict[str, Any]] = []
        whole: list[np.ndarray] | None = None  # every test image's patterns, for units that see the whole image
        for i, (layer, rows) in enumerate(zip(layers, inputs.layers, strict=True)):
            if layer["name"] not in recorded or not len(rows.unit):
                continue
            j, info = recorded[layer["name"]]
            top = frames.layers[j].top[rows.unit]
            along = module_paths[:i + 1]
            box = layer["box"]
            window = window_size(layer, [info["rf_box"][u] for u in rows.unit]) if box and info["rf_box"] else None
            drawn = signatures(net, seen(norm.images(rows.images[:, 0]), [box] * len(rows.unit) if box else None,
                                         window), along, layout=layout)
            if box and info["rf_box"]:
                tops = _seen_tops(net, norm, images, top, [info["rf_box"][u] for u in rows.unit], window, along,
                                  layout, drawn)
            else:
                if whole is None:
                    whole = signatures(net, norm.images(images), module_paths, layout=layout)
                tops = [t[np.maximum(top, 0)] for t in whole[:i + 1]]
            found = path_scores(drawn, tops, top >= 0)
            checked = found.checked & ~rows.flat[:, 0]
            found_layers.append({
                "name": layer["name"], "units": rows.unit.tolist(), "checked": checked.tolist(),
                "flagged": (found.flagged & checked).tolist(), "receptive_field": bool(box), "window": window,
                "score": [float(v) if ok else None for v, ok in zip(found.score, checked, strict=True)],
                "reference": [float(v) if ok else None for v, ok in zip(found.reference, checked, strict=True)]})
        return found_layers

    with torch_threads(params["threads"]):
        # channels-last: 1.4x the images/s of the default layout for a ResNet-18 at 224x224 on 2 threads
        result: dict[str, Any] = {"layers": in_channels_last(net, check)}
    result["seconds"] = round(time.perf_counter() - start, 2)
    (folder / "paths.json").write_text(json.dumps(result, indent=1))
    units = sum(sum(e["checked"]) for e in result["layers"])
    log.info("path check: %d units in %.1fs", units, result["seconds"])
    return {"units": units}
