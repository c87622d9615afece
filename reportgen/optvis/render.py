"""Preferred inputs by regularized gradient ascent on the input image, many units per batch.

`render` optimizes one image per unit, each batch row tied to its own unit, its own starting noise
and its own jitter, all derived from (seed, unit): a unit's image is the same whether it is
optimized alone or among hundreds. `unit_maxima` measures the units on real images, so records can
say how far a reconstruction got (and which units are dead). No file I/O and no printing here.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from reportgen.optvis import regularizers as reg
from reportgen.optvis.hooks import eval_mode, forward_to, relus_replaced
from reportgen.optvis.objectives import REDUCTIONS, Objective, Unit, units
from reportgen.optvis.param import PARAMETERIZATIONS, make_param
from reportgen.optvis.transforms import draw_shifts, roll_rows
from reportgen.optvis.window import Window

T = TypeVar("T")

log = logging.getLogger(__name__)

# Rows per optimization batch, from the sweep in benchmarks/optvis.py (1 torch thread on a shared 2-core CPU,
# model1 width 0.5, 28x28x1, all 256 units of conv4, CPU unit-steps/s): chunk 1: 225, 8: 557, 16: 731,
# 32: 672, 64: 822, 128: 750, 256: 819; fc6 gave 624 / 833 / 863 for 16 / 64 / 256. Gains stop near 64,
# and at 96x96x3, width 1.0 every chunk size from 1 to 32 ran within noise (18-23), so larger only costs memory.
DEFAULT_CHUNK_SIZE = 64


@dataclass(frozen=True)
class Settings:
    """How one preferred input is reconstructed. Regularizers follow Yosinski et al. (2015) and are
    applied after every Adam step as projections on the image (0 turns each one off)."""

    steps: int = 128            # Adam steps of gradient ascent
    lr: float = 0.05            # Adam step size, roughly the per-step change of a pixel in input-std units
    param: str = "fourier"      # "pixel" (optimize pixels) or "fourier" (scaled spectrum: fewer high frequencies)
    reduce: str = "center"      # objective of a conv channel: its "center" neuron or its spatial "mean"
    decay: float = 0.0          # L2 decay: pixels shrink towards the data mean by this fraction per step
    blur_every: int = 4         # Gaussian-blur the image every this many steps (0 = never)
    blur_sigma: float = 0.5     # standard deviation of that blur, in pixels
    norm_clip_pct: float = 0.0  # per step, set this percent of pixels with the smallest norm to the mean
    contrib_clip_pct: float = 0.0  # per step, set this percent of pixels with the smallest |x * da/dx| to the mean
    jitter: int = 1             # per step, translate each row's image by up to this many pixels (its own draw)
    init_std: float = 0.5       # standard deviation of the starting noise, in input-std units
    init_blur: float = 1.0      # sigma in pixels of the blur applied to the starting noise
    clamp: bool = True          # keep pixels within the displayable range [0, 1] after each step
    redirect_relu: bool = True  # where a ReLU module passes no gradient at all for a row, pass the gradient that
    #                             would raise its negative inputs (Lucid's redirected ReLU), so a unit that starts
    #                             at 0 on the noise can still rise; the forward pass is unchanged

    def __post_init__(self) -> None:
        problems = []
        if self.steps < 0:
            problems.append("steps must be >= 0")
        if self.lr <= 0:
            problems.append("lr must be > 0")
        if self.param not in PARAMETERIZATIONS:
            problems.append(f"param must be one of {', '.join(PARAMETERIZATIONS)}")
        if self.reduce not in ("center", "mean"):
            problems.append("reduce must be 'center' or 'mean'")
        if not 0 <= self.decay < 1:
            problems.append("decay must be in [0, 1)")
        if self.blur_every < 0 or self.blur_sigma < 0 or self.jitter < 0 or self.init_std < 0 or self.init_blur < 0:
            problems.append("blur_every, blur_sigma, jitter, init_std and init_blur must be >= 0")
        if not (0 <= self.norm_clip_pct < 100 and 0 <= self.contrib_clip_pct < 100):
            problems.append("clip percentiles must be in [0, 100)")
        if problems:
            raise ValueError("invalid optvis settings: " + "; ".join(problems))

    def as_dict(self) -> dict[str, object]:
        """Plain field values, e.g. for a JSON table of the search."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class UnitMaxima:
    """Units measured on real images: `best` is the largest value of the objective's reduction
    (for 'center', the channel's largest neuron anywhere, since the centre neuron of a shifted image
    could see it), `peak` the largest activation of any of the unit's neurons."""

    best: torch.Tensor
    peak: torch.Tensor

    @property
    def dead(self) -> torch.Tensor:
        """Units never active (> 0) on any of the images."""
        return self.peak <= 0


@dataclass(frozen=True)
class UnitRecord:
    """What happened to one unit: its activation on the starting noise and on the final image."""

    unit: Unit
    seed: int
    start: float
    reached: float
    best_real: float | None     # the unit's best activation over real images, when maxima were given
    dead: bool | None           # never active > 0 on those images (None without maxima)
    flat: bool                  # the reconstruction did not beat its start by the flat margin (see `render`)


@dataclass(frozen=True)
class Rendering:
    """Reconstructions in the order of the units asked for."""

    images: torch.Tensor        # (N, C, H, W) float, in the model's input normalization, on the CPU
    display: np.ndarray         # (N, H, W, C) uint8, the same images in display range
    records: list[UnitRecord]
    settings: Settings


def row_seed(seed: int, unit: Unit) -> int:
    """A row's own seed from (seed, unit): what makes batch composition irrelevant to the result."""
    digest = hashlib.blake2b(f"{seed}|{unit.path}|{unit.index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def starting_noise(generator: torch.Generator, shape: tuple[int, int, int], settings: Settings) -> torch.Tensor:
    """Blurred Gaussian noise with standard deviation `init_std`, drawn from one row's generator."""
    noise = torch.randn((1, *shape), generator=generator)
    noise = reg.gaussian_blur(noise, settings.init_blur)
    return noise / noise.std().clamp(min=1e-12) * settings.init_std


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with weights not requiring grad; both restored afterwards, even on errors."""
    grads = {p: p.requires_grad for p in model.parameters()}
    try:
        with eval_mode(model):
            for p in grads:
                p.requires_grad_(False)
            yield model
    finally:
        for p, flag in grads.items():
            p.requires_grad_(flag)


class _RedirectedReLU(torch.autograd.Function):
    """max(x, 0) whose backward, for a row where the true gradient is zero everywhere, lets through
    the components that would raise x (never those that would push a negative x further down)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        normal = torch.ops.aten.threshold_backward(grad, x, 0.0)  # ReLU's own fused backward
        blocked = ~normal.flatten(1).any(dim=1)
        if not bool(blocked.any()):  # the usual case after the first steps: an ordinary ReLU backward
            return normal
        # the loss is -objective: a positive gradient would push a negative input further down
        redirected = grad * ((x > 0) | (grad <= 0))
        return torch.where(blocked.view(-1, *[1] * (x.dim() - 1)), redirected, normal)


def redirected_relus(model: nn.Module, enabled: bool = True) -> AbstractContextManager[None]:
    """Every `nn.ReLU` module of the model backpropagates as `_RedirectedReLU` inside the block."""
    return relus_replaced(model, _RedirectedReLU.apply, enabled)


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    reference = next(model.parameters(), None)
    if reference is None or not reference.is_floating_point():
        return torch.device("cpu"), torch.get_default_dtype()
    return reference.device, reference.dtype


def _channel_stats(values: float | Sequence[float], channels: int) -> list[float]:
    values = [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise ValueError(f"mean/std have {len(values)} entries for {channels} channels")
    return values


def to_display(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(N, C, H, W) normalized images -> (N, H, W, C) uint8 in display range, values outside [0, 1] clipped."""
    c = images.shape[1]
    m = torch.tensor(_channel_stats(mean, c), dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    s = torch.tensor(_channel_stats(std, c), dtype=images.dtype, device=images.device).view(1, c, 1, 1)
    unit_range = (images.detach() * s + m).clamp(0, 1)
    return (unit_range * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def render(model: nn.Module, units_: Sequence[Unit], input_shape: tuple[int, int, int], *,
           mean: float | Sequence[float], std: float | Sequence[float], settings: Settings | None = None,
           seed: int | Sequence[int] = 0, chunk_size: int = DEFAULT_CHUNK_SIZE, maxima: UnitMaxima | None = None,
           extra: Objective | None = None, flat_margin: float = 0.1,
           precision: torch.dtype = torch.float32, windows: Mapping[str, Window] | None = None) -> Rendering:
    """Preferred input of each unit (input_shape = (C, H, W)), optimized `chunk_size` units at a time.

    `precision` is what the network runs in during the ascent (torch.bfloat16: autocast, the image,
    its parameterization and the regularizers staying float32); the activations at the start and the
    end are always measured in the model's own precision, so records compare across precisions.

    `seed` is one seed for all rows or one per unit (e.g. the same unit three times with three seeds).
    `extra` is added to every row's unit objective (e.g. `image_l2(0.1)`); records always report the
    plain unit activation. `windows` maps a conv layer's path to the receptive-field crop its centre
    neuron sees (`window.center_window`): with the 'center' objective, that layer's rows run the
    network on the crop only, which changes nothing but the cost. A unit is flat when reached - start
    < flat_margin * max(|start|, best real activation, 1e-6): the optimization failed to raise it by a
    useful amount.

    Batch composition changes nothing in the algorithm (noise, jitter, regularizers are per row), but
    kernels may round differently for different batch sizes (~1e-7). That stays invisible unless a
    discrete choice amplifies it: with the Fourier parameterization and percentile clipping, cleared
    pixels come back from the FFT at ~1e-8 rather than 0, and those rounding differences then settle
    max-pool ties, so the same unit alone and in a batch may reach different (equally valid) images.
    """
    settings = settings or Settings()
    units_ = list(units_)
    seeds = [seed] * len(units_) if isinstance(seed, int) else [int(s) for s in seed]
    if len(seeds) != len(units_):
        raise ValueError(f"{len(seeds)} seeds for {len(units_)} units")
    if maxima is not None and len(maxima.best) != len(units_):
        raise ValueError(f"maxima cover {len(maxima.best)} units, not {len(units_)}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    device, dtype = _device_dtype(model)
    c = input_shape[0]
    m = torch.tensor(_channel_stats(mean, c), device=device, dtype=dtype).view(1, c, 1, 1)
    s = torch.tensor(_channel_stats(std, c), device=device, dtype=dtype).view(1, c, 1, 1)
    bounds = ((0 - m) / s, (1 - m) / s)

    # rows of one layer together, so a chunk rarely runs deeper than its own units need; a layer run
    # on its window gets chunks of its own, since the network then takes a crop of the image
    first_seen = {path: i for i, path in reversed(list(enumerate(u.path for u in units_)))}
    order = sorted(range(len(units_)), key=lambda i: first_seen[units_[i].path])
    windows = dict(windows or {}) if settings.reduce == "center" and not (extra and extra.paths) else {}
    whole = [i for i in order if units_[i].path not in windows]
    batches = [(whole[b:b + chunk_size], None) for b in range(0, len(whole), chunk_size)]
    for path in dict.fromkeys(units_[i].path for i in order if units_[i].path in windows):
        mine = [i for i in order if units_[i].path == path]
        batches += [(mine[b:b + chunk_size], windows[path]) for b in range(0, len(mine), chunk_size)]
    images = torch.empty(len(units_), *input_shape, dtype=dtype)
    starts = torch.empty(len(units_), dtype=torch.float64)
    reached = torch.empty(len(units_), dtype=torch.float64)
    with frozen(model):
        for rows, window in batches:
            log.debug("optvis: %d units of %s%s", len(rows), units_[rows[0]].path, " (windowed)" if window else "")
            chunk = _optimize(model, [units_[i] for i in rows], [seeds[i] for i in rows], tuple(input_shape),
                              settings, bounds, device, dtype, extra, precision, window)
            images[rows] = chunk[0].cpu()
            starts[rows] = chunk[1].double().cpu()
            reached[rows] = chunk[2].double().cpu()

    records = []
    for i, unit in enumerate(units_):
        best = float(maxima.best[i]) if maxima is not None else None
        scale = max(abs(float(starts[i])), best if best is not None else 0.0, 1e-6)
        records.append(UnitRecord(unit, seeds[i], float(starts[i]), float(reached[i]), best,
                                  bool(maxima.dead[i]) if maxima is not None else None,
                                  float(reached[i] - starts[i]) < flat_margin * scale))
    return Rendering(images, to_display(images, m.flatten().tolist(), s.flatten().tolist()), records, settings)


# Models whose forward cannot take a channels-last image (a `.view` of a conv map, say): found on their
# first ascent, which then runs again in the default layout, and remembered for the process
_CONTIGUOUS_ONLY: weakref.WeakSet[nn.Module] = weakref.WeakSet()


@contextmanager
def channels_last(model: nn.Module) -> Iterator[None]:
    """The model's 4-D weights in channels-last layout, put back as they were afterwards. With the images
    in that layout too, PyTorch's CPU max-pooling and bfloat16 convolutions vectorize over channels: on one
    thread the default models' ascent in bfloat16 ran 1.3x (conv4) and 1.4x (fc6) the unit-steps/s of the
    default layout (1.1-1.2x on two threads, ~1.05x in float32). The values are the same; only the memory
    order changes."""
    # every 4-D weight, even one that already counts as channels-last: a 1-channel conv's (C, 1, k, k) weight
    # does either way, and only its explicit strides make its output (and the max-pool after it) channels-last
    kept = [(p, p.data) for p in model.parameters() if p.dim() == 4]
    for p, data in kept:
        p.data = data.contiguous(memory_format=torch.channels_last)
        if p.data.data_ptr() == data.data_ptr():  # no copy was made: restride it explicitly
            p.data = torch.empty_like(data, memory_format=torch.channels_last).copy_(data)
    try:
        yield
    finally:
        for p, data in kept:
            p.data = data


def in_channels_last(model: nn.Module, run: Callable[[torch.memory_format], T]) -> T:
    """`run(torch.channels_last)` with the model's weights in that layout (`channels_last`), or
    `run(torch.contiguous_format)` for a model whose forward refuses it (a `.view` on a conv output;
    remembered, so it is tried once). `run` puts its inputs in the layout it is given."""
    if model not in _CONTIGUOUS_ONLY:
        try:
            with channels_last(model):
                return run(torch.channels_last)
        except RuntimeError as e:
            if "view" not in str(e) and "stride" not in str(e):
                raise
            log.info("optvis: %s takes no channels-last input (%s); running it in the default layout",
                     type(model).__name__, str(e).splitlines()[0])
            _CONTIGUOUS_ONLY.add(model)
    return run(torch.contiguous_format)


def _optimize(model: nn.Module, rows: list[Unit], seeds: list[int], shape: tuple[int, int, int], settings: Settings,
              bounds: tuple[torch.Tensor, torch.Tensor], device: torch.device, dtype: torch.dtype,
              extra: Objective | None, precision: torch.dtype = torch.float32, window: Window | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_ascend` in channels-last layout, or in the default one for a model whose forward refuses it."""
    return in_channels_last(model, lambda layout: _ascend(model, rows, seeds, shape, settings, bounds, device, dtype,
                                                          extra, precision, window, layout))


def _ascend(model: nn.Module, rows: list[Unit], seeds: list[int], shape: tuple[int, int, int], settings: Settings,
           bounds: tuple[torch.Tensor, torch.Tensor], device: torch.device, dtype: torch.dtype,
           extra: Objective | None, precision: torch.dtype, window: Window | None,
           layout: torch.memory_format) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch, row i for unit rows[i]: (final images, activation at start, activation reached).
    With a `window` the network sees only that crop of each (whole, jittered) image, in `layout`."""
    generators = [torch.Generator().manual_seed(row_seed(s, u)) for s, u in zip(seeds, rows, strict=True)]
    # noise first, then the jitter draws: a row's start does not depend on steps or jitter
    init = torch.cat([starting_noise(g, shape, settings) for g in generators]).to(device=device, dtype=dtype)
    init = torch.maximum(torch.minimum(init, bounds[1]), bounds[0]) if settings.clamp else init
    shifts = torch.stack([draw_shifts(g, settings.steps, settings.jitter) for g in generators])  # (N, steps, 2)

    activation = units(rows, settings.reduce, (window.row, window.col) if window else None)
    objective = activation + extra if extra is not None else activation
    paths = sorted(objective.paths | activation.paths)
    crop = window.crop if window else (lambda x: x)

    def seen_by_net(x: torch.Tensor) -> torch.Tensor:
        return crop(x).contiguous(memory_format=layout)

    start = activation(forward_to(model, seen_by_net(init), paths, grad=False), init)

    param = make_param(settings.param, init)
    optimizer = torch.optim.Adam(param.params, lr=settings.lr)
    want_grad = settings.contrib_clip_pct > 0
    with redirected_relus(model, settings.redirect_relu):
        for step in range(settings.steps):
            optimizer.zero_grad(set_to_none=True)
            image = param.image_fn()
            if want_grad and not image.is_leaf:
                image.retain_grad()
            seen = roll_rows(image, shifts[:, step]) if settings.jitter > 0 else image
            # rows are independent, so the sum's gradient is each row's own gradient
            with torch.autocast(device.type, dtype=precision, enabled=precision != dtype):
                loss = -objective(forward_to(model, seen_by_net(seen), paths), seen).float().sum()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                grad = image.grad if want_grad else None
                param.set_image(_project(param.image_fn(), grad, step, settings, bounds))

    with torch.no_grad():
        final = param.image_fn().detach()
        end = activation(forward_to(model, seen_by_net(final), paths, grad=False), final)
    return final, start.detach(), end


def _project(x: torch.Tensor, grad: torch.Tensor | None, step: int, settings: Settings,
             bounds: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Yosinski's regularizers after one step, in his order: decay, blur, norm clipping, contribution clipping."""
    if settings.decay > 0:
        x = reg.decay(x, settings.decay)
    if settings.blur_every > 0 and settings.blur_sigma > 0 and (step + 1) % settings.blur_every == 0:
        x = reg.gaussian_blur(x, settings.blur_sigma)
    if settings.norm_clip_pct > 0:
        x = reg.clip_small_norm(x, settings.norm_clip_pct)
    if settings.contrib_clip_pct > 0 and grad is not None:
        x = reg.clip_small_contribution(x, grad, settings.contrib_clip_pct)
    if settings.clamp:
        x = torch.maximum(torch.minimum(x, bounds[1]), bounds[0])
    return x


def unit_maxima(model: nn.Module, images: torch.Tensor, units_: Sequence[Unit], batch_size: int = 256,
                reduce: str = "center") -> UnitMaxima:
    """Each unit's largest activation over real `images` (N, C, H, W, in the model's normalization)."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}; known: {', '.join(REDUCTIONS)}")
    device, dtype = _device_dtype(model)
    units_ = list(units_)
    paths = sorted({u.path for u in units_})
    where = {p: [i for i, u in enumerate(units_) if u.path == p] for p in paths}
    channels = {p: torch.tensor([units_[i].index for i in where[p]], device=device) for p in paths}
    best = torch.full((len(units_),), -torch.inf, dtype=torch.float64)
    peak = torch.full((len(units_),), -torch.inf, dtype=torch.float64)
    with frozen(model), torch.no_grad():
        for begin in range(0, len(images), batch_size):
            batch = images[begin:begin + batch_size].to(device=device, dtype=dtype)
            outputs = forward_to(model, batch, paths, grad=False)
            for p in paths:
                # (images, units of this layer, neurons per unit): one neuron for an FC feature
                out = outputs[p][:, channels[p]]
                picked = out.flatten(2) if out.dim() > 2 else out[:, :, None]
                # the centre neuron of a shifted image can see any position: real images count their best one
                b = picked.mean(dim=2) if reduce == "mean" else picked.amax(dim=2)
                best[where[p]] = torch.maximum(best[where[p]], b.amax(dim=0).double().cpu())
                peak[where[p]] = torch.maximum(peak[where[p]], picked.amax(dim=(0, 2)).double().cpu())
    return UnitMaxima(best, peak)
