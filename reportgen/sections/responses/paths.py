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
from reportgen.nets.checkpoint import load_model, torch_threads
from reportgen.nets.data import Dataset
from reportgen.optvis.hooks import forward_to
from reportgen.sections.preferred.compute import read as read_preferred
from reportgen.sections.responses.compute import ResponseFrames, load_summary

log = logging.getLogger("reportgen")


def signatures(network: nn.Module, x: torch.Tensor, paths: Sequence[str], batch_size: int = 256) -> list[np.ndarray]:
    """Per layer at `paths`, an (N, channels) float64 response pattern of each input row: a conv
    layer's channels averaged over space, a fully connected layer's units as they are."""
    found: list[list[np.ndarray]] = [[] for _ in paths]
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out = forward_to(network, x[start:start + batch_size], list(paths), grad=False)
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


def seen(x: torch.Tensor, boxes: Sequence[Sequence[int]] | None) -> torch.Tensor:
    """Each normalized input as its unit sees it: inside its receptive-field box (top, left, bottom,
    right), the training mean (0 once normalized) outside; unchanged where there are no boxes (the unit
    sees the whole image). Both kinds of image meet the network this way, so neither path score is
    about pixels the unit never sees."""
    if boxes is None:
        return x
    mask = torch.zeros_like(x[:, :1])
    for row, (top, left, bottom, right) in enumerate(boxes):
        mask[row, :, top:bottom, left:right] = 1
    return x * mask


# units whose top images one forward pass holds (x k images): bounds memory at 224x224
UNITS_PER_PASS = 16


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
    result: dict[str, Any] = {"layers": []}
    start = time.perf_counter()
    whole: list[np.ndarray] | None = None  # every test image's patterns, for units that see the whole image
    with torch_threads(params["threads"]):
        for i, (layer, rows) in enumerate(zip(layers, inputs.layers, strict=True)):
            if layer["name"] not in recorded or not len(rows.unit):
                continue
            j, info = recorded[layer["name"]]
            top = frames.layers[j].top[rows.unit]
            along = module_paths[:i + 1]
            box = layer["box"]
            drawn = signatures(net, seen(norm.images(rows.images[:, 0]), [box] * len(rows.unit) if box else None),
                               along)
            if box and info["rf_box"]:
                parts: list[list[np.ndarray]] = [[] for _ in along]
                for s in range(0, len(rows.unit), UNITS_PER_PASS):
                    units = rows.unit[s:s + UNITS_PER_PASS]
                    chunk = top[s:s + UNITS_PER_PASS]
                    x = norm.images(images[np.maximum(chunk, 0).ravel()])
                    boxes = [info["rf_box"][u][k] for u in units for k in range(chunk.shape[1])]
                    for part, found in zip(parts, signatures(net, seen(x, boxes), along), strict=True):
                        part.append(found.reshape(len(units), chunk.shape[1], -1))
                tops = [np.concatenate(part) for part in parts]
            else:
                if whole is None:
                    whole = signatures(net, norm.images(images), module_paths)
                tops = [t[np.maximum(top, 0)] for t in whole[:i + 1]]
            found = path_scores(drawn, tops, top >= 0)
            checked = found.checked & ~rows.flat[:, 0]
            result["layers"].append({
                "name": layer["name"], "units": rows.unit.tolist(), "checked": checked.tolist(),
                "flagged": (found.flagged & checked).tolist(), "receptive_field": bool(box),
                "score": [float(v) if ok else None for v, ok in zip(found.score, checked, strict=True)],
                "reference": [float(v) if ok else None for v, ok in zip(found.reference, checked, strict=True)]})
    result["seconds"] = round(time.perf_counter() - start, 2)
    (folder / "paths.json").write_text(json.dumps(result, indent=1))
    units = sum(sum(e["checked"]) for e in result["layers"])
    log.info("path check: %d units in %.1fs", units, result["seconds"])
    return {"units": units}
