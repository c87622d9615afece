"""Uncertainty for every number the post compares, and the words that state it.

- `proportion_ci`: Wilson score interval for an accuracy (k correct of n).
- `mcnemar` / `mcnemar_from_counts`: two models scored on the same test items: exact McNemar test,
  the accuracy difference and Newcombe's paired interval for it.
- `bootstrap_ci` / `paired_bootstrap`: seeded percentile bootstrap (scipy.stats.bootstrap) for claims
  that are not a single proportion (mean correlation within vs between classes, a rank correlation,
  kNN accuracy in one space vs another); `rank_correlation`: Spearman's rho, vectorized.
- `percent_digits`, `format_percent`, `format_p`, `format_proportion_ci`, `compare_phrase`: numbers as
  a person writes them, with no more precision than the counts behind them allow.

numpy and scipy only, so the statistics can be tested apart from the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from scipy import stats as _st

# Fewest per-class values a bootstrap over classes is run on: a resample of two or three numbers is
# nearly the sample itself, and its interval would look precise for no reason (the post says none is given)
MIN_CLASSES_FOR_INTERVAL = 5

# "−" (U+2212), not "-": a hyphen before a number reads as a dash in running text.
_MINUS = "\u2212"


def _z(level: float) -> float:
    """The two-sided normal quantile for a confidence level, e.g. 1.96 for 0.95."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return float(_st.norm.ppf(0.5 + level / 2))


# ---------------------------------------------------------------------------------------------
# One proportion


def proportion_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) for the proportion `successes / n`, as fractions in [0, 1].

    Why Wilson and not the textbook Wald interval p ± z·sqrt(p(1-p)/n): Wald collapses to a single
    point at 0/n and n/n (a model with 100/100 correct would get the interval [1, 1]) and undercovers
    badly near 0 and 1 and for small n, which is exactly where per-class rows of a confusion table
    sit. Wilson inverts the score test, so it stays inside [0, 1], is never empty, and keeps close
    to nominal coverage for all n (Newcombe 1998, Stat Med 17:857; Brown, Cai & DasGupta 2001).
    With n = 0 nothing is known, and the interval is the whole range (0.0, 1.0).
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    _z(level)  # validates level
    if n == 0:
        return (0.0, 1.0)
    ci = _st.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    # At 0/n and n/n the bound is exactly 0 or 1; set it so rounding cannot give -1e-17 or 1.0000001.
    low = 0.0 if successes == 0 else max(0.0, float(ci.low))
    high = 1.0 if successes == n else min(1.0, float(ci.high))
    return (low, high)


# ---------------------------------------------------------------------------------------------
# Two models on the same items


@dataclass(frozen=True)
class McNemarResult:
    """Two classifiers scored on the same n items: the paired 2x2 table, the test and the difference.

    `b` counts items only A got right, `c` items only B got right (McNemar's discordant cells);
    `both` and `neither` are the concordant cells. `diff` is accuracy A minus accuracy B, so it is
    positive when A is better.
    """

    both: int
    b: int
    c: int
    neither: int
    p_value: float
    diff: float
    diff_ci: tuple[float, float]
    alpha: float

    @property
    def n(self) -> int:
        """Items both models were scored on."""
        return self.both + self.b + self.c + self.neither

    @property
    def correct_a(self) -> int:
        """Items model A got right."""
        return self.both + self.b

    @property
    def correct_b(self) -> int:
        """Items model B got right."""
        return self.both + self.c

    @property
    def significant(self) -> bool:
        """True when the exact McNemar p-value is below alpha (strictly: p = alpha is not)."""
        return self.p_value < self.alpha

    @property
    def level(self) -> float:
        """Confidence level of `diff_ci`, the one that matches the test: 1 - alpha."""
        return 1 - self.alpha

    @property
    def flips(self) -> int | None:
        """The fewest discordant items that, decided for the other model, reverse the verdict: a
        significant difference becomes not significant, or a not significant one significant (None
        when no such shift exists). A verdict a handful of items can reverse is fragile (Walsh et al.
        2014's fragility index, for the paired test)."""
        high, low = max(self.b, self.c), min(self.b, self.c)
        shifts = range(1, high + 1) if self.significant else range(1, low + 1)
        for k in shifts:
            more, fewer = (high - k, low + k) if self.significant else (high + k, low - k)
            p = float(_st.binomtest(more, more + fewer, 0.5).pvalue) if more + fewer else 1.0
            if (p < self.alpha) != self.significant:
                return k
        return None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, alpha: float = 0.05) -> McNemarResult:
    """Paired comparison of two models from per-item correctness (bool arrays over the same items)."""
    a = np.asarray(correct_a)
    b = np.asarray(correct_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"need two 1-D arrays of the same length, got shapes {a.shape} and {b.shape}")
    for arr in (a, b):
        # 0/1 ints are fine; anything else is probably predicted labels passed by mistake.
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError("correctness arrays must hold booleans (or 0/1)")
    a, b = a.astype(bool), b.astype(bool)
    return mcnemar_from_counts(int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b)),
                               int(np.sum(~a & ~b)), alpha=alpha)


def mcnemar_from_counts(both: int, b: int, c: int, neither: int, alpha: float = 0.05) -> McNemarResult:
    """The same as `mcnemar` from the four cells of the paired table (both right, only A, only B, neither).

    Test: the exact (conditional) McNemar test, a two-sided binomial test of b successes in b + c
    trials with p = 1/2 (scipy.stats.binomtest). Only the discordant items carry information about
    which model is better; under "no difference" each is equally likely to favour A or B. The
    chi-square form is an approximation to this that fails for the small b + c we meet (5 to 30
    items), and the exact test costs nothing at these sizes, so it is used for every b + c.
    b + c = 0 gives p = 1.

    Interval for the difference: Newcombe's square-and-add interval for paired proportions (Newcombe
    1998, Stat Med 17:2635, method 10, with his adjustment of the phi coefficient), built from the
    Wilson intervals of the two accuracies. Unlike the paired Wald interval it does not shrink to a
    point when b = c = 0 and keeps close to nominal coverage for small counts. It is computed at level
    1 - alpha; the test decides `significant`, and near the boundary the two can disagree slightly.
    """
    cells = (both, b, c, neither)
    if any(int(x) != x or x < 0 for x in cells):
        raise ValueError(f"cells must be non-negative counts, got {cells}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    both, b, c, neither = (int(x) for x in cells)
    n = both + b + c + neither
    p_value = 1.0 if b + c == 0 else float(_st.binomtest(b, b + c, 0.5).pvalue)
    # binomtest can return 1 + 1e-16 from summing tail probabilities; a p-value is at most 1.
    p_value = min(1.0, p_value)
    if n == 0:
        return McNemarResult(0, 0, 0, 0, 1.0, 0.0, (-1.0, 1.0), alpha)
    diff = (b - c) / n
    return McNemarResult(both, b, c, neither, p_value, diff, _newcombe_paired(both, b, c, neither, 1 - alpha), alpha)


def _newcombe_paired(both: int, b: int, c: int, neither: int, level: float) -> tuple[float, float]:
    """Newcombe's square-and-add interval for accuracy A minus accuracy B on paired data."""
    n = both + b + c + neither
    p1, p2 = (both + b) / n, (both + c) / n
    l1, u1 = proportion_ci(both + b, n, level)
    l2, u2 = proportion_ci(both + c, n, level)
    # phi: correlation of the two models' correctness. Positive correlation narrows the interval
    # (errors on the same items cancel in the difference). Newcombe shrinks a positive AD - BC by
    # n/2 (a continuity adjustment) so that small tables do not get an overconfident interval.
    margins = (both + b) * (c + neither) * (both + c) * (b + neither)
    phi = 0.0
    if margins > 0:
        ad_bc = both * neither - b * c
        adjusted = max(ad_bc - n / 2, 0.0) if ad_bc > 0 else ad_bc
        phi = adjusted / math.sqrt(margins)
    d1, e1 = p1 - l1, u1 - p1
    d2, e2 = p2 - l2, u2 - p2
    low = (p1 - p2) - math.sqrt(max(0.0, d1 * d1 - 2 * phi * d1 * e2 + e2 * e2))
    high = (p1 - p2) + math.sqrt(max(0.0, e1 * e1 - 2 * phi * e1 * d2 + d2 * d2))
    return (max(-1.0, low), min(1.0, high))


# ---------------------------------------------------------------------------------------------
# Bootstrap, for claims that are not one proportion


@dataclass(frozen=True)
class BootstrapResult:
    """A statistic on the full sample and its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float
    reps: int
    seed: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or below 0: a difference significant at 1 - level."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(metric_fn: Callable[[np.ndarray], float], n: int, *, level: float = 0.95,
                     reps: int = 2000, seed: int = 0) -> BootstrapResult:
    """Bootstrap `metric_fn(indices)` by resampling the n items (indices 0..n-1) with replacement.

    Both sides of a comparison see the same resampled items, so it is paired: e.g.
    `lambda i: knn_2d[i].mean() - knn_desc[i].mean()` for kNN accuracy in a 2D map vs descriptor
    space, or a function that computes mean within-class minus mean between-class correlation over
    the images `i`. Resample the items the numbers are computed from (images), not pairwise
    correlations: pairs sharing an image are not independent, and treating them so makes the
    interval far too narrow.

    Interval: percentile (the level/2 quantiles of the `reps` replicates), by scipy.stats.bootstrap.
    It needs no extra assumptions and is adequate for means over hundreds of items; with 2000
    replicates the bounds of a 95% interval vary by well under a tenth of its width between seeds.
    Same seed, same interval.
    """
    if n < 1:
        raise ValueError(f"need at least one item to resample, got n = {n}")
    if reps < 1:
        raise ValueError(f"reps must be positive, got {reps}")
    _z(level)  # validates level
    estimate = float(metric_fn(np.arange(n)))
    # resampled in batches of 64 replicates: memory stays O(64 n) for large test sets
    result = _st.bootstrap((np.arange(n),), lambda idx: float(metric_fn(idx)), vectorized=False, paired=True,
                           n_resamples=reps, batch=64, confidence_level=level, method="percentile",
                           random_state=np.random.default_rng(seed))
    return BootstrapResult(estimate, float(result.confidence_interval.low), float(result.confidence_interval.high),
                           level, reps, seed)


def bootstrap_ci(*samples: np.ndarray, stat: Callable[..., np.ndarray] = np.mean, level: float = 0.95,
                 reps: int = 2000, seed: int = 0) -> BootstrapResult:
    """Percentile bootstrap interval of `stat(*samples)`, resampling the items of the samples together
    (paired: item i of each sample stays with item i of the others), seeded. `stat` is vectorized:
    it takes `axis` and reduces along it, as numpy's reductions and `rank_correlation` do, so all
    replicates are computed in a few array operations."""
    data = [np.asarray(s, dtype=np.float64) for s in samples]
    if not data or any(d.ndim != 1 or len(d) == 0 or len(d) != len(data[0]) for d in data):
        raise ValueError("need one or more non-empty 1-D samples of equal length")
    _z(level)  # validates level
    if reps < 1:
        raise ValueError(f"reps must be positive, got {reps}")
    result = _st.bootstrap(data, stat, vectorized=True, paired=True, n_resamples=reps, batch=256,
                           confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    interval = result.confidence_interval
    return BootstrapResult(float(stat(*data, axis=-1)), float(interval.low), float(interval.high), level, reps, seed)


def rank_correlation(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rank correlation of x and y along `axis`, ties given their average rank; 0 where
    either is constant, which leaves the correlation undefined."""
    rx, ry = _st.rankdata(x, axis=axis), _st.rankdata(y, axis=axis)
    rx, ry = rx - rx.mean(axis=axis, keepdims=True), ry - ry.mean(axis=axis, keepdims=True)
    spread = np.sqrt((rx * rx).sum(axis=axis) * (ry * ry).sum(axis=axis))
    return np.where(spread > 0, (rx * ry).sum(axis=axis) / np.where(spread > 0, spread, 1.0), 0.0)


# ---------------------------------------------------------------------------------------------
# Numbers as a person writes them


def format_count(n: int) -> str:
    """An integer with thousands separators: 1000 -> "1,000"."""
    return f"{int(n):,}"


def count_noun(k: int, singular: str, plural: str | None = None) -> str:
    """A count and its noun, agreeing in number: "1 image", "0 images", "1,000 images"."""
    noun = singular if k == 1 else (plural or singular + "s")
    return f"{format_count(k)} {noun}"


def percent_digits(n: int, max_digits: int = 2) -> int:
    """Decimals a percentage of n items can carry: 0 for n <= 100, 1 for n <= 1,000, 2 above.

    Rule: one item moves the percentage by 100/n points, so no digit finer than the leading digit
    of that step means anything. The last shown digit is the decade of the step: n <= 100 (step
    >= 1) -> whole percents; n <= 1,000 (step >= 0.1) -> one decimal; and so on, capped at
    `max_digits` because finer digits mean nothing to a reader even when the count supports them.
    """
    digits = 0
    # Integers, not log10: log10(1000 / 100) must be exactly 1 for the boundary to fall on n = 1,000.
    while digits < max_digits and 100 * 10**digits < n:
        digits += 1
    return digits


def _round_half_up(x: Decimal, digits: int) -> Decimal:
    """Round as a person does (12.5 -> 13), not to even as float formatting does (12.5 -> 12)."""
    return x.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def format_number(x: float, digits: int) -> str:
    """A float with fixed decimals and a typographic minus; never "−0.0"."""
    text = f"{_round_half_up(Decimal(repr(float(x))), digits):.{digits}f}"
    if text.startswith("-"):
        text = text[1:] if float(text) == 0 else _MINUS + text[1:]
    return text


def format_percent(k: int, n: int, digits: int | None = None) -> str:
    """k of n as a percentage with `percent_digits(n)` decimals: (976, 1000) -> "97.6%", (95, 100) -> "95%".

    A count that is not 0 or n never shows as "0%" or "100%" (which would claim none or all):
    it shows as "<0.01%" or ">99.99%" at the precision used. n = 0 gives "n/a".
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got {k} of {n}")
    if n == 0:
        return "n/a"
    d = percent_digits(n) if digits is None else digits
    value = _round_half_up(Decimal(100 * k) / Decimal(n), d)
    step = Decimal(1).scaleb(-d)
    if k > 0 and value == 0:
        return f"<{step:.{d}f}%"
    if k < n and value == 100:
        return f">{100 - step:.{d}f}%"
    return f"{value:.{d}f}%"


def format_p(p: float, alpha: float = 0.05) -> str:
    """A p-value as written in a sentence: "p = 0.04", "p = 0.37", "p = 1", "p < 0.001".

    Two significant digits, more where rounding would put the shown value on the other side of
    alpha than the real one (0.0496 shows as "0.0496", not "0.05", when alpha is 0.05).
    """
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    floor = min(0.001, alpha)
    if p < floor:
        return f"p < {floor:g}"
    for sig in range(2, 8):
        text = f"{p:.{sig}g}"
        shown = float(text)
        if (shown < alpha) == (p < alpha):
            break
    return f"p = {text}"


def _level_label(level: float) -> str:
    """0.95 -> "95%", 0.999 -> "99.9%"."""
    return f"{100 * level:g}%"


def format_proportion_ci(k: int, n: int, level: float = 0.95) -> str:
    """k of n with its Wilson interval: "97.6% (95% CI 96.5–98.4%)"."""
    if n == 0:
        return "n/a"
    low, high = proportion_ci(k, n, level)
    d = percent_digits(n)
    return (f"{format_percent(k, n)} ({_level_label(level)} CI "
            f"{format_number(100 * low, d)}\u2013{format_number(100 * high, d)}%)")


# a verdict this many discordant items can reverse is called fragile in the post
FRAGILE = 3


def compare_phrase(res: McNemarResult, unit: str = "image", plural: str | None = None,
                   with_ci: bool = False) -> str:
    """The comparison in words, to follow the two accuracies in a sentence.

    "a difference of 8 images out of 1,000 (McNemar p = 0.04), which is significant at the 5% level";
    with `with_ci`, the difference in percentage points and its interval join the parenthesis:
    "(0.8 percentage points, 95% CI 0.1 to 1.5; McNemar p = 0.04)". Which model is ahead is left to
    the surrounding sentence; the interval is signed as accuracy A minus accuracy B.
    """
    images = count_noun(abs(res.correct_a - res.correct_b), unit, plural)
    details = f"McNemar {format_p(res.p_value, res.alpha)}"
    if with_ci:
        d = percent_digits(res.n)
        low, high = res.diff_ci
        points = format_number(100 * res.diff, d)
        noun = "percentage point" if points.lstrip(_MINUS) == "1" else "percentage points"
        details = (f"{points} {noun}, {_level_label(res.level)} CI "
                   f"{format_number(100 * low, d)} to {format_number(100 * high, d)}; {details}")
    verdict = "significant" if res.significant else "not significant"
    fragile = ""
    if res.significant and res.flips is not None and res.flips <= FRAGILE:  # as Walsh's index, for a finding
        fragile = (f", but fragile: {count_noun(res.flips, unit, plural)} decided for the other model would make "
                   "it not significant")
    return (f"a difference of {images} out of {format_count(res.n)} ({details}), "
            f"which is {verdict} at the {_level_label(res.alpha)} level{fragile}")
