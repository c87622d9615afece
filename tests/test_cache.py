"""Stage cache: hits skip the work, failures leave nothing a later build would trust."""

from pathlib import Path

import pytest

from reportgen.cache import MANIFEST, Cache


def test_hit_skips_produce_and_miss_on_changed_inputs(tmp_path: Path) -> None:
    calls = []

    def produce(folder: Path) -> dict:
        calls.append(folder)
        (folder / "out.txt").write_text("x")
        return {"n": 1}

    cache = Cache(tmp_path)
    first = cache.run("stage", {"a": 1}, produce)
    second = cache.run("stage", {"a": 1}, produce)
    assert len(calls) == 1 and not first.cached and second.cached
    assert second.path == first.path and second.manifest["n"] == 1 and second.manifest["files"] == ["out.txt"]
    assert cache.run("stage", {"a": 2}, produce).key != first.key
    assert len(calls) == 2
    Cache(tmp_path, force=True).run("stage", {"a": 1}, produce)
    assert len(calls) == 3


def test_interrupted_stage_leaves_no_trusted_artifact(tmp_path: Path) -> None:
    def crash(folder: Path) -> None:
        (folder / "half.bin").write_text("partial")
        raise KeyboardInterrupt

    cache = Cache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        cache.run("stage", {"a": 1}, crash)
    assert not list((tmp_path / "stage").glob(f"*/{MANIFEST}"))
    assert not list((tmp_path / "stage").iterdir())  # the temporary folder is cleaned up too
    result = cache.run("stage", {"a": 1}, lambda folder: None)
    assert not result.cached


def test_changed_stage_code_invalidates_only_its_artifacts(tmp_path: Path) -> None:
    import types

    source = tmp_path / "stage_code.py"
    source.write_text("VERSION = 1\n")
    module = types.ModuleType("stage_code")
    module.__file__ = str(source)
    other = types.ModuleType("other_code")
    other.__file__ = str(tmp_path / "other_code.py")
    (tmp_path / "other_code.py").write_text("")
    calls = []
    cache = Cache(tmp_path / "cache")
    produce = lambda folder: calls.append(folder)  # noqa: E731
    cache.run("a", {}, produce, code=(module,))
    cache.run("b", {}, produce, code=(other,))
    source.write_text("VERSION = 2\n")
    assert not cache.run("a", {}, produce, code=(module,)).cached
    assert cache.run("b", {}, produce, code=(other,)).cached
    assert len(calls) == 3
