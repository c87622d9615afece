"""Stage cache: hits skip the work, keys follow what a stage reads, failures leave nothing trusted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen.cache import MANIFEST, Cache, Stage, import_closure


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


@pytest.fixture
def stage_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package on disk: `compute` imports `shared` (relatively, inside a function) and `draw` imports
    `compute` (absolutely); `other` imports nothing of the package."""
    root = tmp_path / "src" / "stagepkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "shared.py").write_text("SCALE = 1\n")
    (root / "sub" / "compute.py").write_text(
        "def run(folder, params):\n    from ..shared import SCALE\n    (folder / 'x').write_text(str(SCALE))\n")
    (root / "sub" / "draw.py").write_text(
        "from stagepkg.sub import compute\n\ndef run(folder, params):\n    (folder / 'y').write_text('drawn')\n")
    (root / "other.py").write_text("def run(folder, params):\n    (folder / 'z').write_text('other')\n")
    monkeypatch.syspath_prepend(str(root.parent))
    yield root
    for name in [m for m in sys.modules if m == "stagepkg" or m.startswith("stagepkg.")]:
        del sys.modules[name]


def test_import_closure_follows_relative_absolute_and_function_level_imports(stage_package: Path) -> None:
    import stagepkg.sub.draw

    assert import_closure(stagepkg.sub.draw.__name__) == (
        "stagepkg", "stagepkg.shared", "stagepkg.sub", "stagepkg.sub.compute", "stagepkg.sub.draw")


def test_editing_an_imported_module_invalidates_exactly_the_stages_that_import_it(
        stage_package: Path, tmp_path: Path) -> None:
    import stagepkg.other
    import stagepkg.sub.compute
    import stagepkg.sub.draw

    stages = [Stage(name, module.run) for name, module in
              (("compute", stagepkg.sub.compute), ("draw", stagepkg.sub.draw), ("other", stagepkg.other))]
    cache = Cache(tmp_path / "cache")
    assert not any(cache.run(stage, {}).cached for stage in stages)
    (stage_package / "shared.py").write_text("SCALE = 2\n")  # imported by compute, and through it by draw
    assert [cache.run(stage, {}).cached for stage in stages] == [False, False, True]
    (stage_package / "sub" / "draw.py").write_text((stage_package / "sub" / "draw.py").read_text() + "# a colour\n")
    assert [cache.run(stage, {}).cached for stage in stages] == [True, False, True]


def test_every_stage_of_the_build_is_keyed_on_its_own_closure_only() -> None:
    """Drawing modules are never part of a compute stage's key, so a colour change never re-runs a network."""
    from reportgen import pipeline

    stages = [pipeline.DATA, pipeline.TRAIN, pipeline.EVALUATE, pipeline.DESCRIBE,
              *(stage for section in pipeline.SECTIONS for stage in section.stages)]
    for stage in stages:
        closure = stage.modules()
        assert stage.fn.__module__ in closure and "reportgen.pipeline" not in closure
        drawing = {m for m in closure if m.endswith((".draw", ".present", ".stages"))}
        assert drawing <= {stage.fn.__module__}, (stage.name, drawing)
    assert "reportgen.nets.checkpoint" in pipeline.EVALUATE.modules()


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
