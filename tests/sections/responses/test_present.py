"""Section 3 as the site shows it, read from the session's tiny build: movies that decode with the
frames they claim, class-preference tables whose counts add up, activated units split at the
threshold, and atlas panels for every unit."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from reportgen.drawing.video import accelerating_durations, frame_repeats
from reportgen.sections.responses import compute, present
from reportgen.sections.responses.compute import ResponseFrames
from reportgen.sections.responses.draw import FIRST, FPS, LAST
from reportgen.sections.responses.recording import Responses
from tests.conftest import BuiltSite

POST = Path("posts") / "visualizing-two-cnns"


def test_post_shows_movies_that_decode_with_the_expected_frames(tiny_site: BuiltSite) -> None:
    import imageio_ffmpeg

    post = tiny_site.site / POST
    html = (post / "index.html").read_text()
    sources = re.findall(r'<source src="(figures/responses/[^"]+)" type="video/mp4">', html)
    # a response movie and a low-confidence movie per model, each wide and stacked (section 2 has its own)
    assert len(sources) == 8
    for drawn in tiny_site.stages("response-figures"):
        videos = json.loads(drawn.file("layout.json").read_text())["videos"]
        for stem, given in (("movie", 10), ("low", 9)):  # 5 + 5 images; 3 + 3 + 3
            key = drawn.manifest["params"]["key"]
            for info, name in ((videos[stem], stem), (videos[stem]["narrow"], f"{stem}-narrow")):
                src = f"figures/responses/{key}/{name}.mp4"
                assert src in sources and f'poster="figures/responses/{key}/{name}.png"' in html
                reader = imageio_ffmpeg.read_frames(str(post / src))
                meta = next(reader)
                count = sum(1 for _ in reader)
                expected = int(frame_repeats(accelerating_durations(given, FIRST, LAST), FPS).sum())
                assert videos[stem]["frames"] == given and count == videos[stem]["encoded"] == expected
                assert tuple(meta["size"]) == (info["width"], info["height"])
                assert info["width"] % 16 == 0 and info["height"] % 16 == 0
            assert videos[stem]["narrow"]["width"] == 352 < videos[stem]["width"]
            assert f"({videos[stem]['width']}&thinsp;&times;&thinsp;{videos[stem]['height']} px, MP4" in html


def test_class_preference_table_and_counts_add_up(tiny_site: BuiltSite) -> None:
    html = (tiny_site.site / POST / "index.html").read_text()
    for computed in tiny_site.stages("responses"):
        summary = json.loads(computed.file("summary.json").read_text())
        k = summary["k"]
        for layer, prefs in zip(summary["layers"], summary["preferences"], strict=True):
            unit_counts = np.asarray(prefs["unit_counts"])
            assert unit_counts.shape == (layer["units"], len(summary["classes"]))
            # up to k top images per unit: those above the unit's weakest image (a silent unit has none)
            found = (Responses.load(computed.file("responses.npz")).layer(layer["name"]).top_image >= 0).sum(1)
            assert (unit_counts.sum(1) == found).all() and sum(prefs["counts"]) == found.sum()
            assert found.max() == k
            assert len(prefs["most"]) == len(prefs["least"]) == 5 and len(prefs["ranked"]) == 10
            assert f'<tr><th scope="row">{layer["name"]}</th><td>' in html
    assert 'class="preferences"' in html and "Most preferred first" in html and "Most avoided first" in html


def test_activated_units_split_at_the_threshold(tiny_site: BuiltSite) -> None:
    html = (tiny_site.site / POST / "index.html").read_text()
    for computed, drawn in zip(tiny_site.stages("responses"), tiny_site.stages("response-figures"),
                               strict=True):
        summary = json.loads(computed.file("summary.json").read_text())
        frames = compute.ResponseFrames.load(computed)
        activated = json.loads(drawn.file("layout.json").read_text())["activated"]
        shown = len(frames.keep) - 2
        for j in range(2):
            fc = [(i, la) for i, la in enumerate(summary["layers"]) if la["kind"] == "fc"]
            for (i, layer), count in zip(fc, activated[j]["counts"], strict=True):
                values = frames.layers[i].units[shown + j]
                expected = int((values > 0.3 * max(values.max(), 0)).sum()) if values.max() > 0 else 0
                assert count == {"layer": layer["name"], "active": expected, "units": layer["units"]}
                assert f"{expected} of {layer['units']} {layer['name']} units" in html


def test_atlas_holds_every_unit_with_its_top_patches(tiny_site: BuiltSite) -> None:
    post = tiny_site.site / POST
    html = (post / "index.html").read_text()
    for computed in tiny_site.stages("responses"):
        summary = json.loads(computed.file("summary.json").read_text())
        frames = ResponseFrames.load(computed)
        key = computed.manifest["label"].removeprefix("responses ").lower().replace(" ", "-")
        for index, layer in enumerate(summary["layers"]):
            page = post / "atlas" / key / f"{layer['name']}.html"
            assert f'href="atlas/{key}/{layer["name"]}.html"' in html
            text = page.read_text()
            rows = re.findall(r'<tr id="unit-(\d+)"[^>]*>(.*?)</tr>', text, re.S)
            assert [int(u) for u, _ in rows] == list(range(layer["units"]))
            # one strip of section 3's sprite sheet per unit (section 2 adds tiles of its own)
            sheets = set()
            for unit, row in rows:
                found = re.findall(r'<svg class="tile"[^>]*aria-label="Unit \d+&#x27;s top[^>]*>'
                                   r'<image href="\.\./\.\./(figures/responses/[^"]+\.webp)"', row)
                assert len(found) == 1, row
                sheets.update(found)
                # the peak response sorts as the stage measured it
                peak = frames.layers[index].peak[int(unit)][0]
                value = re.search(r'figures/responses/[^"]+"[^>]*/></svg></td><td data-value="([^"]+)">', row)
                if np.isfinite(peak):
                    assert value and float(unescape(value.group(1))) == pytest.approx(float(peak), rel=1e-6)
            assert len(sheets) == 1 and (post / sheets.pop()).is_file()  # one sheet per layer
            if layer["kind"] == "conv":
                assert f"the unit&#x27;s {layer['rf'][0]}\u00d7{layer['rf'][1]}-pixel receptive field" in text


@pytest.mark.parametrize("classes", [2, 3, 10, 30])
def test_a_preference_row_means_what_its_caption_says_for_any_number_of_classes(classes: int) -> None:
    rng = np.random.default_rng(classes)
    ratio = np.round(rng.uniform(0.5, 1.5, classes), 2)
    ratio[: classes // 3] = 1.0  # ties at exactly the expected count
    counts = rng.integers(1, 50, classes)
    names = [f"c{i}" for i in range(classes)]
    row = present.preference_row(ratio.tolist(), counts.tolist(), names, [0.5] * classes)
    if classes < present.RANK_ALL_BELOW:  # every class once, in rank order
        ranked = [e["name"] for e in row["ranked"]]
        assert sorted(ranked) == sorted(names)
        assert [float(e["ratio"]) for e in row["ranked"]] == sorted(ratio.tolist(), reverse=True)
        entries = row["ranked"]
    else:
        preferred, avoided = row["preferred"], row["avoided"]
        assert len(preferred) <= present.PREFERENCE_SIDE and len(avoided) <= present.PREFERENCE_SIDE
        assert not {e["name"] for e in preferred} & {e["name"] for e in avoided}  # never on both sides
        assert all(float(e["ratio"]) > 1 for e in preferred) and all(float(e["ratio"]) < 1 for e in avoided)
        assert [float(e["ratio"]) for e in preferred] == sorted((float(e["ratio"]) for e in preferred), reverse=True)
        assert [float(e["ratio"]) for e in avoided] == sorted(float(e["ratio"]) for e in avoided)
        entries = preferred + avoided
    # a tie is marked exactly when another class prints the same ratio
    for e in entries:
        same = sum(f"{r:.2f}" == e["ratio"] for r in ratio)
        assert e["tie"] == (same > 1), e


def test_all_classes_tied_are_neither_preferred_nor_avoided() -> None:
    names = [f"c{i}" for i in range(12)]
    row = present.preference_row([1.0] * 12, [9] * 12, names, [None] * 12)
    assert row == {"preferred": [], "avoided": []}


@pytest.mark.parametrize("classes", [2, 3, 10, 30])
def test_the_correlation_gap_has_an_interval_only_with_enough_classes_to_resample(classes: int) -> None:
    rng = np.random.default_rng(classes)
    corr = rng.uniform(0.1, 0.3, (classes, classes)) + np.eye(classes) * 0.3
    claim = {"units": 8, "within": 0.5, "between": 0.2, "single_by_class": [0] * classes, "mean_selectivity": 0.1,
             "selective": 1, "group": 1, "group_only": 0, "single": 2, "none": 0}
    row = present._layer_claims({"name": "fc5", "kind": "fc"}, claim, corr.tolist(), {}, 0, 1)
    gaps = [corr[c, c] - np.delete(corr[c], c).mean() for c in range(classes)]
    assert row["gap"] == pytest.approx(np.mean(gaps))
    if classes < present.MIN_CLASSES_FOR_INTERVAL:
        assert np.isnan(row["gap_low"]) and row["gap_text"].endswith(f"(no interval: {classes} classes)")
    else:
        assert row["gap_low"] <= row["gap"] <= row["gap_high"] and "[" in row["gap_text"]


def test_activated_units_as_their_preferred_inputs_grey_what_does_not_activate(tiny_site: BuiltSite) -> None:
    from PIL import Image

    from reportgen.sections.responses.draw import active_mask

    html = (tiny_site.site / POST / "index.html").read_text()
    for computed, pictured in zip(tiny_site.stages("responses"), tiny_site.stages("activated-inputs"), strict=True):
        summary = json.loads(computed.file("summary.json").read_text())
        frames = compute.ResponseFrames.load(computed)
        shown = len(frames.keep) - 2
        key = pictured.manifest["params"]["key"]
        for j, figure in enumerate(pictured.manifest["figures"]):
            fc = [i for i, la in enumerate(summary["layers"]) if la["kind"] == "fc"]
            want = [int(active_mask(frames.layers[i].units[shown + j], 0.3).sum()) for i in fc]
            assert [c["active"] for c in figure["counts"]] == want  # the same rule as the coloured figure
            src = f"figures/responses/{key}/activated-inputs-{'ab'[j]}.png"
            assert f'src="{src}"' in html
            with Image.open(tiny_site.site / POST / src) as image:
                assert list(image.size) == [figure["width"], figure["height"]]
    assert 'id="figure-activated-inputs-a"' in html


def test_the_write_ups_correlation_claim_is_judged_as_written_and_by_the_gap(tiny_site: BuiltSite) -> None:
    """Read literally, 'convolutional patterns look random from image to image, fully connected ones much
    more correlated' is about how alike two images of different classes are, layer by layer: the post's
    verdict must follow the table's between-class correlations (of the hidden fully connected layers:
    the output layer's class scores are apart by design)."""
    html = (tiny_site.site / POST / "index.html").read_text()
    table = html[html.index('id="table-correlation"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><th scope="row">([^<]+)</th><td>[^<]*</td><td>([^<]+)</td>'
                      r'<td>([^<]+)</td>', table)
    failed = []
    for name, computed in zip(("Model I", "Model II"), tiny_site.stages("responses"), strict=True):
        summary = json.loads(computed.file("summary.json").read_text())
        kinds = {la["name"]: la["kind"] for la in summary["layers"]}
        mine = [(layer, float(between.replace("\u2212", "-"))) for model, layer, _, between in rows
                if model == name and between != "n/a"]
        conv = max(v for layer, v in mine if kinds[layer] == "conv")
        hidden = [la["name"] for la in summary["layers"] if la["kind"] == "fc"][:-1]  # not the class scores
        fc = min(v for layer, v in mine if layer in hidden)
        if not conv < fc:
            failed.append(name)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    if failed:
        assert f"Taken literally, the claim did not hold for {' and '.join(failed)}:" in text
    else:
        assert "Taken literally, the claim held for both models" in text
