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
import statistics
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
SHORT = 4        # a setting's first run takes a quarter of the steps (successive halving's first rung)
FINALISTS = 2    # per group, the best first runs that run again at full length, with the median one


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

    scores: list[float]    # the criterion in the module docstring, per trial, after its first run
    ratios: list[float]    # median over live units of reached / best real activation (uncapped), likewise
    hf: list[float]        # median high-frequency energy of the live units' images, likewise
    best: int              # the chosen trial: the best at full length (-1: no trial could score)
    final_trials: list[int]     # the trials run at full length for this group: its finalists and median trial
    final_scores: list[float]   # their scores at full length, in that order
    median_score: float    # the yardstick: the median trial's score at full length (NaN: nothing scored)


@dataclass(frozen=True)
class SearchResult:
    """Every drawn setting in order, and how each group of units scored them."""

    trials: list[Settings]
    groups: list[GroupSearch]
    short_steps: int       # the steps of the first, short runs (the full length when there was one rung)


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
           progress: Callable[[list[Settings], str], Iterable[Settings]] = lambda runs, _: iter(runs),
           windows: Mapping[str, Window] | None = None) -> SearchResult:
    """Draw `trials` settings from `space` and keep, for every group of units, the one that scores best.

    Successive halving (Jamieson and Talwalkar 2016) in two rungs, so many settings cost little: every
    setting first runs for 1/SHORT of `base.steps` on every group's units; then each group's FINALISTS
    best settings and its median one run again for the full steps, on that group's units only, and the
    group keeps the best of those full-length runs. The median trial's full-length score is the
    yardstick the chosen setting is compared with. With FINALISTS + 1 trials or fewer, or too few steps
    to shorten, every setting runs once at full length.

    Every group's units render in one batch per setting, from the same starting noise (`seed`, drawn
    per unit, so a unit's image does not depend on its batch), and each group is scored on its own
    units. `maxima[i]` are group i's real-image maxima; `precision` and `windows` as `render`'s;
    `progress(runs, what)` wraps each rung's settings. Deterministic: the draws come from `seed + 1`."""
    if trials < 1:
        raise ValueError("trials must be >= 1")
    base, space = base or Settings(), space or SearchSpace()
    draws = random.Random(seed + 1)
    settings = [space.draw(draws, base) for _ in range(trials)]
    short = base.steps // SHORT
    two_rungs = trials > FINALISTS + 1 and short >= 1
    first_steps = short if two_rungs else base.steps

    def run(drawn: Settings, chosen: Sequence[int]) -> list[tuple[float, float, float]]:
        """`drawn` rendered on the units of groups `chosen`, scored per group."""
        units_ = [u for i in chosen for u in groups[i]]
        best = torch.cat([maxima[i].best for i in chosen])
        peak = torch.cat([maxima[i].peak for i in chosen])
        rendering = render(model, units_, input_shape, mean=mean, std=std, settings=drawn, seed=seed,
                           chunk_size=chunk_size, maxima=UnitMaxima(best, peak), precision=precision,
                           windows=windows)
        reached = torch.tensor([r.reached for r in rendering.records])
        # energy measured on what readers see, so channels weigh alike whatever their input std
        shown = torch.from_numpy(rendering.display).permute(0, 3, 1, 2).float() / 255
        scored, start = [], 0
        for i in chosen:
            part = slice(start, start + len(groups[i]))
            start += len(groups[i])
            scored.append(score(reached[part], best[part], shown[part]))
        return scored

    filled = [i for i, group in enumerate(groups) if group]
    first: list[list[tuple[float, float, float]]] = [[(math.nan,) * 3] * trials for _ in groups]
    what = f"regularizer search, {first_steps}-step runs" if two_rungs else "regularizer search"
    for trial, drawn in enumerate(progress([replace(t, steps=first_steps) for t in settings], what)):
        if filled:
            for i, scored in zip(filled, run(drawn, filled), strict=True):
                first[i][trial] = scored
    firsts = [[row[t][0] for t in range(trials)] for row in first]
    # each group's full-length runs: its finalists and its median trial (all trials, with one rung)
    finals: list[list[int]] = []
    medians: list[int] = []
    for scores in firsts:
        ranked = sorted((t for t in range(trials) if scores[t] == scores[t]), key=lambda t: (-scores[t], t))
        medians.append(ranked[len(ranked) // 2] if ranked else -1)
        finals.append(list(dict.fromkeys(ranked[:FINALISTS] + ranked[len(ranked) // 2:][:1])) if two_rungs
                      else ranked)
    full = [dict.fromkeys(f, math.nan) for f in finals]
    if two_rungs:
        again = sorted({t for f in finals for t in f})
        for trial, drawn in zip(again, progress([settings[t] for t in again], "regularizer search, finalists"),
                                strict=True):
            chosen = [i for i, f in enumerate(finals) if trial in f]
            for i, scored in zip(chosen, run(drawn, chosen), strict=True):
                full[i][trial] = scored[0]
    else:
        for i, f in enumerate(finals):
            full[i] = {t: firsts[i][t] for t in f}
    results = []
    for i, row in enumerate(first):
        runs = full[i]
        best = max(runs, key=lambda t: (runs[t], -t)) if runs else -1
        if two_rungs:
            yardstick = runs[medians[i]] if medians[i] >= 0 else math.nan
        else:
            yardstick = statistics.median(runs.values()) if runs else math.nan
        results.append(GroupSearch([s[0] for s in row], [s[1] for s in row], [s[2] for s in row], best,
                                   list(runs), [runs[t] for t in runs], float(yardstick)))
        log.debug("optvis search: group %d keeps trial %d", i, best)
    return SearchResult(settings, results, first_steps)
