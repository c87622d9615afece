"""Section 3's choices of classes and images for the movies (compute.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reportgen.config import ResponsesConfig
from reportgen.errors import SettingError
from reportgen.sections.responses import compute

POST = Path("posts") / "visualizing-two-cnns"


def _predictions(pairs: list[tuple[int, int]], classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One-hot probabilities for (true, predicted) pairs."""
    labels = np.array([t for t, _ in pairs])
    probs = np.eye(classes)[[p for _, p in pairs]] * 0.9 + 0.1 / classes
    return probs, labels


def test_choose_takes_the_most_confused_pair_and_the_least_confused_third_class() -> None:
    names = ("a", "b", "c", "d")
    # 2 and 3 are mixed up three times, 0 and 1 once; 0 is confused with 2 once, 1 never with 2 or 3
    pairs = [(2, 3), (3, 2), (2, 3), (0, 1), (0, 2), (1, 1), (0, 0), (2, 2), (3, 3)]
    settings = compute.choose(ResponsesConfig(), (), names, [_predictions(pairs)])
    assert (settings["a"], settings["b"], settings["third"]) == (2, 3, 1)
    assert settings["group"] == ["c", "d"]  # no group configured: A and B
    fixed = compute.choose(ResponsesConfig(classes=("b", "a"), third="d"), ("a", "c"), names,
                               [_predictions(pairs)])
    assert (fixed["a"], fixed["b"], fixed["third"], fixed["group"]) == (1, 0, 3, ["a", "c"])
    with pytest.raises(SettingError, match="responses.classes: 'x' is not a class of the data"):
        compute.choose(ResponsesConfig(classes=("a", "x")), (), names, [_predictions(pairs)])
    assert settings["ties"] == {"pair": [], "pair_count": 3, "third": [], "third_count": 0}
    assert fixed["ties"]["pair"] == [] and fixed["ties"]["pair_count"] is None  # named by the config: no choice


def test_a_choice_decided_by_a_tie_names_what_it_was_tied_with() -> None:
    names = ("a", "b", "c", "d")
    # 0/1 and 2/3 are each mixed up twice: the lower indices win, and the post must say 2/3 tied;
    # neither 2 nor 3 is ever confused with 0 or 1, so the third class is a tie between them too
    pairs = [(0, 1), (1, 0), (2, 3), (3, 2), (0, 0), (1, 1), (2, 2), (3, 3)]
    settings = compute.choose(ResponsesConfig(), (), names, [_predictions(pairs)])
    assert (settings["a"], settings["b"], settings["third"]) == (0, 1, 2)
    assert settings["ties"] == {"pair": [[2, 3]], "pair_count": 2, "third": [3], "third_count": 0}


def test_movie_images_are_ordered_by_probability_and_low_confidence_ones_are_the_least_probable() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    probs = rng.dirichlet(np.ones(3), size=60)
    settings = {"a": 0, "b": 1, "third": 2, "per_class": 5, "low_confidence": 3}
    chosen = compute.movie_images(labels, probs, settings)
    movie, low = np.array(chosen["movie"]), np.array(chosen["low"])
    assert list(labels[movie]) == [0] * 5 + [1] * 5
    for block, c in ((movie[:5], 0), (movie[5:], 1), (low[:3], 0), (low[3:6], 1)):
        assert np.all(np.diff(probs[block, c]) <= 0)  # most probable first
    members = np.flatnonzero(labels == 0)
    assert set(low[:3]) == set(members[np.argsort(probs[members, 0])[:3]])  # the three least probable
    assert probs[movie[0], 0] == probs[members, 0].max() and probs[movie[4], 0] == probs[members, 0].min()
    assert chosen["shown"] == [int(movie[0]), int(movie[5])] and list(labels[low[6:]]) == [2, 2, 2]
