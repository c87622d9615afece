"""Section 2's stages in the cache: what a second build, a changed setting or edited drawing code
re-runs, and a post without the section. These write builds of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from reportgen import cache, pipeline
from reportgen.config import load_config
from tests.conftest import TINY
from tests.test_pipeline import built

POST = Path("posts") / "visualizing-two-cnns"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny build of their own for the tests here, which build again into its site and cache."""
    path = tmp_path_factory.mktemp("preferred") / "config.toml"
    path.write_text(TINY)
    pipeline.build(load_config(path))
    return path


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
