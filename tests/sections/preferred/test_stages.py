"""Section 2's stages in the cache: what a second build, a changed setting or edited drawing code
re-runs, and a post without the section. These write builds of their own."""

from __future__ import annotations

import json
import shutil
from html import unescape
from pathlib import Path

import pytest

from reportgen import cache, pipeline
from reportgen.config import load_config
from tests.conftest import BuiltSite
from tests.test_pipeline import built

POST = Path("posts") / "visualizing-two-cnns"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def config(tiny_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build of their own for the tests here, which build again into its site and cache: a copy of the
    session's tiny build, built once so that its record is its own."""
    folder = tmp_path_factory.mktemp("preferred") / "copy"
    shutil.copytree(tiny_site.config.parent, folder, symlinks=True)
    pipeline.build(load_config(folder / "config.toml"))
    return folder / "config.toml"


def test_second_build_recomputes_nothing_and_a_drawing_edit_only_redraws(config: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline.build(load_config(config)).up_to_date
    # the thread count is keyed (sums split across threads may round differently); drawings follow
    assert built(pipeline.build(load_config(config, overrides={"preferred.threads": 3}))) == [
        "preferred inputs Model I", "preferred figures Model I", "preferred inputs Model II",
        "preferred figures Model II", "class units", "class units figures", "activated inputs Model I",
        "path check Model I", "path figure Model I", "activated inputs Model II", "path check Model II",
        "path figure Model II", "site"]
    # the number of edges only changes the drawings
    fewer = pipeline.build(load_config(config, overrides={"preferred.edges": 1}))
    assert built(fewer) == ["preferred figures Model I", "preferred figures Model II", "site"]
    real = cache.module_source
    monkeypatch.setattr(cache, "module_source", lambda name: real(name) + (
        b"# a new colour" if name == "reportgen.sections.preferred.draw" else b""))
    assert built(pipeline.build(load_config(config))) == ["preferred figures Model I", "preferred figures Model II",
                                                          "class units figures", "site"]


def test_disabled_section_leaves_the_post_without_it(config: Path) -> None:
    result = pipeline.build(load_config(config, overrides={"preferred.enabled": False}),
                            out=config.parent / "plain")
    assert not [a for a in result.stages if a.stage.startswith("preferred")]
    html = (config.parent / "plain" / POST / "index.html").read_text()
    assert "Preferred inputs of trained units" not in html and not (config.parent / "plain" / POST / "graph").exists()


def test_large_layers_show_an_evenly_spaced_sample_and_the_post_says_so(config: Path) -> None:
    result = pipeline.build(load_config(config, overrides={"preferred.units_per_layer": 3}),
                            out=config.parent / "capped")
    computed = [a for a in result.stages if a.stage == "preferred"]
    assert computed and all(not a.cached for a in computed)  # the cap is part of the stage's key
    post = config.parent / "capped" / POST
    html = (post / "index.html").read_text()
    graph = json.loads(next(a for a in result.stages if a.stage == "preferred-figures"
                            and "Model II" in a.manifest["label"]).file("preferred/model-ii/graph.json").read_text())
    summary = json.loads(next(a for a in computed if "Model II" in a.manifest["label"]).file("preferred.json")
                         .read_text())
    for i, layer in enumerate(summary["layers"]):
        nodes = [n for n in graph["nodes"] if n[0] == i + 1]
        expected = layer["units"] if i == len(summary["layers"]) - 1 else min(3, layer["units"])
        assert layer["shown"] == len(nodes) == expected, layer["name"]  # class units are never sampled
        units = [n[5] for n in nodes]
        if layer["units"] > 3 and i < len(summary["layers"]) - 1:
            # spread over the layer: its first and last unit and one between
            assert units[0] == 0 and units[-1] == layer["units"] - 1 and units == sorted(set(units))
            atlas = (post / "atlas" / "model-ii" / f"{layer['name']}.html").read_text()
            assert atlas.count('aria-label="Preferred input of') == 3  # section 2's cells for the shown units only
            for unit in units:
                assert f'id="unit-{unit}"' in atlas
            assert f"3 of {layer['name']}\u2019s {layer['units']}" in unescape(html), layer["name"]
