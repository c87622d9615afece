"""Stage cache: hits skip the work, keys follow what a stage reads, failures leave nothing trusted."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from reportgen.cache import MANIFEST, Cache, Stage


def _write(folder: Path, params: dict, *inputs) -> dict:
    (folder / "out.txt").write_text(repr(params))
    return {"n": 1}


def test_hit_skips_the_stage_and_miss_on_changed_params(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    stage = Stage("stage", _write)
    first = cache.run(stage, {"a": 1})
    second = cache.run(stage, {"a": 1})
    assert not first.cached and second.cached
    assert second.path == first.path and second.manifest["n"] == 1 and second.manifest["files"] == ["out.txt"]
    assert cache.run(stage, {"a": 2}).key != first.key
    assert not Cache(tmp_path, force=True).run(stage, {"a": 1}).cached


def test_stage_receives_exactly_its_params_inputs_and_runtime(tmp_path: Path) -> None:
    seen = []

    def record(folder: Path, params: dict, *inputs, batch_size: int = 0) -> None:
        seen.append((params, [a.key for a in inputs], batch_size))

    cache = Cache(tmp_path)
    upstream = cache.run(Stage("up", _write), {"u": 1})
    down = Stage("down", record)
    first = cache.run(down, {"p": 1}, upstream, runtime={"batch_size": 64})
    assert seen == [({"p": 1}, [upstream.key], 64)]
    # runtime settings change how fast, not what: they are not part of the key
    assert cache.run(down, {"p": 1}, upstream, runtime={"batch_size": 8}).cached
    other = cache.run(Stage("up", _write), {"u": 2})
    assert cache.run(down, {"p": 1}, other).key != first.key


def test_interrupted_stage_leaves_no_trusted_artifact(tmp_path: Path) -> None:
    def crash(folder: Path, params: dict) -> None:
        (folder / "half.bin").write_text("partial")
        raise KeyboardInterrupt

    cache = Cache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cache.run(Stage("stage", crash), {"a": 1})
    assert not list((tmp_path / "stage").glob(f"*/{MANIFEST}"))
    assert not list((tmp_path / "stage").iterdir())  # the temporary folder is cleaned up too
    assert not cache.run(Stage("stage", _write), {"a": 1}).cached


def test_changed_stage_code_invalidates_only_its_artifacts(tmp_path: Path) -> None:
    source = tmp_path / "stage_code.py"
    source.write_text("VERSION = 1\n")
    module = types.ModuleType("stage_code")
    module.__file__ = str(source)
    other = types.ModuleType("other_code")
    other.__file__ = str(tmp_path / "other_code.py")
    (tmp_path / "other_code.py").write_text("")
    cache = Cache(tmp_path / "cache")
    cache.run(Stage("a", _write, code=(module,)), {})
    cache.run(Stage("b", _write, code=(other,)), {})
    source.write_text("VERSION = 2\n")
    assert not cache.run(Stage("a", _write, code=(module,)), {}).cached
    assert cache.run(Stage("b", _write, code=(other,)), {}).cached


def test_killed_builds_temporary_folders_are_swept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / "train" / f"{'a' * 16}.tmp-{dead.stdout.strip()}"
    stale.mkdir(parents=True)
    (stale / "half.pt").write_text("x")
    live = tmp_path / "train" / f"{'b' * 16}.tmp-{os.getpid()}"  # a build still running: left alone
    live.mkdir()
    unrelated = tmp_path / "train" / "notes.tmp-1"  # not a name the cache writes: never touched
    unrelated.mkdir()
    assert Cache(tmp_path).sweep() == 1
    assert not stale.exists() and live.is_dir() and unrelated.is_dir()


def test_prune_removes_only_finished_entries_this_build_did_not_reach(tmp_path: Path) -> None:
    old = Cache(tmp_path)
    old.run(Stage("stage", _write), {"a": 1})
    keep = old.run(Stage("stage", _write), {"a": 2})
    (tmp_path / "stage" / "mine.txt").write_text("user file")
    cache = Cache(tmp_path)
    cache.run(Stage("stage", _write), {"a": 2})
    removed, freed = cache.prune()
    assert removed == 1 and freed > 0
    assert sorted(p.name for p in (tmp_path / "stage").iterdir()) == sorted([keep.key, "mine.txt"])
