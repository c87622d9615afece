"""Publishing a staged site into the output folder: all at once, deleting only files a build can
prove it wrote (each recorded with its content hash in the site marker), never following a link."""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

from reportgen import __version__
from reportgen.cache import SITE_MARKER, file_sha256, pid_alive
from reportgen.errors import SiteError

log = logging.getLogger("reportgen")
MARKER = SITE_MARKER


def check_output_dir(out: Path) -> None:
    """Refuse to write into a folder that holds files reportgen did not write, or whose record of what
    reportgen wrote is damaged; put back a previous site that a build killed mid-switch left aside."""
    _recover(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SiteError(f"{out}: output path exists and is not a folder; choose a folder with --out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MARKER).exists() and not (out / MARKER).is_symlink():
        raise SiteError(f"{out}: refusing to write into a folder that is not empty and was not written by "
                        f"reportgen (no {MARKER}); use an empty or new folder (--out)")
    read_marker(out)


def read_marker(out: Path) -> dict[str, str]:
    """The files a previous build wrote into `out`, as relative path -> SHA-256 of the content it wrote.

    A marker that cannot be read as one makes the folder's ownership unknown: SiteError, nothing touched.
    A marker of the first format (names without hashes) proves nothing, so nothing it lists is deleted.
    """
    marker = out / MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            raise ValueError("not a regular file")
        data = json.loads(marker.read_text(encoding="utf-8"))
        files = data["files"]
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            return {}
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  and re.fullmatch(r"[0-9a-f]{64}", v) for k, v in files.items()):
            raise ValueError("'files' is not a table of file names and SHA-256 hashes")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
        why = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise SiteError(f"{marker}: damaged site marker ({why}), so which files reportgen wrote there is unknown; "
                        "refusing to write into the folder: move your own files out of it and delete it, or "
                        "choose another folder (--out)") from None
    return files


def publish(staging: Path, out: Path) -> None:
    """Make the staged site the site at `out`, all at once.

    The staged tree receives the marker and every file of `out` that this build cannot prove a build
    wrote (a CNAME, say: hard-linked, or copied), then replaces `out` by two renames, undone if the
    second fails; a reader sees the old site or the new one, never a mix. From the old tree only files
    whose content still matches the hash the marker recorded, and the ones carried over, are deleted.
    """
    check_output_dir(out)  # also here, so no caller can publish over a foreign or unknown folder
    owned = read_marker(out) if (out / MARKER).is_file() else {}
    new = {p.relative_to(staging).as_posix(): file_sha256(p) for p in sorted(staging.rglob("*"))
           if p.is_file() and not p.is_symlink()}
    (staging / MARKER).write_text(json.dumps({"generator": f"reportgen {__version__}", "format": 2, "files": new},
                                             indent=1))
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    try:
        carried = _carry_user_files(out, staging, owned) if out.is_dir() else set()
        if not out.is_dir():
            os.rename(staging, out)
            return
        os.rename(out, old)
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(old, out)
            raise
    except OSError as e:
        where = _in_site(e.filename, staging, out)
        raise SiteError(f"{out}: cannot publish the site ({e.strerror or e}{': ' + where if where else ''}); "
                        "the previous site is unchanged") from None
    # the new site is in place: from here on nothing raises, and what cannot be cleared is said as it is
    kept, stuck = _remove_old_site(old, owned, carried)
    if stuck:
        log.warning("%s: published the new site, but %d file%s of the previous one could not be deleted (%s), "
                    "e.g. %s; they are left in %s, which the next build clears once it can", out, len(stuck),
                    "s" * (len(stuck) != 1), stuck[0][1], stuck[0][0], old)
    if kept:
        log.warning("%s: kept %d file%s of the previous site that this build could not prove reportgen wrote "
                    "(edited since, or not regular files), e.g. %s", old, len(kept), "s" * (len(kept) != 1), kept[0])


def _in_site(filename: str | None, staging: Path, out: Path) -> str:
    """A path an OSError names, as the reader knows it: relative to the site, never the staging folder."""
    if not filename:
        return ""
    path = Path(filename)
    for root in (staging, out):
        if root in path.parents:
            return path.relative_to(root).as_posix()
    return "" if path == staging or path.name.startswith(f".{out.name}.") else str(path)


def _proven(path: Path, rel: str, owned: dict[str, str]) -> bool:
    """True when `path` is a regular file (not a link) whose content is what a build recorded writing."""
    return not path.is_symlink() and path.is_file() and rel in owned and file_sha256(path) == owned[rel]


def _walk(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """(relative path, path, is a real folder) for everything under `root`, never following a link."""
    for parent, dirs, names in os.walk(root, followlinks=False):
        for name in sorted(dirs) + sorted(names):
            path = Path(parent, name)
            real_dir = path.is_dir() and not path.is_symlink()
            yield path.relative_to(root).as_posix(), path, real_dir


def _carry_user_files(out: Path, staging: Path, owned: dict[str, str]) -> set[str]:
    """Give the staged tree every file of `out` a build did not provably write; return their paths.

    A file at a path the new site writes is replaced by it (the previous one stays in the old tree)."""
    carried: set[str] = set()
    for rel, path, real_dir in _walk(out):
        target = staging / rel
        if rel == MARKER or _proven(path, rel, owned):
            continue
        if target.exists() or target.is_symlink() or not target.parent.is_dir():
            continue  # the new site has something at this path (or a file where this one's folder is)
        if real_dir:
            target.mkdir()
        elif path.is_symlink():
            os.symlink(os.readlink(path), target)
        elif path.is_file():
            try:
                os.link(path, target, follow_symlinks=False)
            except OSError:
                shutil.copy2(path, target, follow_symlinks=False)
        else:
            continue  # sockets, pipes: left in the old tree
        carried.add(rel)
    return carried


def _remove_old_site(old: Path, owned: dict[str, str], carried: set[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Delete what a build wrote (and what was carried into the new site) from the old tree. Return
    the files kept because no build provably wrote them, and (file, reason) for those that could not be
    deleted (a read-only folder); the folders holding either stay in place."""
    kept: list[str] = []
    stuck: list[tuple[str, str]] = []
    for rel, path, real_dir in reversed(list(_walk(old))):
        if real_dir:
            with suppress(OSError):  # not empty: something in it was kept
                path.rmdir()
        elif rel == MARKER:
            continue  # last, and only once nothing it vouches for is stuck: a later build needs it
        elif rel in carried or _proven(path, rel, owned):
            try:
                path.unlink()
            except OSError as e:
                stuck.append((rel, e.strerror or str(e)))
        else:
            kept.append(rel)
    if not stuck:
        with suppress(OSError):
            (old / MARKER).unlink()
    with suppress(OSError):
        old.rmdir()
    return kept, stuck


def _recover(out: Path) -> None:
    """Clear what builds killed or refused while publishing left beside `out`: a staged tree is dropped;
    a previous site moved aside is renamed back when no site took its place, and otherwise loses the
    files its own marker proves a build wrote (what a read-only folder kept a publish from deleting)."""
    if not out.parent.is_dir():
        return
    for leftover in sorted(out.parent.glob(f".{glob.escape(out.name)}.*-*")):
        kind, _, pid = leftover.name[len(out.name) + 2:].rpartition("-")
        if kind not in ("staging", "old") or not pid.isdigit() or pid_alive(int(pid)):
            continue
        if leftover.is_symlink() or not leftover.is_dir():
            continue
        if kind == "old" and not out.exists() and (leftover / MARKER).is_file():
            os.rename(leftover, out)
            log.warning("%s: put back the previous site, which an interrupted build had moved aside", out)
        elif kind == "old" and out.is_dir():
            try:
                owned = read_marker(leftover) if (leftover / MARKER).is_file() else {}
            except SiteError:
                continue  # which files a build wrote there is unknown: touch nothing
            if (leftover / MARKER).is_file() and not owned:
                continue  # a first-format marker proves nothing
            _, stuck = _remove_old_site(leftover, owned, set())
            if stuck:
                log.warning("%s: %d file%s of an earlier site still cannot be deleted (%s), e.g. %s", leftover,
                            len(stuck), "s" * (len(stuck) != 1), stuck[0][1], stuck[0][0])
        elif kind == "staging":
            shutil.rmtree(leftover, ignore_errors=True)  # only what a build wrote, and links to user files

