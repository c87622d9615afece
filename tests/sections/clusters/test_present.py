"""Section 4 in a whole tiny build: the post's map, table and sentence, the map page and its data,
and numbers that agree with the model they came from."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from reportgen import pipeline, stats
from reportgen.builds import BuildResult
from reportgen.cli import main
from reportgen.config import load_config
from reportgen.nets.checkpoint import load_model
from reportgen.nets.data import Dataset
from reportgen.sections.clusters import compute, present
from tests.conftest import BuiltSite

POST = Path("posts") / "visualizing-two-cnns"


def _stage(result: BuildResult, name: str) -> pipeline.Artifact:
    return next(a for a in result.stages if a.stage == name)


def test_the_post_shows_the_map_the_table_and_links_the_viewer_page(tiny_site: BuiltSite) -> None:
    result, site = tiny_site.result, tiny_site.site
    post = (site / POST / "index.html").read_text()
    computed = _stage(result, "clusters")
    summary = json.loads(computed.file("clusters.json").read_text())
    saved = np.load(computed.file("clusters.npz"))
    n = summary["count"]
    assert n == 60 and summary["layer"] == "fc5" and summary["model"] == 1  # Model II, the last model

    # the map, with alt text, and the figures it names exist and stay web-sized
    section = post[post.index('id="clusterings-of-test-images"'):post.index('id="references"')]
    for name in ("clusters-map-grid.png", "clusters-map-placed.png", "clusters-neighbours.png"):
        assert re.search(rf'<img src="figures/{name}" width="\d+" height="\d+" alt="[^"]+"', section), name
        figure = site / POST / "figures" / name
        assert figure.is_file() and figure.stat().st_size < 4_000_000
    assert 'id="figure-clusters-map"' in section and 'id="table-clusters-precision"' in section
    # the precision table: a row per model and FC layer, scoped headers, a column per class
    table = section[section.index("<table>"):section.index("</table>")]
    assert table.count('<th scope="row">Model I</th>') == 3 and table.count('<th scope="row">Model II</th>') == 3
    assert table.count('<th scope="col">') == 3 + 10 + 1
    # the caption's per-class count is the classes' own, not the total
    counts = summary["class_counts"]
    per_class = f"the {min(counts)} images of each class" if min(counts) == max(counts) else \
        f"the {min(counts)} to {max(counts)} images of each class"
    assert f"averaged over {per_class} ({n} in all)" in section
    # the separation sentence, with the intervals the saved votes give
    for key in ("knn_map", "knn_descriptor"):
        assert html.escape(stats.format_proportion_ci(int(saved[key].sum()), n), quote=False) in section
    assert "McNemar p" in section and "cite" in section
    # the link to the viewer page, and the page's way back
    assert f'href="{present.PAGE}"' in section
    page = (site / POST / present.PAGE).read_text()
    assert 'href="index.html#figure-clusters-map"' in page and 'src="../../static/imagemap.js"' in page
    data = json.loads(html.unescape(re.search(r'<script type="application/json" id="imagemap-data">(.*?)</script>',
                                              page, re.S).group(1)))
    assert data["count"] == n and len(data["x"]) == n and len(data["neighbours"]["index"]) == n * summary["k"]
    assert data["label"] == saved["labels"].tolist()
    for sheet in data["sprites"]["files"]:
        assert (site / POST / sheet).is_file()  # relative to the page, which sits beside the post


def test_neighbours_come_from_the_configured_layer_of_the_mapped_model(tiny_copy: Path) -> None:
    cfg = load_config(tiny_copy, overrides={"clusters.model": "Model I", "clusters.layer": "fc6"})
    result = pipeline.build(cfg)
    computed = _stage(result, "clusters")
    saved = np.load(computed.file("clusters.npz"))
    summary = json.loads(computed.file("clusters.json").read_text())
    assert summary["model"] == 0 and summary["layer"] == "fc6"
    train = [a for a in result.stages if a.stage == "train"][0]  # Model I
    trained = load_model(train.file("checkpoint.pt"), torch.device("cpu"))
    dataset = Dataset.from_artifact(_stage(result, "data"))
    images = dataset.images[saved["rows"]]
    x = compute.layer_outputs(trained.network, images, trained.normalizer.mean.flatten().tolist(),
                              trained.normalizer.std.flatten().tolist(), ["fc6.relu"])[0]["fc6.relu"]
    assert x.shape == (60, summary["dims"])
    indices, distances = compute.nearest(x, np.arange(len(x)), summary["k"])
    np.testing.assert_array_equal(saved["neighbours"], indices)
    np.testing.assert_allclose(saved["distances"], distances, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(saved["predictions"], trained.predict(images).argmax(1))
    assert sorted(saved["cells"].tolist()) == sorted(set(saved["cells"].tolist()))  # one image per cell


def test_a_layer_the_model_lacks_is_one_line_and_exit_2(tiny_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_config.write_text(tiny_config.read_text() + '\n[clusters]\nlayer = "fc9"\n')
    assert main(["build", "--config", str(tiny_config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("reportgen: error: clusters.layer: 'fc9' is not a layer of Model II; known: conv1")
    assert "\n" not in err and "Traceback" not in err
    assert not (tiny_config.parent / "cache" / "train").exists()  # refused before any training
