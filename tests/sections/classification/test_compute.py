"""Confusion-table arithmetic and the two uncertainty rules."""

import numpy as np
import pytest

from reportgen.config import EvaluateConfig
from reportgen.sections.classification.compute import EvaluateError, confusion_table, uncertain_mask

CLASSES = ("non-face", "male", "female")


def test_threshold_rule_moves_low_confidence_predictions_to_uncertain() -> None:
    probs = np.array([[0.9, 0.05, 0.05],   # non-face, correct
                      [0.4, 0.3, 0.3],     # uncertain (0.4 < 0.5)
                      [0.1, 0.8, 0.1],     # male, correct
                      [0.1, 0.7, 0.2],     # true female predicted male: incorrect
                      [0.0, 0.45, 0.55]])  # female, correct
    labels = np.array([0, 0, 1, 2, 2])
    table = confusion_table(probs, labels, CLASSES, EvaluateConfig(uncertain="threshold", threshold=0.5))
    assert table.counts == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert table.uncertain == [1, 0, 0]
    assert table.row_totals == [2, 1, 2]
    assert table.row_percents(0) == pytest.approx((50.0, 50.0, 0.0))
    assert table.row_percents(2) == pytest.approx((50.0, 0.0, 50.0))
    totals = table.totals()
    assert (totals["n"], totals["correct"], totals["uncertain"], totals["incorrect"]) == (5, 3, 1, 1)
    assert totals["pct_correct"] + totals["pct_uncertain"] + totals["pct_incorrect"] == pytest.approx(100)


def test_group_rule_only_flags_close_calls_inside_the_group() -> None:
    cfg = EvaluateConfig(uncertain="group", group=("male", "female"), margin=0.1)
    probs = np.array([[0.1, 0.46, 0.44],   # in group, margin 0.02 -> uncertain
                      [0.1, 0.6, 0.3],     # in group, clear -> certain
                      [0.5, 0.26, 0.24],   # top class outside the group -> certain
                      [0.2, 0.38, 0.42]])  # in group, margin 0.04 -> uncertain
    assert uncertain_mask(probs, cfg, CLASSES).tolist() == [True, False, False, True]


def test_none_rule_and_unknown_group_class() -> None:
    probs = np.full((3, 3), 1 / 3)
    assert not uncertain_mask(probs, EvaluateConfig(uncertain="none"), CLASSES).any()
    with pytest.raises(EvaluateError, match="'cat'"):
        uncertain_mask(probs, EvaluateConfig(uncertain="group", group=("cat", "male")), CLASSES)


def test_empty_class_row_has_zero_percentages() -> None:
    probs = np.array([[0.9, 0.1, 0.0]])
    table = confusion_table(probs, np.array([0]), CLASSES, EvaluateConfig(uncertain="none"))
    assert table.row_percents(1) == (0.0, 0.0, 0.0)
    assert table.totals()["pct_correct"] == 100.0
