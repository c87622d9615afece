"""Section 3 as the build makes it: choices of classes and images, and a whole tiny build's movies,
tables, activated units and atlas panels (compute.py, activation_figures.py, section3.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from reportgen import pipeline
from reportgen.builds import BuildResult
from reportgen.cache import Artifact
from reportgen.config import ResponsesConfig, load_config
from reportgen.drawing.video import accelerating_durations, frame_repeats
from reportgen.nets.data import DataError
from reportgen.sections.responses import compute
from reportgen.sections.responses.draw import FIRST, FPS, LAST, active_mask
from tests.conftest import TINY

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
    with pytest.raises(DataError, match="'x'"):
        compute.choose(ResponsesConfig(classes=("a", "x")), (), names, [_predictions(pairs)])


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


def test_active_mask_follows_the_threshold() -> None:
    values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert active_mask(values, 0.0).tolist() == [False, False, True, True, True]
    assert active_mask(values, 0.5).tolist() == [False, False, False, False, True]
    assert active_mask(values, 0.2).tolist() == [False, False, True, True, True]
    assert not active_mask(np.array([-2.0, 0.0]), 0.0).any()  # a silent layer: nothing active


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    config = tmp_path_factory.mktemp("section3") / "config.toml"
    config.write_text(TINY.replace("patches = 2", "patches = 2\nthreshold = 0.3"))
    return pipeline.build(load_config(config))


def _stages(result: BuildResult, stage: str) -> list[Artifact]:
    return [a for a in result.stages if a.stage == stage]


def test_post_shows_movies_that_decode_with_the_expected_frames(tiny_build: BuildResult) -> None:
    import imageio_ffmpeg

    post = tiny_build.out / POST
    html = (post / "index.html").read_text()
    sources = re.findall(r'<source src="(figures/responses/[^"]+)" type="video/mp4">', html)
    assert len(sources) == 4  # a response movie and a low-confidence movie per model (section 2 has its own)
    for drawn in _stages(tiny_build, "response-figures"):
        videos = json.loads(drawn.file("layout.json").read_text())["videos"]
        for stem, given in (("movie", 10), ("low", 9)):  # 5 + 5 images; 3 + 3 + 3
            info = videos[stem]
            key = drawn.manifest["params"]["key"]
            src = f"figures/responses/{key}/{stem}.mp4"
            assert src in sources and f'poster="figures/responses/{key}/{stem}.png"' in html
            reader = imageio_ffmpeg.read_frames(str(post / src))
            meta = next(reader)
            count = sum(1 for _ in reader)
            expected = int(frame_repeats(accelerating_durations(given, FIRST, LAST), FPS).sum())
            assert info["frames"] == given and count == info["encoded"] == expected
            assert tuple(meta["size"]) == (info["width"], info["height"])
            assert info["width"] % 16 == 0 and info["height"] % 16 == 0


def test_class_preference_table_and_counts_add_up(tiny_build: BuildResult) -> None:
    html = (tiny_build.out / POST / "index.html").read_text()
    for computed in _stages(tiny_build, "responses"):
        summary = json.loads(computed.file("summary.json").read_text())
        k = summary["k"]
        for layer, prefs in zip(summary["layers"], summary["preferences"], strict=True):
            unit_counts = np.asarray(prefs["unit_counts"])
            assert unit_counts.shape == (layer["units"], len(summary["classes"]))
            assert (unit_counts.sum(1) == k).all() and sum(prefs["counts"]) == layer["units"] * k
            assert len(prefs["most"]) == len(prefs["least"]) == 5 and len(prefs["ranked"]) == 10
            assert f'<tr><th scope="row">{layer["name"]}</th><td>' in html
    assert 'class="preferences"' in html and "Most preferred" in html and "Least preferred" in html


def test_activated_units_split_at_the_threshold(tiny_build: BuildResult) -> None:
    html = (tiny_build.out / POST / "index.html").read_text()
    for computed, drawn in zip(_stages(tiny_build, "responses"), _stages(tiny_build, "response-figures"),
                               strict=True):
        summary = json.loads(computed.file("summary.json").read_text())
        arrays = compute.load_frames(computed)
        activated = json.loads(drawn.file("layout.json").read_text())["activated"]
        shown = len(arrays["keep"]) - 2
        for j in range(2):
            fc = [(i, la) for i, la in enumerate(summary["layers"]) if la["kind"] == "fc"]
            for (i, layer), count in zip(fc, activated[j]["counts"], strict=True):
                values = arrays[f"units{i}"][shown + j]
                expected = int((values > 0.3 * max(values.max(), 0)).sum()) if values.max() > 0 else 0
                assert count == {"layer": layer["name"], "active": expected, "units": layer["units"]}
                assert f"{expected} of {layer['units']} {layer['name']} units" in html


def test_atlas_holds_every_unit_with_its_top_patches(tiny_build: BuildResult) -> None:
    post = tiny_build.out / POST
    html = (post / "index.html").read_text()
    for computed in _stages(tiny_build, "responses"):
        summary = json.loads(computed.file("summary.json").read_text())
        key = computed.manifest["label"].removeprefix("responses ").lower().replace(" ", "-")
        for layer in summary["layers"]:
            page = post / "atlas" / key / f"{layer['name']}.html"
            assert f'href="atlas/{key}/{layer["name"]}.html"' in html
            text = page.read_text()
            assert text.count('class="atlas-entry"') == layer["units"]
            assert text.count("Top test images (section 3)") == layer["units"]
            # one tile of section 3's sprite sheet per unit (section 2 adds tiles of its own)
            assert len(re.findall(r"role=\"img\"[^>]*figures/responses/", text)) == layer["units"]
            sheets = set(re.findall(r"url\('\.\./\.\./(figures/responses/[^']+\.png)'\)", text))
            assert len(sheets) == 1 and (post / sheets.pop()).is_file()  # one sheet per layer
            if layer["kind"] == "conv":
                assert f"Receptive field: {layer['rf'][0]}\u00d7{layer['rf'][1]} pixels." in text
