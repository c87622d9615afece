"""reportgen.stats against published values, scipy, and the rules the post's numbers follow."""

import numpy as np
import pytest
from scipy.stats import binomtest

from reportgen.stats import (
    BootstrapResult,
    bootstrap_ci,
    compare_phrase,
    count_noun,
    format_count,
    format_p,
    format_percent,
    format_proportion_ci,
    mcnemar,
    mcnemar_from_counts,
    paired_bootstrap,
    percent_digits,
    proportion_ci,
    rank_correlation,
)


def _paired(both: int, b: int, c: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-item correctness arrays that give the paired table (both, only A, only B, neither)."""
    a = np.array([True] * both + [True] * b + [False] * c + [False] * neither)
    bb = np.array([True] * both + [False] * b + [True] * c + [False] * neither)
    return a, bb


# --- Wilson interval ---------------------------------------------------------------------------

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat Med 17:857,
# Table II, method 3 (Wilson score without continuity correction).
@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_newcombe_table(k: int, n: int, low: float, high: float) -> None:
    got = proportion_ci(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_at_the_edges() -> None:
    # 0/10 by hand: z^2 / (n + z^2) = 3.8415 / 13.8415 = 0.2775; 10/10 mirrors it.
    assert proportion_ci(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert proportion_ci(10, 10) == pytest.approx((0.7225, 1.0), abs=5e-5)
    assert proportion_ci(0, 10)[0] == 0.0 and proportion_ci(10, 10)[1] == 1.0  # exact, not 1e-17 off
    assert proportion_ci(0, 0) == (0.0, 1.0)


def test_wilson_level_and_arguments() -> None:
    narrow, wide = proportion_ci(50, 100, 0.90), proportion_ci(50, 100, 0.99)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        proportion_ci(11, 10)
    with pytest.raises(ValueError):
        proportion_ci(5, 10, level=1.0)


# --- McNemar -----------------------------------------------------------------------------------

def test_mcnemar_counts_cells_from_arrays() -> None:
    res = mcnemar(*_paired(50, 3, 9, 8))
    assert (res.both, res.b, res.c, res.neither, res.n) == (50, 3, 9, 8, 70)
    assert (res.correct_a, res.correct_b) == (53, 59)
    assert res.diff == pytest.approx((3 - 9) / 70)
    # 0/1 ints are accepted like booleans; labels are not.
    a, b = _paired(50, 3, 9, 8)
    assert mcnemar(a.astype(int), b.astype(int)) == res
    with pytest.raises(ValueError):
        mcnemar(np.array([0, 1, 2]), np.array([0, 1, 1]))
    with pytest.raises(ValueError):
        mcnemar(np.ones(3, bool), np.ones(4, bool))


@pytest.mark.parametrize(("b", "c"), [(1, 7), (6, 16), (12, 20), (30, 45), (100, 140)])
def test_mcnemar_p_is_exact_binomial_on_discordant_pairs(b: int, c: int) -> None:
    res = mcnemar_from_counts(400, b, c, 30)
    assert res.p_value == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    # The test looks only at discordant pairs; swapping the models swaps the sign, not the p-value.
    swapped = mcnemar_from_counts(400, c, b, 30)
    assert swapped.p_value == pytest.approx(res.p_value) and swapped.diff == pytest.approx(-res.diff)


def test_mcnemar_textbook_bentur() -> None:
    # Bentur et al. (2009), as analysed by Fagerland, Lydersen & Laake (2013, BMC Med Res Methodol):
    # discordant pairs 1 and 7, exact conditional McNemar p = 2 * (1 + 8) / 2^8 = 0.0703.
    res = mcnemar_from_counts(1, 1, 7, 12)
    assert res.p_value == pytest.approx(18 / 256, rel=1e-12)
    assert not res.significant
    # p equal to alpha is not below it; the shown p is not rounded onto the wrong side either.
    at_alpha = mcnemar_from_counts(1, 1, 7, 12, alpha=18 / 256)
    assert at_alpha.p_value == at_alpha.alpha and not at_alpha.significant
    assert format_p(at_alpha.p_value, at_alpha.alpha) == "p = 0.0703125"


def test_newcombe_interval_textbook_cavo() -> None:
    # Cavo et al. (2012), Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables",
    # ch. 8: difference -0.0621, Newcombe square-and-add 95% CI -0.1186 to -0.0046; exact p 0.0525.
    res = mcnemar_from_counts(59, 6, 16, 80)
    assert res.diff == pytest.approx(-0.0621, abs=5e-5)
    assert res.diff_ci == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    assert res.p_value == pytest.approx(0.0525, abs=5e-5)
    assert not res.significant  # the exact test and the interval disagree near the edge; the test decides


def test_identical_models_are_not_different() -> None:
    a = np.array([True] * 968 + [False] * 32)
    res = mcnemar(a, a.copy())
    assert (res.b, res.c) == (0, 0)
    assert res.p_value == 1.0 and not res.significant
    assert res.diff == 0.0
    low, high = res.diff_ci
    assert low < 0 < high  # no discordant items seen is not proof of none


def test_clear_difference_is_significant() -> None:
    res = mcnemar_from_counts(900, 2, 60, 38)
    assert res.p_value < 1e-10 and res.significant
    assert res.diff_ci[1] < 0  # A is worse, and the whole interval says so


def test_significance_follows_alpha_and_empty_input() -> None:
    res = mcnemar_from_counts(900, 5, 16, 79)  # p = 0.027
    assert res.significant
    assert not mcnemar_from_counts(900, 5, 16, 79, alpha=0.01).significant
    empty = mcnemar(np.zeros(0, bool), np.zeros(0, bool))
    assert empty.n == 0 and empty.p_value == 1.0 and empty.diff_ci == (-1.0, 1.0)


# --- Bootstrap ---------------------------------------------------------------------------------

def test_bootstrap_is_deterministic_per_seed() -> None:
    values = np.random.default_rng(3).normal(0.4, 0.2, 300)
    first = bootstrap_ci(values, seed=7, reps=500)
    assert bootstrap_ci(values, seed=7, reps=500) == first
    assert bootstrap_ci(values, seed=8, reps=500) != first
    assert first.estimate == pytest.approx(values.mean())
    assert first.low < first.estimate < first.high


def test_bootstrap_interval_matches_standard_error() -> None:
    # For a mean, the percentile interval is close to mean ± 1.96 s / sqrt(n).
    values = np.random.default_rng(0).normal(1.0, 1.0, 400)
    res = bootstrap_ci(values, reps=2000, seed=1)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert res.high - res.low == pytest.approx(2 * half, rel=0.1)
    assert res.excludes_zero


def test_rank_correlation_is_spearmans_rho_with_ties_and_its_interval_is_paired() -> None:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    x = np.round(rng.random(80), 1)  # many ties
    y = x + rng.normal(0, 0.2, 80)
    assert float(rank_correlation(x, y)) == pytest.approx(spearmanr(x, y).statistic)
    assert float(rank_correlation(np.ones(5), np.arange(5.0))) == 0.0  # undefined for a constant column
    both = np.stack([x, y])  # vectorized: one rho per row
    assert rank_correlation(both, both[::-1]).tolist() == pytest.approx([spearmanr(x, y).statistic] * 2)
    res = bootstrap_ci(x, y, stat=rank_correlation, reps=500, seed=3)
    assert res.estimate == pytest.approx(spearmanr(x, y).statistic) and 0 < res.low < res.estimate < res.high
    # paired: shuffling y breaks the pairs and the correlation with them
    loose = bootstrap_ci(x, rng.permutation(y), stat=rank_correlation, reps=500, seed=3)
    assert loose.low < 0 < loose.high
    with pytest.raises(ValueError):
        bootstrap_ci(x, y[:10], stat=rank_correlation)


def test_paired_bootstrap_for_a_difference() -> None:
    rng = np.random.default_rng(5)
    knn_2d = rng.random(500) < 0.80
    knn_desc = knn_2d | (rng.random(500) < 0.5)  # descriptor space never worse on an item
    clear = paired_bootstrap(lambda i: knn_desc[i].mean() - knn_2d[i].mean(), 500, reps=1000, seed=2)
    assert isinstance(clear, BootstrapResult) and clear.excludes_zero and clear.low > 0
    same = paired_bootstrap(lambda i: knn_2d[i].mean() - knn_2d[i].mean(), 500, reps=200, seed=2)
    assert (same.low, same.high) == (0.0, 0.0) and not same.excludes_zero
    with pytest.raises(ValueError):
        paired_bootstrap(lambda i: 0.0, 0)


# --- Formatting --------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "digits"), [
    (0, 0), (1, 0), (100, 0), (101, 1), (1000, 1), (1001, 2), (10_000, 2), (1_000_000, 2),
])
def test_percent_digits_boundaries(n: int, digits: int) -> None:
    assert percent_digits(n) == digits


def test_percent_digits_without_cap() -> None:
    assert percent_digits(10_001, max_digits=6) == 3 and percent_digits(10_000, max_digits=6) == 2


def test_format_percent() -> None:
    assert format_percent(976, 1000) == "97.6%"
    assert format_percent(968, 1000) == "96.8%"
    assert format_percent(95, 100) == "95%"
    assert format_percent(1, 8) == "13%"  # half up, as a person rounds: 12.5 -> 13
    assert format_percent(2, 3) == "67%"
    assert format_percent(9761, 10_000) == "97.61%"
    assert format_percent(99_999, 100_000) == ">99.99%"  # never "100%" unless all are
    assert format_percent(1, 100_000) == "<0.01%"
    assert format_percent(0, 50) == "0%" and format_percent(50, 50) == "100%"
    assert format_percent(0, 0) == "n/a"
    assert format_percent(1, 3, digits=2) == "33.33%"


def test_format_p() -> None:
    assert format_p(0.04) == "p = 0.04"
    assert format_p(0.3712) == "p = 0.37"
    assert format_p(0.0123) == "p = 0.012"
    assert format_p(1.0) == "p = 1"
    assert format_p(0.0004) == "p < 0.001"
    # Rounding must not carry a p-value across alpha.
    assert format_p(0.0496) == "p = 0.0496"
    assert format_p(0.0096, alpha=0.01) == "p = 0.0096"


def test_numbers_read_as_written() -> None:
    assert format_count(1000) == "1,000" and format_count(12) == "12"
    assert count_noun(1, "image") == "1 image"
    assert count_noun(2, "image") == "2 images"
    assert count_noun(0, "image") == "0 images"
    assert count_noun(1000, "image") == "1,000 images"
    assert count_noun(3, "class", "classes") == "3 classes"
    assert format_proportion_ci(976, 1000) == "97.6% (95% CI 96.5\u201398.4%)"
    assert format_proportion_ci(95, 100) == "95% (95% CI 89\u201398%)"


def test_compare_phrase() -> None:
    # 976 vs 968 correct of 1,000 on 20 and 12 discordant images: the example.
    res = mcnemar_from_counts(956, 20, 12, 12)
    assert compare_phrase(res) == ("a difference of 8 images out of 1,000 (McNemar p = 0.22), "
                                   "which is not significant at the 5% level")
    clear = mcnemar_from_counts(900, 30, 5, 65)
    assert compare_phrase(clear) == ("a difference of 25 images out of 1,000 (McNemar p < 0.001), "
                                     "which is significant at the 5% level")
    one = mcnemar_from_counts(90, 1, 0, 9)
    assert compare_phrase(one).startswith("a difference of 1 image out of 100 (McNemar p = 1)")
    assert "2 digits out of" in compare_phrase(mcnemar_from_counts(90, 3, 1, 6), unit="digit")


def test_a_significant_verdict_a_handful_of_images_can_reverse_is_called_fragile() -> None:
    near = mcnemar_from_counts(900, 21, 9, 70)  # p = 0.043: one image the other way gives p = 0.072
    assert near.flips == 1 and compare_phrase(near).endswith(
        "which is significant at the 5% level, but fragile: 1 image decided for the other model would make it "
        "not significant")
    sure = mcnemar_from_counts(900, 40, 1, 59)
    assert sure.flips > 3 and "fragile" not in compare_phrase(sure)
    # the shift is real: moving that many images reverses the test
    k = near.flips
    assert mcnemar_from_counts(900, 21 - k, 9 + k, 70).p_value >= 0.05
    assert "fragile" not in compare_phrase(mcnemar_from_counts(956, 20, 12, 12))  # not significant: nothing to break


def test_compare_phrase_with_interval() -> None:
    res = mcnemar_from_counts(956, 20, 12, 12)
    low, high = res.diff_ci
    text = compare_phrase(res, with_ci=True)
    assert text.startswith("a difference of 8 images out of 1,000 (0.8 percentage points, 95% CI ")
    assert f"{100 * low:.1f}".replace("-", "\u2212") in text and f"{100 * high:.1f}" in text
    # Signed as A minus B: swapping the models turns the difference negative.
    assert "(\u22120.8 percentage points" in compare_phrase(mcnemar_from_counts(956, 12, 20, 12), with_ci=True)
    assert "(1 percentage point," in compare_phrase(mcnemar_from_counts(90, 1, 0, 9), with_ci=True)
