"""Section 2 as the site shows it, read from the session's tiny build: the section, the unit-graph
movie and the atlas pages with every unit's numbers and flags."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from reportgen.sections.preferred import draw
from tests.conftest import BuiltSite

POST = Path("posts") / "visualizing-two-cnns"


def test_post_shows_section_two(tiny_site: BuiltSite) -> None:
    post = tiny_site.site / POST
    html = (post / "index.html").read_text()
    assert "Preferred inputs of trained units" in html
    # class units of both models side by side, the search table with a row per layer, the unit tables
    for key in ("model-i", "model-ii"):
        assert f'src="figures/preferred/{key}/class-units.png"' in html
        assert (post / "figures" / "preferred" / key / "class-units.png").is_file()
    assert 'id="table-preferred-search"' in html and 'id="table-preferred-units"' in html
    start = html.index('id="table-preferred-search"')
    search = html[start:html.index("</table>", start)]
    assert search.count('<th scope="row">') == 7 + 9  # every layer of both models
    assert re.search(r"\d\.\d+ / \d\.\d+ / \d\.\d+", search)  # the spread of trial scores
    assert "for 4 Adam steps" in html and "up to 2 units per layer" in html  # the settings used, said
    # successive halving: 4 trials of 1 step, then per layer its 2 best and its median one at the full 4 steps;
    # each row shows the chosen setting's full-length score and the median trial's, and the text their medians
    assert "first ran for 1 Adam step on" in html and "ran again for the\nfull 4 steps" in html
    chosen, medians = [], []
    for computed, rows in zip(tiny_site.stages("preferred"), search.split('<th scope="rowgroup"')[1:], strict=True):
        summary = json.loads(computed.file("preferred.json").read_text())
        assert summary["search_steps"] == 1 and len(summary["trials"]) == 4
        for layer in summary["layers"]:
            found = layer["search"]
            full = dict(zip(found["final_trials"], found["final_scores"], strict=True))
            assert found["best"] in full and full[found["best"]] == max(full.values()) >= found["median_score"]
            row = re.search(rf'<th scope="row">{layer["name"]}</th>(.*?)</tr>', rows).group(1)
            cells = re.findall(r"<td>([^<]*)</td>", row)
            assert cells[-3:-1] == [str(round(full[found["best"]], 3)), str(round(found["median_score"], 3))]
        chosen.append(np.median([dict(zip(la["search"]["final_trials"], la["search"]["final_scores"],
                                          strict=True))[la["search"]["best"]] for la in summary["layers"]]))
        medians.append(np.median([la["search"]["median_score"] for la in summary["layers"]]))
    assert (f"score a median of {chosen[0]:.2f} in Model I and {chosen[1]:.2f} in Model II,\nagainst "
            f"{medians[0]:.2f} and {medians[1]:.2f} for the median trials") in html
    # the movies: a <video> with a poster, a caption and a text alternative, links to graph and atlas pages
    for key in ("model-i", "model-ii"):
        assert f'<source src="figures/preferred/{key}/graph.mp4" type="video/mp4">' in html
        assert f'poster="figures/preferred/{key}/graph.webp"' in html
        assert f'href="graph/{key}.html"' in html and (post / "graph" / f"{key}.html").is_file()
        assert f'href="atlas/{key}/conv1.html"' in html and (post / "atlas" / key / "conv1.html").is_file()
    section_two = html[html.index('id="preferred-inputs-of-trained-units"'):html.index("Activation responses to test")]
    assert section_two.count('class="text-alternative"') == 2
    # a movie with a poster fetches nothing until the reader plays it
    assert "preload=\"none\"" in html and "preload=\"metadata\"" not in html and "playsinline" in html


def test_movie_decodes_with_the_frames_and_size_it_claims(tiny_site: BuiltSite) -> None:
    import imageio_ffmpeg

    folder = tiny_site.site / POST / "figures" / "preferred" / "model-ii"
    graph = json.loads(next(p for p in (a.path for a in tiny_site.stages("preferred-figures"))
                            if (p / "preferred" / "model-ii").is_dir()).joinpath(
        "preferred", "model-ii", "graph.json").read_text())
    reader = imageio_ffmpeg.read_frames(str(folder / "graph.mp4"))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    width, height = meta["size"]
    assert (width, height) == tuple(graph["movie"]["size"]) == draw.FRAME
    assert width % 16 == 0 and height % 16 == 0
    assert frames == graph["movie"]["frames"]
    # whole graph, then input + 9 layers, then whole again: a hold on each keyframe and moves between them
    keys = graph["movie"]["keyframes"]
    assert keys == 1 + 10 + 1
    from PIL import Image
    poster = Image.open(folder / "graph.webp")
    assert poster.size == (width, height)


def test_atlas_has_every_unit_with_its_numbers_and_flags(tiny_site: BuiltSite) -> None:
    atlas = tiny_site.site / POST / "atlas" / "model-ii"
    pages = {p.stem for p in atlas.glob("*.html")}
    assert pages == {"conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "fc5", "fc6", "fc7"}
    fc6 = (atlas / "fc6.html").read_text()
    rows = re.findall(r'<tr id="unit-(\d+)"[^>]*>(.*?)</tr>', fc6, re.S)
    assert [int(unit) for unit, _ in rows] == list(range(48))
    # each row: the reconstruction (a view of one sprite sheet), what it reached from its start, and that
    # against the best test image, with the ratio as the number the column sorts by
    for _, row in rows:
        assert row.count('aria-label="Preferred input of') == 1 and "sheet-7-fc6.webp" in row
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        reached, ratio = (float(unescape(m.group(1))) if (m := re.search(r'data-value="([^"]+)"', c)) else None
                          for c in re.findall(r"<td[^>]*>", row)[1:3])
        assert re.fullmatch(r"\S+ from \S+", cells[1])
        assert float(unescape(cells[1]).split()[0]) == pytest.approx(reached, 1e-2)
        if ratio is not None:
            shown, best = unescape(cells[2]).split(" of ")
            assert float(shown) == pytest.approx(ratio, abs=0.006)
            assert ratio == pytest.approx(reached / float(best), rel=2e-2)
    assert 'style="' not in fc6  # tiles are SVG views: no inline style
    fc7 = (atlas / "fc7.html").read_text()
    assert fc7.count("from 3 noise seeds, side by side") == 10 and "Preferred inputs (3 seeds)" in fc7
    # the flags the stage recorded are the flags the page shows
    arrays = np.load(next(p for p in (a.path for a in tiny_site.stages("preferred")) if json.loads(
        (p / "preferred.json").read_text())["layers"][2]["name"] == "conv3a") / "preferred.npz")
    flagged = ((arrays["peak_7"] <= 0) | arrays["flat_7"][:, 0]).tolist()
    shown = [bool(re.match(r'<th scope="row"><a [^>]*>\d+</a>[^<]*\b(dead|flat)\b[^<]*</th>', row)) for _, row in rows]
    assert shown == flagged
    # one sprite sheet per layer, not a file per unit
    figures = tiny_site.site / POST / "figures" / "preferred" / "model-ii"
    assert len(list(figures.glob("sheet-*.webp"))) == 9 + 1


def test_class_units_without_regularizers_are_judged_by_every_model(tiny_site: BuiltSite) -> None:
    import torch

    from reportgen.nets.checkpoint import load_model

    (classes,) = tiny_site.stages("class-units")
    summary = json.loads(classes.file("classes.json").read_text())
    models = [load_model(a.file(a.manifest["file"]), torch.device("cpu"))
              for a in tiny_site.result.stages if a.stage == "train"]
    html = (tiny_site.site / POST / "index.html").read_text()
    with np.load(classes.file("classes.npz")) as arrays:
        for i, entry in enumerate(summary["models"]):
            for kind in summary["kinds"]:
                images = arrays[f"{kind}_{i}"]
                assert images.shape[0] == entry["classes"] == 10
                for judge, probability, top1 in zip(models, entry["probability"][kind], entry["top1"][kind],
                                                    strict=True):
                    with torch.no_grad():  # the softmax of the judge's logits, class c of image c
                        probs = torch.softmax(judge.network(judge.normalizer.images(images)), 1)
                    np.testing.assert_allclose(probability, probs.diagonal().numpy(), atol=1e-5)
                    # the transfer rate's count: the judge's most probable class is the image's own
                    assert top1 == (probs.argmax(1) == torch.arange(10)).tolist()
            agreement = entry["seed_agreement"]  # 3 seeds per class unit, seen by the layer below the output
            assert agreement["layer"] == "fc6" and agreement["seeds"] == 3 and len(agreement["same"]) == 10
            assert all(-1 <= r <= 1 for r in agreement["same"]) and -1 <= agreement["different"] <= 1
            name = ("Model I", "Model II")[i]  # two models: the numbers of both in one sentence, each named
            assert f"{np.mean(agreement['same']):.2f} in {name}" in html
            own = np.mean(entry["probability"]["bare"][i])
            assert f"{own:.2f} under {name}" in html
    for key in ("model-i", "model-ii"):
        assert (tiny_site.site / POST / "figures" / "preferred" / "priors" / f"{key}.png").is_file()
    assert 'id="figure-preferred-priors"' in html and 'id="table-preferred-priors-numbers"' in html
    assert summary["kinds"] == ["bare", "decay", "blur", "norm_clip", "contrib_clip", "regularized"]


def test_class_units_carry_their_seed_agreement_in_the_atlas(tiny_site: BuiltSite) -> None:
    (classes,) = tiny_site.stages("class-units")
    summary = json.loads(classes.file("classes.json").read_text())
    for key, entry in zip(("model-i", "model-ii"), summary["models"], strict=True):
        agreement = entry["seed_agreement"]
        page = (tiny_site.site / POST / "atlas" / key / "fc7.html").read_text()
        rows = re.findall(r'<tr id="unit-(\d+)"[^>]*>(.*?)</tr>', page, re.S)
        assert len(rows) == len(agreement["same"]) == 10
        for (unit, row), same in zip(rows, agreement["same"], strict=True):
            assert f"</svg> seeds alike {same:.2f}</td>" in unescape(row), unit
            assert ("unstable seeds" in row) == (same <= agreement["different"])


def test_a_second_seed_of_sampled_units_says_how_stable_each_layers_pictures_are(tiny_site: BuiltSite) -> None:
    from reportgen.sections.preferred.compute import SEED_CHECK_UNITS

    html = unescape((tiny_site.site / POST / "index.html").read_text())
    for art in tiny_site.stages("preferred"):
        summary = json.loads(art.file("preferred.json").read_text())
        key = art.manifest["label"].removeprefix("preferred inputs ").lower().replace(" ", "-")
        *below, output = summary["layers"]
        assert output["seed_check"] is None  # the class units have seeds of their own
        arrays = np.load(art.file("preferred.npz"))
        for i, layer in enumerate(below):
            check = layer["seed_check"]
            # sampled among the units whose picture is a result: neither dead nor flat
            results = arrays[f"unit_{i}"][(arrays[f"peak_{i}"] > 0) & ~arrays[f"flat_{i}"][:, 0]]
            if len(results) < 2:
                assert check is None
                continue
            assert len(check["units"]) == len(check["same"]) == min(SEED_CHECK_UNITS, len(results))
            assert set(check["units"]) <= set(results.tolist())
            assert all(-1 - 1e-9 <= v <= 1 + 1e-9 for v in check["same"])
            page = unescape((tiny_site.site / POST / "atlas" / key / f"{layer['name']}.html").read_text())
            for unit, same in zip(check["units"], check["same"], strict=True):
                row = re.search(rf'<tr id="unit-{unit}"[^>]*>(.*?)</tr>', page, re.S).group(1)
                assert f"seeds alike {same:.2f}" in row
                assert ("unstable seeds" in row) == (same <= check["different"])
            assert f"{np.mean(check['same']):.2f} [".replace("-", "\u2212") in html


def test_each_layers_pictures_are_measured_for_noise_against_the_test_images(tiny_site: BuiltSite) -> None:
    import torch

    from reportgen.nets.data import Dataset
    from reportgen.optvis.regularizers import high_frequency_energy

    html = (tiny_site.site / POST / "index.html").read_text()
    table = html[html.index('id="table-preferred-units"'):]
    table = table[:table.index("</table>")]
    (dataset,) = tiny_site.stages("data")
    test_images, _ = Dataset.from_artifact(dataset).part("test")
    measured = 0
    for computed, rows in zip(tiny_site.stages("preferred"), table.split('<th scope="rowgroup"')[1:], strict=True):
        summary = json.loads(computed.file("preferred.json").read_text())
        side = summary["high_frequency_min_side"]
        for layer in summary["layers"]:
            energy = layer["high_frequency"]
            top, left, bottom, right = layer["box"] or (0, 0, 16, 16)
            cell = re.search(rf'>{layer["name"]}</a></th>(.*?)</tr>', rows).group(1).rsplit("<td>", 1)[1]
            if min(bottom - top, right - left) < side:  # a crop too small for its spectrum to say anything
                assert energy is None and cell.startswith("&mdash;")
                continue
            measured += 1
            crops = torch.from_numpy(test_images[:, top:bottom, left:right].copy()).permute(0, 3, 1, 2).float() / 255
            assert energy["test"] == pytest.approx(float(high_frequency_energy(crops).median()), abs=1e-6)
            assert 0 <= energy["inputs"] <= 1
            assert cell.startswith(f"{round(100 * energy['inputs'])}% ({round(100 * energy['test'])}%)")
    assert measured >= 10  # the FC layers and the conv layers that see 8 pixels or more
