"""Same inputs, same bytes: two clean builds in separate processes train bit-identical models and
write byte-identical sites, whatever thread count each process would default to."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen import pipeline
from reportgen.builds import BuildResult
from reportgen.config import load_config
from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[1]
EPOCH = 1_474_459_200  # 2016-09-21, the write-up's date


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def start_build(folder: Path, threads: int) -> subprocess.Popen:
    """`reportgen build` of the tiny config, started in a fresh process whose torch defaults to
    `threads` threads."""
    folder.mkdir()
    (folder / "config.toml").write_text(TINY)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "SOURCE_DATE_EPOCH": str(EPOCH),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "reportgen", "build", "--quiet"], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Both builds at once (their bytes cannot depend on when they ran; the suite waits for one)."""
    root = tmp_path_factory.mktemp("reproducible")
    running = [start_build(root / name, threads) for name, threads in (("one", 1), ("two", 2))]
    for proc in running:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    return root / "one", root / "two"


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
    # a rebuild that does render (forced) changes no byte either
    assert "site" in built_stages(pipeline.build(load_config(tiny_config), force=True))
    assert files(tiny_config.parent / "site") == first


def built_stages(result: BuildResult) -> list[str]:
    return [a.manifest.get("label", a.stage) for a in result.stages if not a.cached]
