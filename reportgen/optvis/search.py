"""Random search over regularization settings (Bergstra and Bengio 2012), scored on a sample of units.

Score of one setting: the median over live units of

    min(reached / best real activation, RATIO_CAP) * (1 - high-frequency energy of the unit's image)

where a live unit is active (> 0) on some real image and the high-frequency energy is the share of
the image's spectral energy above half the Nyquist frequency (`regularizers.high_frequency_energy`,
about 0.8 for white noise, near 0 for smooth images). The first factor rewards driving the unit as
hard as real images do; the cap stops an adversarial image that overdrives a unit from winning on
that alone, and the second factor rewards images with natural-looking, mostly low-frequency content.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from reportgen.optvis.objectives import Unit
from reportgen.optvis.regularizers import high_frequency_energy
from reportgen.optvis.render import DEFAULT_CHUNK_SIZE, Settings, UnitMaxima, render
from reportgen.optvis.window import Window

log = logging.getLogger(__name__)

RATIO_CAP = 2.0  # reaching twice the best real activation is as good as it gets


@dataclass(frozen=True)
class SearchSpace:
    """Where random search draws settings from; a regularizer is switched off with probability `p_off`."""

    lr: tuple[float, float] = (0.01, 0.2)            # log-uniform Adam step size
    decay: tuple[float, float] = (1e-4, 0.3)         # log-uniform, Yosinski et al.'s range
    blur_every: tuple[int, int] = (1, 8)             # uniform integer
    blur_sigma: tuple[float, float] = (0.3, 1.0)     # uniform, pixels
    norm_clip_pct: tuple[float, float] = (5.0, 50.0)     # uniform percent
    contrib_clip_pct: tuple[float, float] = (5.0, 80.0)  # uniform percent
    jitter: tuple[int, int] = (0, 2)                 # uniform integer, pixels
    params: tuple[str, ...] = ("pixel", "fourier")   # uniform choice
    p_off: float = 0.5                               # chance that each of decay, blur and the clippings is off

    def draw(self, rng: random.Random, base: Settings) -> Settings:
        """One random setting; fields the space does not cover (steps, reduce, init) come from `base`."""
        def on() -> bool:
            return rng.random() >= self.p_off

        def log_uniform(bounds: tuple[float, float]) -> float:
            return math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))

        # draw every value whether used or not, so one field's switch never shifts the others' draws
        lr, decay, blur_every = log_uniform(self.lr), log_uniform(self.decay), rng.randint(*self.blur_every)
        blur_sigma, norm_pct = rng.uniform(*self.blur_sigma), rng.uniform(*self.norm_clip_pct)
        contrib_pct, jitter, param = rng.uniform(*self.contrib_clip_pct), rng.randint(*self.jitter), \
            rng.choice(self.params)
        decay_on, blur_on, norm_on, contrib_on = on(), on(), on(), on()
        return replace(base, lr=lr, param=param, jitter=jitter, decay=decay if decay_on else 0.0,
                       blur_every=blur_every if blur_on else 0, blur_sigma=blur_sigma,
                       norm_clip_pct=norm_pct if norm_on else 0.0,
                       contrib_clip_pct=contrib_pct if contrib_on else 0.0)


@dataclass(frozen=True)
class GroupSearch:
    """How each trial scored on one group's units (NaN where the group had no live unit to score)."""

    scores: list[float]    # the criterion in the module docstring, per trial
    ratios: list[float]    # median over live units of reached / best real activation (uncapped)
    hf: list[float]        # median high-frequency energy of the live units' images
    best: int              # index of the best trial (the first of equal scores); -1: no trial could score


@dataclass(frozen=True)
class SearchResult:
    """Every drawn setting in order, and how each group of units scored them."""

    trials: list[Settings]
    groups: list[GroupSearch]


def score(reached: torch.Tensor, best_real: torch.Tensor, images: torch.Tensor) -> tuple[float, float, float]:
    """(score, median ratio, median high-frequency energy) of live units, per the module docstring."""
    live = best_real > 0
    if not bool(live.any()):
        raise ValueError("no unit of the sample is active on the real images; sample other units")
    ratio = reached[live].double() / best_real[live].double()
    hf = high_frequency_energy(images[live]).double()
    value = (ratio.clamp(0.0, RATIO_CAP) * (1.0 - hf)).median()
    return float(value), float(ratio.median()), float(hf.median())


def search(model: nn.Module, groups: Sequence[Sequence[Unit]], trials: int, seed: int, *,
           input_shape: tuple[int, int, int], mean: float | Sequence[float], std: float | Sequence[float],
           maxima: Sequence[UnitMaxima], base: Settings | None = None, space: SearchSpace | None = None,
           chunk_size: int = DEFAULT_CHUNK_SIZE, precision: torch.dtype = torch.float32,
           progress: Callable[[list[Settings]], Iterable[Settings]] = iter,
           windows: Mapping[str, Window] | None = None) -> SearchResult:
    """Draw `trials` settings from `space` and render every group's units with each, all groups in one
    batch and from the same starting noise (`seed`); each group is scored on its own units and keeps its
    best trial, so a trial costs one render for every layer instead of one per layer. `maxima[i]` are
    group i's real-image maxima; `precision` and `windows` as `render`'s. Deterministic: the draws come from `seed + 1`,
    apart from the noise."""
    if trials < 1:
        raise ValueError("trials must be >= 1")
    base, space = base or Settings(), space or SearchSpace()
    units_ = [u for group in groups for u in group]
    best = torch.cat([m.best for m in maxima]) if maxima else torch.zeros(0)
    peak = torch.cat([m.peak for m in maxima]) if maxima else torch.zeros(0)
    draws = random.Random(seed + 1)
    settings = [space.draw(draws, base) for _ in range(trials)]
    table: list[list[tuple[float, float, float]]] = [[] for _ in groups]
    for trial, drawn in enumerate(progress(settings)):
        if not units_:
            break
        rendering = render(model, units_, input_shape, mean=mean, std=std, settings=drawn, seed=seed,
                           chunk_size=chunk_size, maxima=UnitMaxima(best, peak), precision=precision,
                           windows=windows)
        reached = torch.tensor([r.reached for r in rendering.records])
        # energy measured on what readers see, so channels weigh alike whatever their input std
        shown = torch.from_numpy(rendering.display).permute(0, 3, 1, 2).float() / 255
        start = 0
        for i, group in enumerate(groups):
            part = slice(start, start + len(group))
            start += len(group)
            table[i].append(score(reached[part], best[part], shown[part]) if group else (math.nan,) * 3)
        log.debug("optvis search trial %d scored", trial)
    results = []
    for row in table:
        scores = [float(s[0]) for s in row]
        valid = [k for k, s in enumerate(scores) if s == s]
        results.append(GroupSearch(scores, [float(s[1]) for s in row], [float(s[2]) for s in row],
                                   max(valid, key=lambda k: scores[k]) if valid else -1))
    return SearchResult(settings, results)
