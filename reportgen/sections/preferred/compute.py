"""Section 2's compute stage: a preferred input for every unit of every layer of one model.

Per model: every unit's largest activation over the test images (`optvis.unit_maxima`: dead units
and the yardstick for what a reconstruction reached), then a random search over regularization
settings scored per layer on a sample of units, then every unit of every layer optimized with its
layer's best setting; the output-class units with several noise seeds. Also written here, so that
drawing never loads a model: the first layer's filters, the weights between consecutive layers
(the unit graph's edges), one test input (the graph's input layer) and each layer's receptive-field
crop. Writes npz + json only.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reportgen.cache import Artifact, layered, unlayered
from reportgen.config import PreferredConfig
from reportgen.nets import distributed
from reportgen.nets.checkpoint import Normalizer, class_probabilities, load_model, torch_threads
from reportgen.nets.data import Dataset
from reportgen.nets.layers import UnitLayer, receptive_box, receptive_fields, unit_layers
from reportgen.optvis import (
    DEFAULT_CHUNK_SIZE,
    Rendering,
    SearchSpace,
    Settings,
    Unit,
    UnitMaxima,
    Window,
    center_window,
    render,
    unit_maxima,
)
from reportgen.optvis.hooks import forward_to
from reportgen.optvis.regularizers import high_frequency_energy
from reportgen.optvis.search import FINALISTS, SearchResult, search
from reportgen.progress import track

log = logging.getLogger("reportgen")
RECORDS = ("start", "reached", "best", "peak", "flat")


def preferred_stage(folder: Path, params: dict[str, Any], dataset: Artifact, model: Artifact, *,
                    chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, Any]:
    """Search, render and measure every unit of one model; `params` = {"preferred": PreferredConfig,
    "device": str, "threads": torch CPU threads, "precision": 'float32' or 'bfloat16', "layers": the
    model's unit layers by module path (empty: automatic)}. `chunk_size` changes speed only (rows are
    independent)."""
    cfg: PreferredConfig = params["preferred"]
    with torch_threads(params["threads"]):
        return _run(folder, cfg, params["device"], getattr(torch, params["precision"]), params.get("layers", []),
                    dataset, model, chunk_size)


def _run(folder: Path, cfg: PreferredConfig, device: str, precision: torch.dtype, paths: list[str],
         dataset: Artifact, model: Artifact, chunk_size: int) -> dict[str, Any]:
    clock = {"start": time.perf_counter()}
    cpu = time.process_time()  # with one thread, CPU seconds approximate wall seconds on an idle machine
    trained = load_model(model.file(model.manifest["file"]), torch.device(device))
    net, shape = trained.network, trained.input_shape
    mean, std = trained.normalizer.mean.flatten().tolist(), trained.normalizer.std.flatten().tolist()
    images, labels = Dataset.from_artifact(dataset).part("test")
    test = trained.normalizer(trained.normalizer.unit(images))
    layers = unit_layers(net, shape, paths)
    everything = [Unit(layer.path, i) for layer in layers for i in range(layer.units)]
    maxima = unit_maxima(net, test, everything, reduce=cfg.objective)
    offsets = np.cumsum([0] + [layer.units for layer in layers])
    per_layer = [UnitMaxima(maxima.best[a:b], maxima.peak[a:b]) for a, b in zip(offsets[:-1], offsets[1:],
                                                                                 strict=True)]
    clock["maxima"] = time.perf_counter()

    base = Settings(steps=cfg.steps, reduce=cfg.objective,
                    param="fourier" if cfg.parameterization == "search" else cfg.parameterization)
    space = SearchSpace(params=("pixel", "fourier") if cfg.parameterization == "search" else (cfg.parameterization,))
    fields = receptive_fields(net, shape)
    windows = receptive_windows(net, layers, fields, shape) if cfg.objective == "center" else {}
    clock["windows"] = time.perf_counter()
    searched = _search(net, layers, per_layer, cfg, base, space, shape, mean, std, chunk_size, precision, windows)
    trials, searches = searched.trials, searched.groups
    clock["search"] = time.perf_counter()

    chosen = [trials[s.best] if s.best >= 0 else base for s in searches]
    results = []
    for i, (layer, settings) in enumerate(track(list(zip(layers, chosen, strict=True)), desc="preferred inputs",
                                                unit="layer")):
        last = i == len(layers) - 1
        seeds = cfg.class_seeds if last else 1
        # the output layer's units are the classes', in class order (of a network with outputs of other
        # classes too, only the data's)
        shown = np.asarray(trained.outputs, np.int64) if last and trained.outputs is not None else \
            shown_units(layer.units, 0 if last else cfg.units_per_layer)
        units_ = [Unit(layer.path, int(u)) for u in shown for _ in range(seeds)]
        best, peak = per_layer[i].best[shown], per_layer[i].peak[shown]
        rendering = render_shared(model, device, net, units_, shape,
                                  seed=[cfg.seed + s for _ in shown for s in range(seeds)],
                                  maxima=UnitMaxima(best.repeat_interleave(seeds), peak.repeat_interleave(seeds)),
                                  chunk_size=chunk_size, mean=mean, std=std, settings=settings, precision=precision,
                                  windows=windows)
        records = rendering.records
        per_unit = (len(shown), seeds)
        results.append(LayerInputs(
            unit=shown, images=rendering.display.reshape(*per_unit, *rendering.display.shape[1:]),
            start=np.array([r.start for r in records], np.float32).reshape(per_unit),
            reached=np.array([r.reached for r in records], np.float32).reshape(per_unit),
            flat=np.array([r.flat for r in records], bool).reshape(per_unit),
            best=best.float().numpy(), peak=peak.float().numpy()))
    arrays = layered(results)
    clock["render"] = time.perf_counter()
    checks = [seed_check(net, layer, settings, results[i], shape, mean, std, cfg, chunk_size, precision, windows)
              if i < len(layers) - 1 else None for i, (layer, settings) in enumerate(zip(layers, chosen, strict=True))]
    clock["seed_check"] = time.perf_counter()
    np.savez_compressed(folder / "preferred.npz", **arrays)

    weights = {f"edges_{i}": w for i, w in enumerate(incoming_weights(net, layers, shape[0])) if w is not None}
    first = _weight_module(net, layers[0])
    if isinstance(first, nn.Conv2d):
        weights["filters"] = first.weight.detach().float().cpu().numpy()
    # the graph's input layer: one test image, the first of the first class that has one
    weights["input"] = images[int(np.argmin(labels))] if len(images) else np.zeros((*shape[1:], shape[0]), np.uint8)
    np.savez_compressed(folder / "weights.npz", **weights)

    boxes = [_crop(layer, fields, shape, cfg.objective) for layer in layers]
    test_energy: dict[tuple[int, ...] | None, float] = {}  # the test images' share, once per crop
    summary = {
        "class_names": list(trained.class_names),
        "input_shape": list(shape),
        "objective": cfg.objective,
        "steps": cfg.steps,
        "precision": str(precision).removeprefix("torch."),
        "trials": [t.as_dict() for t in trials],
        "search_steps": searched.short_steps, "search_finalists": FINALISTS, "high_frequency_min_side": HF_MIN_SIDE,
        "search_units": cfg.search_units,
        "class_seeds": cfg.class_seeds,
        "test_images": len(images),
        "layers": [{"name": layer.name, "path": layer.path, "kind": layer.kind, "shape": list(layer.shape),
                    "units": layer.units, "shown": len(results[i].unit),
                    "seeds": cfg.class_seeds if i == len(layers) - 1 else 1,
                    "box": boxes[i],
                    "window": list(vars(windows[layer.path]).values()) if layer.path in windows else None,
                    "settings": chosen[i].as_dict(), "search": vars(searches[i]), "seed_check": checks[i],
                    "high_frequency": high_frequency(results[i], images, boxes[i], test_energy)}
                   for i, layer in enumerate(layers)],
        "seconds": {"load_and_maxima": clock["maxima"] - clock["start"], "windows": clock["windows"] - clock["maxima"],
                    "search": clock["search"] - clock["windows"],
                    "render": clock["render"] - clock["search"], "seed_check": clock["seed_check"] - clock["render"]},
        "cpu_seconds": time.process_time() - cpu,
        "threads": torch.get_num_threads(),
        "chunk_size": chunk_size,
    }
    (folder / "preferred.json").write_text(json.dumps(summary, indent=1))
    rendered = sum(len(r.unit) for r in results)
    log.info("preferred inputs: %d of %d units in %.1f s (search %.1f s)", rendered, len(everything),
             time.perf_counter() - clock["start"], summary["seconds"]["search"])
    return {"units": len(everything), "rendered": rendered}


# units per layer drawn from a second noise seed, to say how much a layer's pictures depend on the seed
SEED_CHECK_UNITS = 8


def seed_check(net: nn.Module, layer: UnitLayer, settings: Settings, inputs: LayerInputs, shape: tuple[int, int, int],
               mean: list[float], std: list[float], cfg: PreferredConfig, chunk_size: int, precision: torch.dtype,
               windows: dict[str, Window]) -> dict[str, Any] | None:
    """One seed is one sample: for up to SEED_CHECK_UNITS of a layer's shown units (evenly spaced among
    those neither dead nor flat), a
    second preferred input from another noise seed, with the layer's own settings, and how alike the
    network finds the two: the correlation of the layer's response patterns where the objective reads
    them (all channels at the centre neuron, or averaged over space, or an FC layer's units), beside
    the same between different sampled units' first images (what 'alike' is measured against)."""
    # among the units whose picture is a result: a dead or flat unit's two pictures are two starting noises
    results = np.flatnonzero(~inputs.flagged)
    rows = results[shown_units(len(results), SEED_CHECK_UNITS)]
    if len(rows) < 2:
        return None
    units = [Unit(layer.path, int(inputs.unit[r])) for r in rows]
    second = render(net, units, shape, mean=mean, std=std, settings=settings, seed=[cfg.seed + 1] * len(units),
                    chunk_size=chunk_size, precision=precision, windows=windows).display
    device = next(net.parameters()).device
    x = Normalizer(mean, std, device).images(np.concatenate([inputs.images[rows, 0], second]))
    with torch.no_grad():
        out = forward_to(net, x, [layer.path], grad=False)[layer.path].float()
    if out.dim() == 4:
        out = out[:, :, out.shape[2] // 2, out.shape[3] // 2] if cfg.objective == "center" else out.mean((2, 3))
    patterns = out.flatten(1).double().cpu().numpy()
    patterns -= patterns.mean(1, keepdims=True)
    patterns /= np.maximum(np.linalg.norm(patterns, axis=1, keepdims=True), 1e-12)
    first, again = patterns[:len(rows)], patterns[len(rows):]
    between = first @ first.T
    return {"units": inputs.unit[rows].tolist(), "same": [float(v) for v in (first * again).sum(1)],
            "different": float(between[~np.eye(len(rows), dtype=bool)].mean())}


# Smallest crop side whose spectrum says something: a 3x3 crop has no frequency below half the Nyquist
# frequency but 0, so any picture and any test image would score 100% there
HF_MIN_SIDE = 8


def high_frequency(inputs: LayerInputs, test_images: np.ndarray, box: list[int] | None,
                   test_energy: dict[tuple[int, ...] | None, float]) -> dict[str, float] | None:
    """How noise-like a layer's pictures are beside the data: the median share of spectral energy above
    half the Nyquist frequency (`optvis.high_frequency_energy`) of its live units' pictures (first seed)
    and of the test images, both cut to the crop the pictures show (`box`), as readers see them.
    `test_energy` keeps the test images' share per crop: every layer that sees the whole image shares it."""
    live = ~inputs.dead
    top, left, bottom, right = box or (0, 0, test_images.shape[1], test_images.shape[2])
    if not live.any() or not len(test_images) or min(bottom - top, right - left) < HF_MIN_SIDE:
        return None

    def median(pictures: np.ndarray) -> float:  # uint8 (N, H, W, C)
        x = torch.from_numpy(np.ascontiguousarray(pictures[:, top:bottom, left:right])).permute(0, 3, 1, 2)
        return float(high_frequency_energy(x.float() / 255).median())

    key = tuple(box) if box else None
    if key not in test_energy:
        test_energy[key] = median(test_images)
    return {"inputs": median(inputs.images[live, 0]), "test": test_energy[key]}


def _search(net: nn.Module, layers: list[UnitLayer], maxima: list[UnitMaxima], cfg: PreferredConfig, base: Settings,
            space: SearchSpace, shape: tuple[int, int, int], mean: list[float], std: list[float],
            chunk_size: int, precision: torch.dtype, windows: dict[str, Window]) -> SearchResult:
    """Random search (Bergstra and Bengio 2012, `optvis.search`) on a sample of each layer's live units:
    a dead unit has no test-image activation to compare a reconstruction with."""
    rng = random.Random(cfg.seed)
    samples = []
    for m in maxima:
        live = [int(i) for i in torch.nonzero(m.best > 0).flatten()]
        samples.append(sorted(rng.sample(live, min(cfg.search_units, len(live)))))
    groups = [[Unit(layer.path, i) for i in sample] for layer, sample in zip(layers, samples, strict=True)]
    sampled = [UnitMaxima(m.best[s], m.peak[s]) for m, s in zip(maxima, samples, strict=True)]
    return search(net, groups, cfg.trials, cfg.seed, input_shape=shape, mean=mean, std=std, maxima=sampled,
                  base=base, space=space, chunk_size=chunk_size, precision=precision, windows=windows,
                  progress=lambda runs, what: track(runs, desc=what, unit="trial"))


def render_shared(model: Artifact, device: str, net: nn.Module, units_: list[Unit], shape: tuple[int, int, int], *,
                  seed: list[int], maxima: UnitMaxima, chunk_size: int, **options: Any) -> Rendering:
    """`optvis.render` of one layer's units, shared among the ranks under torchrun (nets/distributed.py):
    the rows are cut into the batches of `chunk_size` that one process would optimize, rank k takes
    batches k, k + n, ..., and rank 0 gathers them. Each batch is computed as one process computes
    it (same rows, same thread count), so the result is the same bytes whatever the number of ranks."""
    world = distributed.current()
    if world is None or not units_:
        return render(net, units_, shape, seed=seed, maxima=maxima, chunk_size=chunk_size, **options)
    distributed.hand_out(("render", model, device, units_, shape, seed, maxima, chunk_size, options,
                          torch.get_num_threads()))
    merged = _render_part(net, units_, shape, seed, maxima, chunk_size, options, world)
    assert merged is not None  # rank 0 gathers
    return merged


def render_job(model: Artifact, device: str, units_: list[Unit], shape: tuple[int, int, int], seed: list[int],
               maxima: UnitMaxima, chunk_size: int, options: dict[str, Any], threads: int) -> None:
    """Another rank's part of `render_shared`, on its own copy of the network."""
    path = model.file(model.manifest["file"])
    if _LOADED.get("path") != path:  # one load per model, not per layer
        _LOADED.update(path=path, net=load_model(path, torch.device(device)).network)
    world = distributed.current()
    if world is not None:
        with torch_threads(threads):
            _render_part(_LOADED["net"], units_, shape, seed, maxima, chunk_size, options, world)


_LOADED: dict[str, Any] = {}  # the network another rank renders for, and the checkpoint it came from


def _render_part(net: nn.Module, units_: list[Unit], shape: tuple[int, int, int], seed: list[int],
                 maxima: UnitMaxima, chunk_size: int, options: dict[str, Any],
                 world: distributed.World) -> Rendering | None:
    """This rank's batches of the rows, gathered on rank 0 into the whole rendering (None elsewhere)."""
    step = world.size * chunk_size
    rows = [i for start in range(world.rank * chunk_size, len(units_), step)
            for i in range(start, min(start + chunk_size, len(units_)))]
    part = render(net, [units_[i] for i in rows], shape, seed=[seed[i] for i in rows],
                  maxima=UnitMaxima(maxima.best[rows], maxima.peak[rows]), chunk_size=chunk_size,
                  **options) if rows else None
    parts: list[Any] | None = [None] * world.size if world.leader else None
    torch.distributed.gather_object((rows, part), parts, dst=0)
    if parts is None:
        return None
    order = np.argsort(np.concatenate([np.asarray(r, np.int64) for r, p in parts if p is not None]))
    kept = [p for _, p in parts if p is not None]
    records = [record for p in kept for record in p.records]
    return Rendering(torch.cat([p.images for p in kept])[torch.from_numpy(order)],
                     np.concatenate([p.display for p in kept])[order], [records[i] for i in order],
                     kept[0].settings)


def receptive_windows(net: nn.Module, layers: list[UnitLayer], fields: dict[str, Any],
                      shape: tuple[int, int, int]) -> dict[str, Window]:
    """The crop each conv layer's centre neuron sees, for the layers where running the network on it
    alone reproduces the whole image's activations (`optvis.center_window`)."""
    windows = {}
    for layer in layers:
        if layer.kind == "conv" and len(layer.shape) == 3 and layer.path in fields:
            field = fields[layer.path]
            box = receptive_box(field, (layer.shape[1] // 2, layer.shape[2] // 2), tuple(shape[1:]))
            if (window := center_window(net, layer.path, shape, box, field.jump)) is not None:
                windows[layer.path] = window
    return windows


def shown_units(units: int, cap: int) -> np.ndarray:
    """The unit indices of a layer that get a preferred input: all of them, or `cap` evenly spaced over
    the layer (the first and the last included), so a sample spans the layer rather than its start."""
    if not cap or units <= cap:
        return np.arange(units, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, units - 1, cap)).astype(np.int64))


def _crop(layer: UnitLayer, fields: dict[str, Any], shape: tuple[int, int, int], objective: str) -> list[int] | None:
    """(top, left, bottom, right) of the input pixels the centre neuron of a conv channel sees; None
    where the whole image matters (FC units, the spatial-mean objective)."""
    if layer.kind != "conv" or objective != "center" or len(layer.shape) != 3 or layer.path not in fields:
        return None
    box = receptive_box(fields[layer.path], (layer.shape[1] // 2, layer.shape[2] // 2), tuple(shape[1:]))
    return list(box) if (box[2] - box[0], box[3] - box[1]) != tuple(shape[1:]) else None


def _weight_module(net: nn.Module, layer: UnitLayer) -> nn.Module | None:
    """The conv or linear module computing a unit layer: the layer itself (a module path of another
    network) or the `conv`/`linear` part of one of our blocks."""
    module = net.get_submodule(layer.path)
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return module
    block = net.get_submodule(layer.path.rpartition(".")[0]) if "." in layer.path else None
    return next((m for m in (block.children() if block is not None else ())
                 if isinstance(m, (nn.Conv2d, nn.Linear))), None)


def incoming_weights(net: nn.Module, layers: list[UnitLayer], in_channels: int) -> list[np.ndarray | None]:
    """Per layer, (units, units of the layer before) effective weights: a conv kernel summed over its
    window, an FC weight summed over the spatial positions of a flattened map, scaled by the block's
    batch norm (its gain, which may flip a sign). The first layer's come from the input channels. None
    where the layer's input is not the previous unit layer (branches, residual sums)."""
    out: list[np.ndarray | None] = []
    for i, layer in enumerate(layers):
        before = in_channels if i == 0 else layers[i - 1].units
        module = _weight_module(net, layer)
        weight = module.weight.detach().float().cpu() if module is not None else None
        if weight is None:
            out.append(None)
            continue
        if weight.dim() == 4:
            matrix = weight.sum(dim=(2, 3)) if weight.shape[1] == before else None
        elif weight.shape[1] % before == 0:
            matrix = weight.reshape(weight.shape[0], before, -1).sum(dim=2)
        else:
            matrix = None
        block = net.get_submodule(layer.path.rpartition(".")[0]) if "." in layer.path else None
        bn = next((m for m in (block.children() if block is not None else ())
                   if isinstance(m, nn.modules.batchnorm._BatchNorm)), None)
        if matrix is not None and bn is not None and bn.running_var is not None:
            gain = (bn.weight.detach().float().cpu() if bn.affine else torch.ones(matrix.shape[0])) / \
                torch.sqrt(bn.running_var.float().cpu() + bn.eps)
            matrix = matrix * gain[:, None]
        out.append(matrix.numpy() if matrix is not None and matrix.shape[0] == layer.units else None)
    return out


@dataclass(frozen=True)
class LayerInputs:
    """One layer's preferred inputs and what they reached, per unit (rows) and noise seed (columns)."""

    unit: np.ndarray      # (rows,) the unit index of each row: every unit, or a sample of a large layer
    images: np.ndarray    # uint8 (rows, seeds, H, W, C), as readers see them
    start: np.ndarray     # (units, seeds) the objective on the starting noise
    reached: np.ndarray   # (units, seeds) the objective on the final image
    flat: np.ndarray      # (units, seeds) bool: not raised above the start
    best: np.ndarray      # (units,) the objective's best over the test images
    peak: np.ndarray      # (units,) the largest activation of any of the unit's neurons on a test image

    @property
    def dead(self) -> np.ndarray:
        """Units never active on a test image."""
        return self.peak <= 0

    @property
    def flagged(self) -> np.ndarray:
        """Units whose picture is not a result: dead, or flat on the first seed."""
        return self.dead | self.flat[:, 0]

    def ratios(self) -> np.ndarray:
        """reached / best test-image activation of the live units (first seed)."""
        live = self.best > 0
        return self.reached[live, 0] / self.best[live]


@dataclass(frozen=True)
class PreferredInputs:
    """A preferred-stage artifact as its readers see it: preferred.json, preferred.npz, weights.npz."""

    summary: dict[str, Any]
    layers: list[LayerInputs]
    weights: dict[str, np.ndarray]


def read(artifact: Artifact) -> PreferredInputs:
    """A preferred-stage artifact's summary, per-layer arrays and weights."""
    summary = json.loads(artifact.file("preferred.json").read_text())
    with np.load(artifact.file("preferred.npz")) as arrays, np.load(artifact.file("weights.npz")) as weights:
        return PreferredInputs(summary, unlayered(LayerInputs, arrays, len(summary["layers"])), dict(weights))


def keyed(cfg: PreferredConfig) -> PreferredConfig:
    """The settings as the compute stage is keyed on them: the thread count and the precision are keyed
    on their own (resolved against build.workers and the machine), and the edges and frame rate only
    change drawings."""
    return replace(cfg, threads=0, precision="", edges=0, movie_fps=0)


# the kinds of class-unit image the class-units stage compares, in the order the post shows them:
# no prior, then the lecture notes' four priors added one at a time (after Yosinski et al. 2015), then
# the searched setting of section 2 (its first seed)
CLASS_KINDS = ("bare", "decay", "blur", "norm_clip", "contrib_clip", "regularized")


# the strength of a prior the search turned off, where the ladder of priors adds it all the same
PRIOR_DEFAULTS = {"decay": 0.01, "blur_every": 4, "clip_pct": 20.0}


def prior_settings(chosen: Settings) -> dict[str, Settings]:
    """The ascents of CLASS_KINDS but the last, each one change from the one before: the chosen setting's
    steps and step size in pixel space with no jitter and no prior ('bare'), then L2 decay, + blur,
    + clipping of small-norm pixels, + clipping of small contributions, each at the chosen strength
    where the search turned it on, else at PRIOR_DEFAULTS'. The searched setting ('regularized') has
    its own parameterization and jitter besides."""
    bare = replace(chosen, decay=0.0, blur_every=0, norm_clip_pct=0.0, contrib_clip_pct=0.0, param="pixel", jitter=0)
    decay = replace(bare, decay=chosen.decay or PRIOR_DEFAULTS["decay"])
    blur = replace(decay, blur_every=chosen.blur_every or PRIOR_DEFAULTS["blur_every"], blur_sigma=chosen.blur_sigma)
    norm_clip = replace(blur, norm_clip_pct=chosen.norm_clip_pct or PRIOR_DEFAULTS["clip_pct"])
    return {"bare": bare, "decay": decay, "blur": blur, "norm_clip": norm_clip,
            "contrib_clip": replace(norm_clip, contrib_clip_pct=chosen.contrib_clip_pct or PRIOR_DEFAULTS["clip_pct"])}


def class_units_stage(folder: Path, params: dict[str, Any], *arts: Artifact) -> dict[str, Any]:
    """Each model's output-class units under each prior of CLASS_KINDS, from the same starting noise:
    with no regularizer at all ("deep networks are easily fooled"), with the lecture notes' four priors
    added one at a time, and as section 2 regularized them. Each image's probability of its class
    under every model and its share of high-frequency energy -> classes.npz, classes.json.
    `arts`: (model 0, preferred 0, model 1, preferred 1, ...); `params["threads"]` is keyed, as for the
    preferred stage (sums split across threads round differently)."""
    device = torch.device(params["device"])
    models = [load_model(a.file(a.manifest["file"]), device) for a in arts[0::2]]
    results = [read(a) for a in arts[1::2]]
    arrays, summary = {}, {"kinds": list(CLASS_KINDS), "models": [], "prior_defaults": PRIOR_DEFAULTS}
    with torch_threads(params["threads"]):
        for i, (trained, result) in enumerate(zip(models, results, strict=True)):
            last, inputs = result.summary["layers"][-1], result.layers[-1]
            chosen = Settings(**last["settings"])
            norm = trained.normalizer
            units_ = [Unit(last["path"], int(u)) for u in inputs.unit]
            images = {"regularized": inputs.images[:, 0]}
            reached = {"regularized": inputs.reached[:, 0].tolist()}
            # the priors the search turned off, which the ladder adds at PRIOR_DEFAULTS' strengths
            off = [name for name, value in (("decay", chosen.decay), ("blur", chosen.blur_every),
                                            ("norm_clip", chosen.norm_clip_pct),
                                            ("contrib_clip", chosen.contrib_clip_pct)) if not value]
            entry: dict[str, Any] = {"classes": len(inputs.unit), "best": inputs.best.tolist(), "settings": {},
                                     "defaulted": off, "searched": {"param": chosen.param, "jitter": chosen.jitter}}
            for kind, settings in prior_settings(chosen).items():
                rendering = render(trained.network, units_, trained.input_shape, mean=norm.mean.flatten().tolist(),
                                   std=norm.std.flatten().tolist(), settings=settings, seed=params["seed"])
                images[kind], reached[kind] = rendering.display, [r.reached for r in rendering.records]
                entry["settings"][kind] = settings.as_dict()
            entry["reached"] = reached
            entry["seed_agreement"] = seed_agreement(trained, result)
            for kind in CLASS_KINDS:
                shown = images[kind]
                arrays[f"{kind}_{i}"] = shown
                pixels = torch.from_numpy(shown).permute(0, 3, 1, 2).float() / 255
                entry.setdefault("high_frequency", {})[kind] = high_frequency_energy(pixels).tolist()
                # row c is the unit of class c: its probability under every model, each at its own input, and
                # whether that model's top class is c (under the other model: the transfer rate)
                judged = [_class_probability(other, shown) for other in models]
                entry.setdefault("probability", {})[kind] = [probability.tolist() for probability, _ in judged]
                entry.setdefault("top1", {})[kind] = [top.tolist() for _, top in judged]
            summary["models"].append(entry)
    np.savez_compressed(folder / "classes.npz", **arrays)
    (folder / "classes.json").write_text(json.dumps(summary, indent=1))
    return {"models": len(models)}


def seed_agreement(trained: Any, result: PreferredInputs) -> dict[str, Any] | None:
    """How alike a class unit's preferred inputs from different noise seeds look to the network itself:
    the mean Pearson correlation of their responses in the layer below the output, per class, beside
    the same between first-seed images of different classes (what 'alike' is measured against).
    None with one seed or one layer."""
    layers, inputs = result.summary["layers"], result.layers[-1]
    units, seeds = inputs.images.shape[:2]
    if seeds < 2 or len(layers) < 2 or units < 2:
        return None
    flat = inputs.images.reshape(units * seeds, *inputs.images.shape[2:])
    with torch.no_grad():
        out = forward_to(trained.network, trained.normalizer.images(flat), [layers[-2]["path"]], grad=False)
    responses = out[layers[-2]["path"]].reshape(units, seeds, -1).double().cpu().numpy()
    centred = responses - responses.mean(axis=2, keepdims=True)
    centred /= np.maximum(np.linalg.norm(centred, axis=2, keepdims=True), 1e-12)
    pairs = [(a, b) for a in range(seeds) for b in range(a + 1, seeds)]
    same = [float(np.mean([centred[u, a] @ centred[u, b] for a, b in pairs])) for u in range(units)]
    firsts = centred[:, 0]
    between = firsts @ firsts.T
    different = float(between[~np.eye(units, dtype=bool)].mean())
    return {"layer": layers[-2]["name"], "seeds": int(seeds), "same": same, "different": different}


def _class_probability(trained: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probability a model gives image c of its class c, and whether c is its most probable class,
    the images (uint8 NHWC) brought to the model's input size and channels first."""
    channels, height, width = trained.input_shape
    x = trained.normalizer.unit(images)
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
    if tuple(x.shape[2:]) != (height, width):
        x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = trained.network(trained.normalizer(x))
    probs = class_probabilities(logits, trained.outputs).cpu().numpy()
    rows = np.arange(len(images))
    return probs[rows, rows], probs.argmax(1) == rows
