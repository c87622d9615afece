"""Publishing: the staged site swapped in at once, only files a build can prove it wrote deleted."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from reportgen.errors import SiteError
from reportgen.report.publish import MARKER, check_output_dir, publish


def _stage(root: Path, files: dict[str, str]) -> Path:
    staging = root / f"staging-{len(list(root.glob('staging-*')))}"
    for rel, text in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text)
    return staging


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _beside(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_publishing_deletes_only_the_files_a_build_wrote_and_keeps_the_users(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "posts/p/old.svg": "drawing", "posts/p/index.html": "post"}), out)
    (out / "CNAME").write_text("example.org")
    (out / "notes").mkdir()
    (out / "notes" / "todo.txt").write_text("mine")
    publish(_stage(tmp_path, {"index.html": "v2", "posts/p/index.html": "post 2"}), out)
    assert (out / "index.html").read_text() == "v2" and not (out / "posts" / "p" / "old.svg").exists()
    assert (out / "CNAME").read_text() == "example.org" and (out / "notes" / "todo.txt").read_text() == "mine"
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == {"index.html": _sha("v2"), "posts/p/index.html": _sha("post 2")}
    assert _beside(out) == []


def test_a_generated_file_edited_since_is_never_deleted(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "extra.html": "generated"}), out)
    (out / "extra.html").write_text("edited by hand")
    publish(_stage(tmp_path, {"index.html": "v2"}), out)
    assert (out / "extra.html").read_text() == "edited by hand"


def test_a_hostile_marker_cannot_delete_anything_outside_the_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1"}), out)
    victims = {name: tmp_path / name for name in ("victim.txt", "linked.txt")}
    for path in victims.values():
        path.write_text("precious")
    (out / "link.txt").symlink_to(victims["linked.txt"])
    (out / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    listed = {"../victim.txt": _sha("precious"), str(victims["victim.txt"]): _sha("precious"),
              "posts/../../victim.txt": _sha("precious"), "link.txt": _sha("precious"),
              "linked-dir/victim.txt": _sha("precious"), "index.html": _sha("v1")}
    (out / MARKER).write_text(json.dumps({"files": listed}))
    publish(_stage(tmp_path, {"index.html": "v2"}), out)
    assert all(path.read_text() == "precious" for path in victims.values())
    assert (out / "link.txt").is_symlink() and (out / "linked-dir").is_symlink()  # the user's links survive
    assert (out / "index.html").read_text() == "v2"


@pytest.mark.parametrize("marker", ["{not json", "{}", '{"files": {"index.html": 3}}', '{"files": "index.html"}',
                                    "[1, 2]", b"\xff\xfe".decode("latin-1"), None])
def test_a_damaged_marker_makes_ownership_unknown_and_touches_nothing(tmp_path: Path, marker: str | None) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.html").write_text("someone's")
    if marker is None:
        (out / MARKER).mkdir()
    else:
        (out / MARKER).write_text(marker, encoding="latin-1")
    for attempt in (lambda: check_output_dir(out), lambda: publish(_stage(tmp_path, {"index.html": "new"}), out)):
        with pytest.raises(SiteError, match=f"{MARKER}: damaged site marker .*which files reportgen wrote there is "
                                            "unknown"):
            attempt()
    assert (out / "index.html").read_text() == "someone's"


def test_a_marker_without_hashes_proves_nothing_so_nothing_is_deleted(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "stale.html").write_text("old")
    (out / MARKER).write_text(json.dumps({"files": ["stale.html"]}))
    check_output_dir(out)
    publish(_stage(tmp_path, {"index.html": "new"}), out)
    assert (out / "stale.html").read_text() == "old" and (out / "index.html").read_text() == "new"


@pytest.mark.parametrize("fail", ["switch", "carry"])
def test_a_failed_publish_leaves_the_previous_site_whole_and_names_the_destination(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "posts/p/index.html": "post 1"}), out)
    (out / "CNAME").write_text("example.org")
    before = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    real_rename = os.rename

    def rename(src: str, dst: str) -> None:
        if fail == "switch" and "staging" in str(src):
            raise PermissionError(13, "Permission denied", str(src))
        real_rename(src, dst)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(os, "rename", rename)
    if fail == "carry":
        monkeypatch.setattr(os, "link", refuse)
        monkeypatch.setattr(shutil, "copy2", refuse)
    with pytest.raises(SiteError) as err:
        publish(_stage(tmp_path, {"index.html": "v2", "posts/p/index.html": "post 2"}), out)
    assert str(err.value).startswith(f"{out}: cannot publish the site (Permission denied")
    assert "staging" not in str(err.value)
    assert {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()} == before


def test_a_site_moved_aside_by_a_killed_build_is_put_back(tmp_path: Path) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1"}), out)
    os.rename(out, tmp_path / ".site.old-99999999")  # a build killed between its two renames
    (tmp_path / ".site.staging-99999999").mkdir()
    check_output_dir(out)
    assert (out / "index.html").read_text() == "v1" and _beside(out) == []


def test_a_previous_site_that_cannot_be_deleted_is_reported_as_it_is_and_cleared_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "site"
    publish(_stage(tmp_path, {"index.html": "v1", "posts/p/index.html": "post 1"}), out)
    real_unlink = Path.unlink

    def read_only_posts(self: Path, missing_ok: bool = False) -> None:  # as a read-only folder refuses
        if "posts" in self.parts and ".site.old-" in str(self):
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", read_only_posts)
    publish(_stage(tmp_path, {"index.html": "v2", "posts/p/index.html": "post 2"}), out)  # no error: it published
    assert (out / "index.html").read_text() == "v2" and (out / "posts/p/index.html").read_text() == "post 2"
    (left,) = _beside(out)
    assert "published the new site, but 1 file of the previous one could not be deleted (Permission denied), " \
           "e.g. posts/p/index.html" in caplog.text
    assert (tmp_path / left / MARKER).is_file()  # kept, so a later build can still prove what it wrote there
    monkeypatch.setattr(Path, "unlink", real_unlink)
    os.rename(tmp_path / left, tmp_path / ".site.old-99999999")  # as the next build finds it: its build is gone
    check_output_dir(out)
    assert _beside(out) == [] and (out / "index.html").read_text() == "v2"
