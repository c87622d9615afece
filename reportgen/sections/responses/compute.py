"""Section 3's compute stage: one model's activation responses to the test images, as data.

`choose` turns the [responses] config and the evaluate stage's predictions into explicit settings
(class indices, the shared images of the activated-units figure), so the stage key holds exact
choices, never display names. `responses_stage` then runs ONE streamed pass (recording.py) and
writes:

- `responses.npz`: the recording (top-k per unit, summaries, class correlations), without kept maps;
- `frames.npz`: the per-unit responses of the movie frames and of the activated-units images, the
  activation maps of the feature-map layer for one input, and guided-backprop images of top patches;
- `summary.json`: the chosen images, class preferences, per-class accuracy and measured claims.

Nothing here draws; draw.py turns these files into pictures and movies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reportgen.cache import Artifact, layered, unlayered
from reportgen.config import ResponsesConfig
from reportgen.errors import SettingError
from reportgen.nets.checkpoint import load_model, torch_threads
from reportgen.nets.data import Dataset
from reportgen.nets.layers import LayerError, default_feature_layer, receptive_fields, unit_layers
from reportgen.sections.responses import randomization
from reportgen.sections.responses.recording import (
    class_accuracy,
    class_preferences,
    measured_claims,
    record_responses,
    top_patch_boxes,
    top_patch_gradients,
    unit_groups,
)
from reportgen.stats import bootstrap_ci

log = logging.getLogger("reportgen")


def confusions(predictions: Sequence[tuple[np.ndarray, np.ndarray]], classes: int) -> np.ndarray:
    """(K, K) test images of true class i predicted as j, summed over models (predictions of none of
    the data's classes, the 'other' column of a network with more outputs, are no confusion of two)."""
    total = np.zeros((classes, classes + 1), np.int64)
    for probs, labels in predictions:
        np.add.at(total, (labels, probs.argmax(1)), 1)
    return total[:, :classes]


def check_classes(cfg: ResponsesConfig, class_names: Sequence[str]) -> None:
    """The classes section 3's settings name must be classes of the data: a SettingError naming the
    exact key, checked right after the data stage (before any model trains) and again by `choose`."""
    names = list(class_names)
    for key, given in (("classes", list(cfg.classes)), ("third", [cfg.third] if cfg.third else []),
                       ("group", list(cfg.group))):
        unknown = [c for c in given if c not in names]
        if unknown:
            raise SettingError(f"responses.{key}: {', '.join(map(repr, unknown))} "
                               f"{'is not a class' if len(unknown) == 1 else 'are not classes'} of the data; "
                               f"known: {', '.join(map(repr, names))}")


def choose(cfg: ResponsesConfig, group: Sequence[str], class_names: Sequence[str],
           predictions: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Explicit settings of the stage: classes A, B and the third class (chosen from the models'
    confusions when the config leaves them empty) and the group of the shared-unit count."""
    names = list(class_names)
    check_classes(cfg, class_names)
    mixed = confusions(predictions, len(names))
    mixed = mixed + mixed.T
    # what the choice rests on, so that the post can say where a tie decided it
    ties: dict[str, Any] = {"pair": [], "pair_count": None, "third": [], "third_count": None}
    if cfg.classes:
        a, b = names.index(cfg.classes[0]), names.index(cfg.classes[1])
    else:  # the most confused pair; ties go to the lower class indices
        pairs = [(int(mixed[i, j]), -i, -j) for i in range(len(names)) for j in range(i + 1, len(names))]
        count, a, b = max(pairs)
        a, b = -a, -b
        ties["pair"] = [[-i, -j] for n, i, j in sorted(pairs, reverse=True) if n == count and (-i, -j) != (a, b)]
        ties["pair_count"] = count
    rest = [c for c in range(len(names)) if c not in (a, b)]
    if cfg.third:
        third = names.index(cfg.third)
    elif rest:  # the class least confused with A and B: the write-up's non-faces beside two face classes
        third = min(rest, key=lambda c: (int(mixed[c, a] + mixed[c, b]), c))
        ties["third_count"] = int(mixed[third, a] + mixed[third, b])
        ties["third"] = [c for c in rest if c != third and int(mixed[c, a] + mixed[c, b]) == ties["third_count"]]
    else:
        third = -1
    members = [c for c in (cfg.group or group) if c in names] or [names[a], names[b]]
    return {"a": a, "b": b, "third": third, "per_class": cfg.per_class, "low_confidence": cfg.low_confidence,
            "k": cfg.k, "feature_layer": cfg.feature_layer, "group": members, "min_fraction": cfg.min_fraction,
            "patches": cfg.patches, "atlas_gradients": cfg.atlas_gradients, "atlas_method": cfg.atlas_method,
            "ties": ties}


def _ranked(labels: np.ndarray, probs: np.ndarray, c: int) -> np.ndarray:
    """Test images of class c, most probable (for c) first; ties by index."""
    members = np.flatnonzero(labels == c)
    return members[np.lexsort((members, -probs[members, c]))]


def _spread(ranked: np.ndarray, n: int) -> np.ndarray:
    """n images evenly spaced over a ranking (all of them when there are fewer), in ranking order."""
    if len(ranked) <= n:
        return ranked
    return ranked[np.unique(np.round(np.linspace(0, len(ranked) - 1, n)).astype(np.int64))]


def movie_images(labels: np.ndarray, probs: np.ndarray, settings: dict[str, Any]) -> dict[str, list[int]]:
    """Test image indices of the two movies, in frame order.

    - "movie": `per_class` images of A spread evenly over their ranking by P(A), most probable first,
      then the same for B, so the movie runs from confident to doubtful twice;
    - "low": the `low_confidence` images of A with the lowest P(A), then of B, each most probable first,
      then as many images of the third class spread over its ranking;
    - "shown": the most probable image of A and of B (activated units, feature maps).
    """
    a, b, third = settings["a"], settings["b"], settings["third"]
    movie = [*_spread(_ranked(labels, probs, a), settings["per_class"]),
             *_spread(_ranked(labels, probs, b), settings["per_class"])]
    low = []
    for c in (a, b):
        low += list(_ranked(labels, probs, c)[-settings["low_confidence"]:])
    if third >= 0:
        low += list(_spread(_ranked(labels, probs, third), settings["low_confidence"]))
    shown = [int(_ranked(labels, probs, c)[0]) for c in (a, b)]
    return {"movie": [int(i) for i in movie], "low": [int(i) for i in low], "shown": shown}


def sampled_units(top_value: np.ndarray, n: int) -> list[int]:
    """The post's sample of a layer's units: the n with the strongest best response (ties: lower index)."""
    best = np.nan_to_num(top_value[:, 0], nan=-np.inf)
    return [int(u) for u in np.lexsort((np.arange(len(best)), -best))[:n]]


def responses_stage(folder: Path, params: dict[str, Any], dataset_art: Artifact, model_art: Artifact, *,
                    batch_size: int = 200) -> dict[str, Any]:
    """One model's section-3 data (see the module docstring). `params`: `choose`'s settings, the test
    images of `movie_images` (chosen from the evaluate stage's predictions, so a new uncertainty
    threshold, which re-evaluates, changes no key here), the device and the precision of guided
    backpropagation."""
    settings, chosen = params["responses"], params["images"]
    precision = getattr(torch, params.get("precision", "float32"))
    device = torch.device(params["device"])
    images, labels = Dataset.from_artifact(dataset_art).part("test")
    trained = load_model(model_art.file(model_art.manifest["file"]), device)
    mean = trained.normalizer.mean.flatten().tolist()
    std = trained.normalizer.std.flatten().tolist()
    keep = [*chosen["movie"], *chosen["low"], *chosen["shown"]]
    timings = {}
    start = time.perf_counter()
    rec = record_responses(trained.network, images, labels, mean, std, class_names=trained.class_names,
                           k=settings["k"], keep=keep, batch_size=batch_size, outputs=trained.outputs,
                           layers=params.get("layers") or None)
    timings["pass"] = time.perf_counter() - start
    try:
        feature = rec.layer(settings["feature_layer"]) if settings["feature_layer"] else \
            default_feature_layer(rec.layers)
    except LayerError as e:
        raise LayerError(f"responses.feature_layer: {e}") from None
    if feature.kind != "conv":
        raise LayerError(f"responses.feature_layer: {feature.name!r} is not a convolutional layer")
    feature_maps = feature.kept[len(keep) - 2]  # the activated-units image of class A
    kept_units = [layer.kept_units.astype(np.float32) for layer in rec.layers]  # before the maps are dropped
    for layer in rec.layers:
        layer.kept = layer.kept[:0]  # the maps were needed for the feature grid only: keep the cache small

    start = time.perf_counter()
    fields = receptive_fields(trained.network, trained.input_shape)
    side = images.shape[1]
    layers_info, frames = [], []
    for layer, units in zip(rec.layers, kept_units, strict=True):
        rf = fields.get(layer.path)
        size = [min(int(s), side) for s in rf.size] if rf is not None and layer.kind == "conv" else [side, side]
        sample = sampled_units(layer.top_value, settings["patches"])
        # rows to explain: every top image of the sampled units, and each unit's best `atlas_gradients` images
        wanted = {(u, j) for u in sample for j in range(rec.k)}
        wanted |= {(u, j) for u in range(layer.units) for j in range(settings["atlas_gradients"])}
        rows = sorted((u, j) for u, j in wanted if layer.top_image[u, j] >= 0)
        # the atlas's pictures as plain gradients too, unless it is told to show guided backprop: the
        # randomization test decides between them once both exist (draw.atlas_method)
        plain = [] if settings["atlas_method"] == "guided" else [
            (u, j) for u in range(layer.units) for j in range(settings["atlas_gradients"])
            if layer.top_image[u, j] >= 0]
        frames.append(LayerFrames(units=units, top=layer.top_image, peak=layer.top_value,
                                  grad_rows=np.asarray(rows, np.int64).reshape(-1, 2),
                                  grads=top_patch_gradients(trained.network, layer, rows, images, mean, std,
                                                            precision=precision),
                                  plain_rows=np.asarray(plain, np.int64).reshape(-1, 2),
                                  plain=top_patch_gradients(trained.network, layer, plain, images, mean, std,
                                                            precision=precision, mode="gradient")))
        boxes = top_patch_boxes(rf, layer, side) if rf is not None and layer.kind == "conv" else None
        layers_info.append({"name": layer.name, "kind": layer.kind, "units": layer.units,
                            "shape": list(layer.shape), "rf": size, "rf_box": boxes, "sample": sample})
    timings["gradients"] = time.perf_counter() - start
    ResponseFrames(np.asarray(keep, np.int64), feature_maps, frames).save(folder / "frames.npz")
    rec.save(folder / "responses.npz")

    accuracy = class_accuracy(rec)
    summary = {
        "classes": list(trained.class_names), "a": settings["a"], "b": settings["b"], "third": settings["third"],
        "group": settings["group"], "min_fraction": settings["min_fraction"], "ties": settings["ties"], **chosen,
        "feature_layer": feature.name, "k": rec.k, "layers": layers_info,
        "accuracy": [None if np.isnan(v) else float(v) for v in accuracy],
        "test_counts": rec.class_counts.tolist(),
        "movie_p": [float(rec.probs[i, rec.labels[i]]) if rec.probs.shape[1] > rec.labels[i] else float("nan")
                    for i in chosen["movie"]],
        "low_top": [int(c) for c in rec.probs[chosen["low"]].argmax(1)] if chosen["low"] else [],
        "preferences": [_preferences(rec, layer.name) for layer in rec.layers],
        "claims": [_claims(c) for c in measured_claims(rec, settings["group"], settings["min_fraction"])],
        "class_corr": [np.where(np.isfinite(layer.class_corr), layer.class_corr, np.nan).tolist()
                       for layer in rec.layers],
        "groups": [{key: value.tolist() for key, value in unit_groups(rec, layer.name, settings["group"],
                                                                        settings["min_fraction"]).items()}
                   for layer in rec.layers],
        "seconds": timings,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, allow_nan=True))
    log.info("responses: pass %.1fs, guided backprop %.1fs", timings["pass"], timings["gradients"])
    return {"seconds": {k: round(v, 2) for k, v in timings.items()}}


def _preferences(rec: Any, layer: str) -> dict[str, Any]:
    prefs = class_preferences(rec, layer)
    return {"layer": prefs.layer, "unit_counts": prefs.unit_counts.tolist(), "counts": prefs.counts.tolist(),
            "expected": prefs.expected.tolist(), "ratio": prefs.ratio.tolist(), "most": prefs.most,
            "least": prefs.least, "ranked": class_preferences(rec, layer, len(rec.class_names)).most}


def _claims(claim: Any) -> dict[str, Any]:
    values = asdict(claim)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}


@dataclass(frozen=True)
class LayerFrames:
    """What section 3's drawings need of one layer, beside the summary: responses to the kept images
    and each unit's top images with their guided-backprop pictures."""

    units: np.ndarray      # (kept images, units) responses to the kept images (the movies', then two shown)
    top: np.ndarray        # (units, k) test-image index of each unit's top images; -1 where there is none
    peak: np.ndarray       # (units, k) the responses to them
    grad_rows: np.ndarray  # (pictures, 2) the (unit, rank) of each guided-backprop picture
    grads: np.ndarray      # (pictures, H, W, C) uint8 guided-backprop pictures
    plain_rows: np.ndarray  # (pictures, 2) the (unit, rank) of each plain-gradient picture (the atlas's)
    plain: np.ndarray       # (pictures, H, W, C) uint8 plain-gradient pictures; none with atlas_method "guided"


@dataclass(frozen=True)
class ResponseFrames:
    """frames.npz: the kept images' indices, the feature maps of class A's shown image, and per layer
    its `LayerFrames`."""

    keep: np.ndarray
    feature_maps: np.ndarray
    layers: list[LayerFrames]

    def save(self, path: Path) -> None:
        np.savez(path, keep=self.keep, feature_maps=self.feature_maps, layers=np.array(len(self.layers)),
                 **layered(self.layers))

    @classmethod
    def load(cls, artifact: Artifact) -> ResponseFrames:
        with np.load(artifact.file("frames.npz")) as z:
            return cls(z["keep"], z["feature_maps"], unlayered(LayerFrames, z, int(z["layers"])))


def load_summary(artifact: Artifact) -> dict[str, Any]:
    return json.loads(artifact.file("summary.json").read_text())


def randomization_stage(folder: Path, params: dict[str, Any], dataset_art: Artifact, model_art: Artifact,
                        computed: Artifact) -> dict[str, Any]:
    """The cascading randomization test (randomization.py) of one model: for each class unit, its
    `per_class` top test images; their guided-backprop and plain-gradient maps of that unit, compared
    with those of the network randomized from the output layer down -> randomization.json (mean and
    95% bootstrap interval over the images, per step and method). `params`: per_class, seed, device,
    the model's unit layers by module path, and the torch threads (keyed: sums split across threads
    round differently)."""
    device = torch.device(params["device"])
    trained = load_model(model_art.file(model_art.manifest["file"]), device)
    images, _ = Dataset.from_artifact(dataset_art).part("test")
    frames = ResponseFrames.load(computed)
    layers = unit_layers(trained.network, trained.input_shape, params.get("layers") or [])
    top = frames.layers[-1].top
    outputs = trained.outputs if trained.outputs is not None else range(len(trained.class_names))
    rows = [(int(top[unit, j]), int(unit)) for unit in outputs for j in range(min(params["per_class"], top.shape[1]))
            if top[unit, j] >= 0]
    result: dict[str, Any] = {"rows": len(rows), "steps": [], "methods": {}}
    if rows:
        x = trained.normalizer.images(images[[i for i, _ in rows]])
        with torch_threads(params["threads"]):
            found = randomization.cascade(trained.network, layers, x, [u for _, u in rows], seed=params["seed"])
        result["steps"] = found.steps
        for method in randomization.METHODS:
            entry = result["methods"][method] = {}
            for measure, values in (("rank", found.rank[method]), ("ssim", found.ssim[method])):
                cis = [bootstrap_ci(step) if len(step) > 1 else None for step in values]
                entry[measure] = [float(step.mean()) for step in values]
                entry[f"{measure}_low"] = [ci.low if ci else None for ci in cis]
                entry[f"{measure}_high"] = [ci.high if ci else None for ci in cis]
    (folder / "randomization.json").write_text(json.dumps(result, indent=1))
    return {"rows": len(rows)}

