"""Section 2 end to end on the tiny build (preferred inputs, search table, class units, unit graphs, atlas),
its caching, and the pieces that turn weights into graph edges and a graph into movie frames."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen import cache, pipeline
from reportgen.config import load_config
from reportgen.nets.architectures import create_model
from reportgen.nets.layers import unit_layers
from reportgen.sections.preferred import draw
from reportgen.sections.preferred.compute import incoming_weights
from tests.conftest import TINY
from tests.test_pipeline import built

POST = Path("posts") / "visualizing-two-cnns"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny build shared by the tests here; they read its site and cache."""
    path = tmp_path_factory.mktemp("preferred") / "config.toml"
    path.write_text(TINY)
    pipeline.build(load_config(path))
    return path


def _stage(config: Path, name: str) -> list[Path]:
    return sorted(p.parent for p in (config.parent / "cache" / name).glob("*/manifest.json"))


def test_post_shows_section_two(config: Path) -> None:
    post = config.parent / "site" / POST
    html = (post / "index.html").read_text()
    assert "Preferred inputs of trained units" in html
    # class units of both models side by side, the search table with a row per layer, the unit tables
    for key in ("model-i", "model-ii"):
        assert f'src="figures/preferred/{key}/class-units.png"' in html
        assert (post / "figures" / "preferred" / key / "class-units.png").is_file()
    assert 'id="table-preferred-search"' in html and 'id="table-preferred-units"' in html
    search = html[html.index('id="table-preferred-search"'):html.index('id="table-preferred-units"')]
    assert search.count('<th scope="row">') == 7 + 9  # every layer of both models
    assert re.search(r"\d\.\d+ / \d\.\d+ / \d\.\d+", search)  # the spread of trial scores
    assert "for 4 Adam steps" in html and "up to 2 units per layer" in html  # the settings used, said
    # the movies: a <video> with a poster, a caption and a text alternative, links to graph and atlas pages
    for key in ("model-i", "model-ii"):
        assert f'<source src="figures/preferred/{key}/graph.mp4" type="video/mp4">' in html
        assert f'poster="figures/preferred/{key}/graph.png"' in html
        assert f'href="graph/{key}.html"' in html and (post / "graph" / f"{key}.html").is_file()
        assert f'href="atlas/{key}/conv1.html"' in html and (post / "atlas" / key / "conv1.html").is_file()
    section_two = html[html.index("Preferred inputs of trained units</h2>"):html.index("Activation responses to test")]
    assert section_two.count('class="text-alternative"') == 2
    assert "preload=\"metadata\"" in html and "playsinline" in html


def test_movie_decodes_with_the_frames_and_size_it_claims(config: Path) -> None:
    import imageio_ffmpeg

    folder = config.parent / "site" / POST / "figures" / "preferred" / "model-ii"
    graph = json.loads(next(p for p in _stage(config, "preferred-figures")
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
    poster = Image.open(folder / "graph.png")
    assert poster.size == (width, height)


def test_atlas_has_every_unit_with_its_numbers_and_flags(config: Path) -> None:
    atlas = config.parent / "site" / POST / "atlas" / "model-ii"
    pages = {p.stem for p in atlas.glob("*.html")}
    assert pages == {"conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "fc5", "fc6", "fc7"}
    fc6 = (atlas / "fc6.html").read_text()
    assert fc6.count('class="atlas-entry"') == 48 and 'id="unit-47"' in fc6
    assert fc6.count("Best test image:") == 48 and fc6.count("Activation reached:") == 48
    assert "sheet-7-fc6.png" in fc6 and "background-position" in fc6   # tiles of one sprite sheet
    fc7 = (atlas / "fc7.html").read_text()
    assert fc7.count(", noise seed ") == 10 * 3 and fc7.count("(3 noise seeds)") == 10
    # the flags the stage recorded are the flags the page shows
    arrays = np.load(next(p for p in _stage(config, "preferred") if json.loads(
        (p / "preferred.json").read_text())["layers"][2]["name"] == "conv3a") / "preferred.npz")
    flagged = int(((arrays["peak_7"] <= 0) | arrays["flat_7"][:, 0]).sum())
    assert fc6.count('class="flag">dead') + fc6.count('class="flag">flat') == flagged  # section 3 flags its own
    # one sprite sheet per layer, not a file per unit
    figures = config.parent / "site" / POST / "figures" / "preferred" / "model-ii"
    assert len(list(figures.glob("sheet-*.png"))) == 9 + 1


def test_second_build_recomputes_nothing_and_a_drawing_edit_only_redraws(config: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline.build(load_config(config)).up_to_date
    # the thread count is keyed (sums split across threads may round differently); drawings follow
    assert built(pipeline.build(load_config(config, overrides={"preferred.threads": 2}))) == [
        "preferred inputs Model I", "preferred figures Model I", "preferred inputs Model II",
        "preferred figures Model II", "site"]
    # the number of edges only changes the drawings
    fewer = pipeline.build(load_config(config, overrides={"preferred.edges": 1}))
    assert built(fewer) == ["preferred figures Model I", "preferred figures Model II", "site"]
    real = cache.module_source
    monkeypatch.setattr(cache, "module_source", lambda name: real(name) + (
        b"# a new colour" if name == "reportgen.sections.preferred.draw" else b""))
    assert built(pipeline.build(load_config(config))) == ["preferred figures Model I", "preferred figures Model II",
                                                          "site"]


def test_disabled_section_leaves_the_post_without_it(config: Path) -> None:
    result = pipeline.build(load_config(config, overrides={"preferred.enabled": False}),
                            out=config.parent / "plain")
    assert not [a for a in result.stages if a.stage.startswith("preferred")]
    html = (config.parent / "plain" / POST / "index.html").read_text()
    assert "Preferred inputs of trained units" not in html and not (config.parent / "plain" / POST / "graph").exists()


def test_edges_follow_the_weights_between_consecutive_layers() -> None:
    torch.manual_seed(0)
    net = create_model("model2", in_channels=3, image_size=16, num_classes=4, width=0.125).eval()
    with torch.no_grad():  # a batch norm gain of -1 must flip the sign of that unit's incoming weights
        net.conv2.bn.weight[0] = -net.conv2.bn.running_var[0].add(net.conv2.bn.eps).sqrt()
    layers = unit_layers(net, (3, 16, 16))
    weights = incoming_weights(net, layers, 3)
    assert [w.shape for w in weights] == [(layer.units, before) for layer, before in
                                          zip(layers, [3] + [layer.units for layer in layers[:-1]], strict=True)]
    np.testing.assert_allclose(weights[1][0], -net.conv2.conv.weight[0].detach().sum(dim=(1, 2)).numpy(), rtol=1e-5)
    # fc5 reads the pooled conv4b map flattened: its weights are summed over each channel's positions
    fc5 = net.fc5.linear.weight.detach().reshape(layers[6].units, layers[5].units, -1).sum(2)
    gain = net.fc5.bn.weight.detach() / torch.sqrt(net.fc5.bn.running_var + net.fc5.bn.eps)
    np.testing.assert_allclose(weights[6], (fc5 * gain[:, None]).numpy(), rtol=1e-5)


def test_strongest_edges_keep_the_k_largest_positive_weights_per_unit() -> None:
    matrix = np.array([[0.5, -2.0, 0.1, 0.3], [-1.0, -1.0, -1.0, 0.2]])
    edges = draw.strongest_edges({"edges_0": matrix}, 1, 2)
    # kept: 0.5, 0.3 (unit 0) and 0.2 (unit 1); colours span the weakest to the strongest kept edge
    assert edges == [(1, 0, 0, 1.0), (1, 0, 3, pytest.approx(1 / 3)), (1, 1, 3, 0.0)]


def test_layout_keeps_thumbnails_apart_and_layers_in_order() -> None:
    flags = [np.zeros(n, bool) for n in (40, 70, 5)]
    graph = draw.layout(np.zeros((8, 8, 3), np.uint8), ["a", "b", "c"], [40, 70, 5], flags)
    nodes = graph["nodes"]
    assert len(nodes) == 3 + 40 + 70 + 5
    boxes = {(n.x, n.y) for n in nodes}
    assert len(boxes) == len(nodes)  # no two thumbnails on one spot
    assert all(n.x >= 0 and n.x + draw.THUMB <= graph["width"] for n in nodes)
    tops = [min(n.y for n in nodes if n.layer == k) for k in range(4)]
    assert tops == sorted(tops) and [b["name"] for b in graph["layers"]] == ["input", "a", "b", "c"]


def test_frames_have_the_movie_size_inside_and_outside_the_picture() -> None:
    from PIL import Image

    picture = Image.new("RGB", (300, 900), (255, 0, 0))
    inside = draw._frame(picture, 150, 450, 0.25)
    assert inside.shape == (*draw.FRAME[::-1], 3) and (inside == (255, 0, 0)).all()
    overview = draw._frame(picture, 150, 450, 3.0)   # the picture is narrower than the view
    assert overview.shape == inside.shape
    assert tuple(overview[0, 0]) == draw.BACKGROUND and tuple(overview[216, 384]) == (255, 0, 0)


def test_receptive_field_crop_and_sheet_tiles() -> None:
    images = np.arange(2 * 3 * 8 * 8, dtype=np.uint8).reshape(2, 3, 8, 8, 1)
    crops = draw.layer_tiles(images, [2, 3, 5, 6])
    assert crops.shape == (2, 3, 3, 3, 1) and crops[1, 2, 0, 0, 0] == images[1, 2, 2, 3, 0]
    assert draw.layer_tiles(images, None) is images
