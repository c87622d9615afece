"""Same inputs, same bytes: a clean build in a separate process trains bit-identical models and writes
a byte-identical site to the session's build, whatever thread count each process would default to."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reportgen import pipeline
from reportgen.builds import BuildResult
from reportgen.config import load_config
from tests.conftest import EPOCH, TINY, BuiltSite

REPO = Path(__file__).resolve().parents[1]


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_builds(tiny_site: BuiltSite, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The session's build (this process: torch's default thread count) and `reportgen build` of the same
    config in a fresh process whose torch defaults to one thread fewer, both dated by SOURCE_DATE_EPOCH."""
    threads = torch.get_num_threads()
    other = max(1, threads - 1) if threads > 1 else 2
    folder = tmp_path_factory.mktemp("reproducible") / "other"
    folder.mkdir()
    (folder / "config.toml").write_text(TINY)
    env = {**os.environ, "OMP_NUM_THREADS": str(other), "MKL_NUM_THREADS": str(other),
           "SOURCE_DATE_EPOCH": str(EPOCH),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "reportgen", "build", "--quiet"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tiny_site.config.parent, folder


def test_processes_with_different_thread_defaults_train_identical_checkpoints(two_builds: tuple[Path, Path]) -> None:
    one, two = (sorted((folder / "cache" / "train").glob("*/checkpoint.pt")) for folder in two_builds)
    assert len(one) == len(two) == 2
    assert [p.parent.name for p in one] == [p.parent.name for p in two]  # same keys
    for a, b in zip(one, two, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.parent.name}: checkpoints differ"


def test_two_clean_builds_write_byte_identical_sites_dated_by_source_date_epoch(
        two_builds: tuple[Path, Path]) -> None:
    one, two = (files(folder / "site") for folder in two_builds)
    assert one.keys() == two.keys()
    assert [name for name in one if one[name] != two[name]] == []
    post = one["posts/visualizing-two-cnns/index.html"].decode()
    day = datetime.datetime.fromtimestamp(EPOCH, datetime.UTC).date().isoformat()
    assert f"<time>{day}</time>" in post
    # what the models depend on is on the page; when it was rendered is not
    footer = post[post.index('<footer'):]
    assert "2 threads" in footer and not re.search(r"\d\d:\d\d", footer)


def test_a_rebuild_from_the_cache_changes_no_byte_and_dates_the_post_by_its_results(
        tiny_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    tiny_config = tiny_copy  # the session build's folder: its first build here renders from that cache
    result = pipeline.build(load_config(tiny_config))
    first = files(tiny_config.parent / "site")
    created = {a.manifest["created"] for a in result.stages if a.stage == "train"}
    assert len(created) == 1
    assert f"<time>{created.pop()}</time>".encode() in first["posts/visualizing-two-cnns/index.html"]
    assert pipeline.build(load_config(tiny_config)).up_to_date
    assert files(tiny_config.parent / "site") == first
    # a rebuild that does render changes no byte either: the site, deleted, is rendered again from the cache
    shutil.rmtree(tiny_config.parent / "site")
    assert built_stages(pipeline.build(load_config(tiny_config))) == ["site"]
    assert files(tiny_config.parent / "site") == first


def built_stages(result: BuildResult) -> list[str]:
    return [a.manifest.get("label", a.stage) for a in result.stages if not a.cached]
