"""Activation responses of trained units to test images, for any `nn.Module`, from ONE streamed pass.

`record_responses` runs the test images through the network in batches with forward hooks that
reduce each unit layer's output on the spot, so memory is bounded by the batch and the layer sizes,
never by the number of images. Per unit it keeps:

- the running top-k images (value of the spatial maximum, image index, its position), equal to a
  full argsort of all images by that value, ties going to the lower image index;
- summaries: mean and max, the fraction of images on which the unit is active, per-class means
  and per-class active fractions, and the sums that give exact mean pattern correlations within
  and between classes;
- the complete outputs of a few chosen images (the response movies and feature-map figures).

Definitions used throughout (one channel c of a layer, one image n):

- response r[n, c]: the spatial mean of the channel's map (for a fully connected unit, its value).
  It is what a movie cell shows and what means, class means and pattern correlations use.
- peak p[n, c]: the spatial maximum (for a fully connected unit, its value). Top-k ranks images by it.
- active: p[n, c] > 0, i.e. the unit fires somewhere in the image.

Also here: guided backpropagation / deconvnet images of one unit, and the measured claims and class
preferences computed from a recording. Nothing here draws or reads the config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reportgen.nets.checkpoint import Normalizer, class_probabilities
from reportgen.nets.layers import (
    LayerError,
    ReceptiveField,
    UnitLayer,
    find_layer,
    receptive_box,
    unit_layers,
)
from reportgen.optvis.hooks import eval_mode, first_tensor, forward_to, relus_replaced

FORMAT = "reportgen.responses/2"  # /2: per-layer arrays named <key>_<layer index>, as in every artifact
DEFAULT_K = 9


@dataclass
class LayerResponses:
    """What one unit layer did over the test images (C units, K classes, k top images, M kept images)."""

    name: str
    path: str
    kind: str                   # "conv" or "fc"
    shape: tuple[int, ...]      # output shape without the batch axis: (C, H, W) or (C,)
    top_value: np.ndarray       # (C, k) float32 peaks, descending; nan where missing: the test set has fewer
    #                             than k images above the unit's lowest peak (a silent unit has none)
    top_image: np.ndarray       # (C, k) int64 test image indices; -1 where missing
    top_pos: np.ndarray         # (C, k, 2) int64 (row, column) of the peak in the map; (0, 0) for fc units
    mean: np.ndarray            # (C,) mean response over all images
    max: np.ndarray             # (C,) largest peak (top_value[:, 0] where the unit has a top image)
    frac_active: np.ndarray     # (C,) fraction of images with peak > 0
    class_mean: np.ndarray      # (K, C) mean response over the images of each class
    class_active: np.ndarray    # (K, C) fraction of each class's images with peak > 0
    class_corr: np.ndarray      # (K, K) mean Pearson correlation of response patterns, image of class a vs class b
    corr_count: np.ndarray      # (K,) images per class whose pattern is not constant (the ones correlated)
    kept: np.ndarray            # (M, *shape) float32 complete outputs of the kept images, in the order asked

    @property
    def units(self) -> int:
        return self.shape[0]

    @property
    def kept_units(self) -> np.ndarray:
        """(M, C) responses of the kept images (spatial means for conv layers): one movie frame per row."""
        return self.kept.reshape(len(self.kept), self.units, -1).mean(axis=2)


@dataclass
class Responses:
    """A recording: one `LayerResponses` per unit layer plus what the whole test set needs."""

    layers: list[LayerResponses]
    class_names: tuple[str, ...]
    labels: np.ndarray          # (N,) int64 true classes of the test images
    probs: np.ndarray           # (N, P) float32 class probabilities (P = K, or K + 1 with an 'other' column)
    keep: np.ndarray            # (M,) int64 indices of the kept images, in the order asked
    k: int
    meta: dict[str, str] = field(default_factory=dict)

    def layer(self, name: str) -> LayerResponses:
        """The layer called `name` (or with that module path)."""
        for layer in self.layers:
            if name in (layer.name, layer.path):
                return layer
        raise LayerError(f"unknown layer {name!r}; known: {', '.join(la.name for la in self.layers)}")

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))

    def save(self, path: Path) -> None:
        """One uncompressed npz (see `_ARRAYS` for the per-layer keys), written atomically."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT), "k": np.array(self.k), "class_names": np.array(self.class_names, dtype=str),
            "labels": self.labels, "probs": self.probs, "keep": self.keep,
            "meta_keys": np.array(list(self.meta), dtype=str), "meta_values": np.array(list(self.meta.values()),
                                                                                        dtype=str),
            "layer_names": np.array([la.name for la in self.layers], dtype=str),
            "layer_paths": np.array([la.path for la in self.layers], dtype=str),
            "layer_kinds": np.array([la.kind for la in self.layers], dtype=str),
            "layer_shapes": np.array([list(la.shape) + [0] * (3 - len(la.shape)) for la in self.layers],
                                     dtype=np.int64).reshape(-1, 3),
        }
        for i, layer in enumerate(self.layers):
            for key in _ARRAYS:
                arrays[f"{key}_{i}"] = getattr(layer, key)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Responses:
        """Read a file written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} file")
            layers = []
            for i, (name, lpath, kind, shape) in enumerate(zip(z["layer_names"], z["layer_paths"], z["layer_kinds"],
                                                               z["layer_shapes"], strict=True)):
                dims = tuple(int(s) for s in shape if s > 0)
                layers.append(LayerResponses(str(name), str(lpath), str(kind), dims,
                                             **{key: z[f"{key}_{i}"] for key in _ARRAYS}))
            return cls(layers, tuple(str(n) for n in z["class_names"]), z["labels"], z["probs"], z["keep"],
                       int(z["k"]), dict(zip(map(str, z["meta_keys"]), map(str, z["meta_values"]), strict=True)))


_ARRAYS = ("top_value", "top_image", "top_pos", "mean", "max", "frac_active", "class_mean", "class_active",
           "class_corr", "corr_count", "kept")


class _Accumulator:
    """Running reductions of one layer's outputs; `update` sees each batch once, inside the forward hook."""

    def __init__(self, layer: UnitLayer, k: int, classes: int, keep: np.ndarray) -> None:
        self.layer, self.k, self.classes = layer, k, classes
        c = layer.units
        self.top_value = np.empty((c, 0), np.float32)
        self.top_image = np.empty((c, 0), np.int64)
        self.top_flat = np.empty((c, 0), np.int64)  # flat position in the map
        self.sum = np.zeros(c)
        self.max = np.full(c, -np.inf)
        self.min = np.full(c, np.inf)   # of the peaks: what a top image must beat to be one
        self.active = np.zeros(c, np.int64)
        self.class_sum = np.zeros((classes, c))
        self.class_active = np.zeros((classes, c), np.int64)
        self.pattern_sum = np.zeros((classes, c))  # sums of standardized patterns per class
        self.pattern_count = np.zeros(classes, np.int64)
        self.kept = np.zeros((len(keep), *layer.shape), np.float32)
        self.slots: dict[int, list[int]] = {}
        for slot, index in enumerate(keep.tolist()):
            self.slots.setdefault(index, []).append(slot)
        self.done = False

    def update(self, output: torch.Tensor, indices: np.ndarray, onehot: np.ndarray) -> None:
        a = output.detach().float()
        if a.dim() not in (2, 4) or tuple(a.shape[1:]) != self.layer.shape:
            raise LayerError(f"layer {self.layer.name!r} produced {tuple(a.shape[1:])}; only (C,) and (C, H, W) "
                             f"outputs are recorded, expected {self.layer.shape}")
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        peak_t, where_t = flat.max(dim=2)  # first maximum in row-major order, like np.argmax
        peak, where = peak_t.cpu().numpy(), where_t.cpu().numpy()
        response = flat.mean(dim=2).cpu().numpy().astype(np.float64)  # a float64 mean doubles the pass's cost
        self._merge_top(peak, where, indices)
        on = peak > 0
        self.sum += response.sum(0)
        self.max = np.maximum(self.max, peak.max(0))
        self.min = np.minimum(self.min, peak.min(0))
        self.active += on.sum(0)
        self.class_sum += onehot.T @ response
        self.class_active += (onehot.T @ on).astype(np.int64)
        # Pearson correlation of two images' patterns = dot product of the standardized patterns; per-class
        # sums of those give every within- and between-class mean exactly, without keeping the patterns
        centred = response - response.mean(1, keepdims=True)
        norm = np.linalg.norm(centred, axis=1)
        valid = norm > 1e-12 * np.maximum(np.abs(response).max(1), 1e-30)
        standardized = np.where(valid[:, None], centred / np.where(valid, norm, 1)[:, None], 0)
        self.pattern_sum += onehot.T @ standardized
        self.pattern_count += (onehot.T @ valid).astype(np.int64)
        for row, index in enumerate(indices.tolist()):
            for slot in self.slots.get(index, ()):
                self.kept[slot] = output[row].detach().float().cpu().numpy()

    def _merge_top(self, peak: np.ndarray, where: np.ndarray, indices: np.ndarray) -> None:
        values = np.concatenate([self.top_value, peak.T], axis=1)
        images = np.concatenate([self.top_image, np.broadcast_to(indices, peak.T.shape)], axis=1)
        flats = np.concatenate([self.top_flat, where.T], axis=1)
        # descending value, then ascending image index: the order a stable full argsort would give
        order = np.lexsort((images, -values), axis=-1)[:, :self.k]
        self.top_value = np.take_along_axis(values, order, 1)
        self.top_image = np.take_along_axis(images, order, 1)
        self.top_flat = np.take_along_axis(flats, order, 1)

    def finish(self, counts: np.ndarray) -> LayerResponses:
        c, n = self.layer.units, int(counts.sum())
        missing = self.k - self.top_value.shape[1]
        top_value = np.pad(self.top_value, ((0, 0), (0, missing)), constant_values=np.nan)
        top_image = np.pad(self.top_image, ((0, 0), (0, missing)), constant_values=-1)
        # an image that drives a unit no harder than its weakest image does is no top image: a silent ReLU
        # unit's zeros would otherwise name the first k test images (all of the first class) as its top ones
        floor = ~(top_value > self.min[:, None])
        top_value[floor], top_image[floor] = np.nan, -1
        top_flat = np.pad(self.top_flat, ((0, 0), (0, missing)))
        width = self.layer.shape[2] if len(self.layer.shape) == 3 else 1
        top_pos = np.stack([top_flat // width, top_flat % width], axis=-1).astype(np.int64)
        per_class = np.maximum(counts, 1)[:, None]
        gram = self.pattern_sum @ self.pattern_sum.T
        m = self.pattern_count.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = gram / np.outer(m, m)
            # the diagonal counts each image with itself once (a correlation of 1): leave those pairs out
            np.fill_diagonal(corr, (np.diag(gram) - m) / (m * (m - 1)))
        return LayerResponses(
            self.layer.name, self.layer.path, self.layer.kind, self.layer.shape, top_value, top_image, top_pos,
            mean=self.sum / max(n, 1), max=self.max if n else np.full(c, np.nan), frac_active=self.active / max(n, 1),
            class_mean=self.class_sum / per_class, class_active=self.class_active / per_class,
            class_corr=np.where(np.isfinite(corr), corr, np.nan), corr_count=self.pattern_count, kept=self.kept)


def _resolve(model: nn.Module, input_shape: tuple[int, int, int],
             layers: Sequence[UnitLayer | str] | None) -> list[UnitLayer]:
    if layers is not None and all(isinstance(layer, str) for layer in layers):
        return unit_layers(model, input_shape, layers)  # a model's `layers` setting: module paths
    known = unit_layers(model, input_shape)
    if layers is None:
        return known
    resolved = []
    for layer in layers:
        if isinstance(layer, UnitLayer):
            resolved.append(layer)
            continue
        try:
            resolved.append(find_layer(known, layer))
        except LayerError:  # any other module, by path
            out = forward_to(model, torch.zeros(1, *input_shape, device=_device(model)), [layer], grad=False)[layer]
            resolved.append(UnitLayer(layer, layer, "conv" if out.dim() > 2 else "fc", tuple(out.shape[1:])))
    return resolved


def _device(model: nn.Module) -> torch.device:
    reference = next(model.parameters(), None)
    return reference.device if reference is not None else torch.device("cpu")


def record_responses(model: nn.Module, images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                     std: Sequence[float], *, class_names: Sequence[str],
                     layers: Sequence[UnitLayer | str] | None = None, k: int = DEFAULT_K,
                     keep: Sequence[int] = (), batch_size: int = 100, outputs: Sequence[int] | None = None,
                     progress: Callable[[int], None] | None = None) -> Responses:
    """Stream uint8 NHWC `images` through `model` once and record every unit layer (default: `unit_layers`).

    `outputs`: the output of each class for a network with outputs of other classes too; its
    probabilities are then the classes' plus an 'other' column (`checkpoint.class_probabilities`).
    `keep`: test image indices whose complete layer outputs are kept, in this order (movie frames).
    `progress` is called with the number of images done after each batch. The model is run in eval
    mode and left in the mode it came in; its hooks are always removed.
    """
    images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) != len(labels):
        raise ValueError(f"expected uint8 NHWC images with one label each, got {images.dtype} {images.shape} "
                         f"and {len(labels)} labels")
    classes = len(class_names)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1} for {classes} class names")
    keep_idx = np.asarray(keep, dtype=np.int64).reshape(-1)
    if len(keep_idx) and (keep_idx.min() < 0 or keep_idx.max() >= len(images)):
        raise ValueError(f"kept image indices must lie in 0..{len(images) - 1}")
    norm = Normalizer(mean, std, _device(model))
    with eval_mode(model):
        targets = _resolve(model, (images.shape[3], images.shape[1], images.shape[2]), layers)
        accumulators = [_Accumulator(layer, k, classes, keep_idx) for layer in targets]
        batch: dict[str, Any] = {}

        def hook(acc: _Accumulator) -> Callable[..., None]:
            def run(_module: nn.Module, _inputs: Any, output: Any) -> None:
                if not acc.done:  # a module called twice per forward counts once, like `capture`
                    acc.done = True
                    acc.update(first_tensor(output), batch["indices"], batch["onehot"])
            return run

        probs = []
        handles = [model.get_submodule(layer.path).register_forward_hook(hook(acc))
                   for layer, acc in zip(targets, accumulators, strict=True)]
        try:
            with torch.inference_mode():
                for start in range(0, len(images), batch_size):
                    stop = min(start + batch_size, len(images))
                    batch["indices"] = np.arange(start, stop)
                    batch["onehot"] = np.eye(classes)[labels[start:stop]]
                    for acc in accumulators:
                        acc.done = False
                    out = first_tensor(model(norm.images(images[start:stop])))
                    probs.append(class_probabilities(out.float().reshape(len(out), -1), outputs).cpu().numpy())
                    if progress is not None:
                        progress(stop)
        finally:
            for handle in handles:
                handle.remove()
    counts = np.bincount(labels, minlength=classes)
    outputs = probs[0].shape[1] if probs else classes
    return Responses([acc.finish(counts) for acc in accumulators], tuple(class_names), labels,
                     np.concatenate(probs) if probs else np.zeros((0, outputs), np.float32), keep_idx, k)


# ---------------------------------------------------------------- guided backpropagation / deconvnet


class _GuidedReLU(torch.autograd.Function):
    """ReLU forward; backward passes only positive gradients, and (guided) only where the input was positive."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, deconv: bool) -> torch.Tensor:
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        ctx.deconv = deconv
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (out,) = ctx.saved_tensors
        passed = grad.clamp(min=0)
        return (passed if ctx.deconv else passed * (out > 0)), None


def guided_backprop(model: nn.Module, x: torch.Tensor, path: str, channel: int | Sequence[int],
                    position: tuple[int, int] | Sequence[tuple[int, int]] | None = None,
                    mode: str = "guided") -> np.ndarray:
    """Input-space image of one unit: d unit / d input with every `nn.ReLU`'s backward replaced.

    `x`: normalized input (C, H, W) or a batch (B, C, H, W), each row handled on its own. `path`: the
    module whose output holds the unit; `channel`: the unit, or one per row (many units in one batch);
    `position`: (row, column) in its map, one per row, or None for
    each row's spatial maximum (ignored for fc units). `mode`: "guided" (Springenberg et al.: positive
    gradients where the forward input was positive), "deconv" (Zeiler and Fergus: positive gradients
    only) or "gradient" (the plain gradient, every ReLU as it is). Returns float32 gradients shaped
    like `x`. Hooks are removed and every module's mode and in-place flag restored; parameter
    gradients are neither computed into .grad nor changed.
    """
    if mode not in ("guided", "deconv", "gradient"):
        raise ValueError(f"mode must be 'guided', 'deconv' or 'gradient', not {mode!r}")
    single = x.dim() == 3
    inputs = (x.unsqueeze(0) if single else x).detach().clone().requires_grad_(True)
    with eval_mode(model), relus_replaced(model, lambda v: _GuidedReLU.apply(v, mode == "deconv"),
                                          enabled=mode != "gradient"):
        out = forward_to(model, inputs, [path], grad=True)[path]
        rows = torch.arange(len(inputs))
        channels = torch.as_tensor(channel, dtype=torch.long, device=out.device).reshape(-1).expand(len(inputs))
        if out.dim() == 4:
            maps = out[rows, channels]
            if position is None:
                where = maps.detach().flatten(1).argmax(1)
                i, j = where // maps.shape[2], where % maps.shape[2]
            else:
                pos = torch.as_tensor(position, dtype=torch.long).reshape(-1, 2).expand(len(inputs), 2)
                i, j = pos[:, 0], pos[:, 1]
            target = maps[rows, i, j]
        else:
            target = out.reshape(len(out), -1)[rows, channels]
        (grad,) = torch.autograd.grad(target.sum(), inputs)
    result = grad.detach().cpu().numpy().astype(np.float32)
    return result[0] if single else result


def gradient_image(grad: np.ndarray) -> np.ndarray:
    """(C, H, W) gradient -> uint8 (H, W, C) image: zero is mid-grey, the largest |value| reaches 0 or 255."""
    scale = float(np.abs(grad).max())
    unit = 0.5 + 0.5 * grad / scale if scale > 0 else np.full_like(grad, 0.5)
    return np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def top_patch_boxes(rf: ReceptiveField, layer: LayerResponses, side: int) -> list[list[list[int]]]:
    """(units, k, 4) boxes (top, left, bottom, right) in the input that each unit's top images are seen
    through at their recorded peak positions, clipped to the image."""
    return [[list(receptive_box(rf, tuple(int(v) for v in pos), (side, side))) for pos in unit]
            for unit in layer.top_pos]


def top_patch_gradients(model: nn.Module, layer: LayerResponses, rows: Sequence[tuple[int, int]], images: np.ndarray,
                        mean: Sequence[float], std: Sequence[float], batch_size: int = 256,
                        precision: torch.dtype = torch.float32, mode: str = "guided") -> np.ndarray:
    """Guided-backprop pictures (len(rows), H, W, C) uint8 of (unit, rank) rows of one layer's top
    images, each at its recorded peak position, many units per backward pass (plain gradients with
    mode="gradient"); `precision` is what the network computes in (torch.bfloat16: autocast; the
    pictures are scaled to their own maximum, so bfloat16's rounding does not show)."""
    h, w, c = images.shape[1:]
    out = np.zeros((len(rows), h, w, c), np.uint8)
    norm = Normalizer(mean, std, _device(model))
    for s in range(0, len(rows), batch_size):
        chunk = rows[s:s + batch_size]
        x = norm.images(images[[layer.top_image[u, j] for u, j in chunk]])
        positions = [tuple(int(v) for v in layer.top_pos[u, j]) for u, j in chunk]
        device = x.device.type
        with torch.autocast(device, dtype=precision, enabled=precision != torch.float32):
            grads = guided_backprop(model, x, layer.path, [u for u, _ in chunk], positions, mode=mode)
        out[s:s + len(chunk)] = [gradient_image(one) for one in grads]
    return out


# ---------------------------------------------------------------- class preferences and measured claims


@dataclass(frozen=True)
class ClassPreferences:
    """Which true classes fill one layer's top-k lists (the per-layer histogram of the lecture notes)."""

    layer: str
    unit_counts: np.ndarray     # (C, K) classes among each unit's top-k images
    counts: np.ndarray          # (K,) summed over the layer's units; totals C * k when the test set has >= k images
    expected: np.ndarray        # (K,) the counts if top images were drawn in proportion to the test set's classes
    ratio: np.ndarray           # (K,) counts / expected: > 1 preferred, < 1 avoided
    most: list[int]             # class indices, most preferred first
    least: list[int]            # class indices, least preferred first


def class_preferences(responses: Responses, layer: str, n: int = 5) -> ClassPreferences:
    """Rank classes by how often they appear among the layer's top-k images, relative to their share of
    the test set (so a larger class is not 'preferred' for being larger); ties: more images, lower index."""
    rec = responses.layer(layer)
    classes = len(responses.class_names)
    found = rec.top_image >= 0
    truth = np.where(found, responses.labels[np.where(found, rec.top_image, 0)], classes)
    unit_counts = np.stack([np.bincount(row, minlength=classes + 1)[:classes] for row in truth]) if len(truth) \
        else np.zeros((0, classes), np.int64)
    counts = unit_counts.sum(0)
    share = responses.class_counts / max(len(responses.labels), 1)
    expected = share * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, counts / expected, 0.0)
    order = np.lexsort((np.arange(classes), -counts, -ratio))
    reverse = order[::-1]  # the same ranking read from the bottom: no class is both most and least
    n = min(n, classes)
    return ClassPreferences(rec.name, unit_counts, counts, expected, ratio, order[:n].tolist(), reverse[:n].tolist())


def class_accuracy(responses: Responses) -> np.ndarray:
    """(K,) fraction of each class's test images whose most probable output is the true class (nan if none)."""
    correct = responses.probs.argmax(1) == responses.labels
    counts = responses.class_counts
    hits = np.bincount(responses.labels, weights=correct, minlength=len(counts))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def class_selectivity(layer: LayerResponses) -> np.ndarray:
    """(C,) selectivity index (Morcos et al. 2018): (mu_max - mu_rest) / (mu_max + mu_rest), where mu_max is
    the largest class mean response and mu_rest the mean of the other class means, both clipped at 0.
    0: the same mean for every class; 1: responds to one class only; 0 for a unit silent on every class."""
    means = np.clip(layer.class_mean, 0, None)
    top = means.max(0)
    rest = (means.sum(0) - top) / max(len(means) - 1, 1)
    total = top + rest
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (top - rest) / total, 0.0)


def active_for_classes(layer: LayerResponses, min_fraction: float = 0.5) -> np.ndarray:
    """(K, C) True where the unit is active (peak > 0) on at least `min_fraction` of that class's test images."""
    return layer.class_active >= min_fraction


def unit_groups(responses: Responses, layer: str, group: Sequence[str] = (), min_fraction: float = 0.5
                ) -> dict[str, np.ndarray]:
    """Unit indices of one layer by the classes they are active for (see `active_for_classes`):

    - "group": active for every class of `group` (e.g. both face classes);
    - "group_only": active for every class of `group` and for no class outside it;
    - "single": active for exactly one class (of all classes);
    - "none": active for no class; "all": active for every class.
    """
    rec = responses.layer(layer)
    active = active_for_classes(rec, min_fraction)
    members = _group_mask(responses.class_names, group)
    n_active = active.sum(0)
    in_group = active[members].all(0) if members.any() else np.zeros(rec.units, bool)
    outside = active[~members].any(0)
    return {"group": np.flatnonzero(in_group), "group_only": np.flatnonzero(in_group & ~outside),
            "single": np.flatnonzero(n_active == 1), "none": np.flatnonzero(n_active == 0),
            "all": np.flatnonzero(n_active == len(active))}


def _group_mask(class_names: Sequence[str], group: Sequence[str]) -> np.ndarray:
    unknown = [g for g in group if g not in class_names]
    if unknown:
        raise ValueError(f"group classes {unknown!r} are not among the classes {list(class_names)!r}")
    return np.isin(np.asarray(class_names, dtype=object), list(group))


@dataclass(frozen=True)
class LayerClaims:
    """Counts behind the post's statements about one layer; every number measured, none judged."""

    layer: str
    units: int
    within: float               # mean over classes of the mean pattern correlation between two images of a class
    between: float              # mean over class pairs of the mean correlation between images of two classes
    mean_selectivity: float     # mean `class_selectivity` over the layer's units
    selective: int              # units with selectivity >= the threshold given
    group: int                  # units active for every class of the group
    group_only: int             # ... and for no class outside it
    single: int                 # units active for exactly one class
    none: int                   # units active for no class
    single_by_class: tuple[int, ...]  # of the `single` units, how many per class


def measured_claims(responses: Responses, group: Sequence[str] = (), min_fraction: float = 0.5,
                    selective: float = 0.5) -> list[LayerClaims]:
    """`LayerClaims` for every recorded layer; `min_fraction` defines "active for a class" (see
    `active_for_classes`), `selective` the selectivity index above which a unit counts as selective."""
    claims = []
    for rec in responses.layers:
        groups = unit_groups(responses, rec.name, group, min_fraction)
        corr = rec.class_corr
        diagonal = np.diag(corr)
        off = corr[~np.eye(len(corr), dtype=bool)]
        selectivity = class_selectivity(rec)
        single = active_for_classes(rec, min_fraction)[:, groups["single"]]
        claims.append(LayerClaims(
            rec.name, rec.units, _nanmean(diagonal), _nanmean(off), float(selectivity.mean()) if rec.units else 0.0,
            int((selectivity >= selective).sum()), len(groups["group"]), len(groups["group_only"]),
            len(groups["single"]), len(groups["none"]), tuple(int(v) for v in single.sum(1))))
    return claims


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")
