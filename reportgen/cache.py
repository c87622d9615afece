"""Content-addressed stage artifacts with atomic writes.

A stage is declared once (`Stage`): a function `fn(folder, params, *inputs)` that writes files into
`folder`, where `params` is the config section (or plain data) it reads and `inputs` are the
artifacts of the stages it depends on. Its key hashes exactly those params, the keys of those
inputs and the source of the modules it runs, and `fn` receives nothing else, so what a stage reads
and what it is keyed on cannot drift apart.

Artifacts live in `<cache>/<stage>/<key>/`. A stage writes into a temporary sibling folder and only
a finished folder, with its manifest, is renamed into place, so an interrupted build (Ctrl-C, kill)
never leaves a folder that a later build would trust; the next build sweeps such leftovers.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import functools
import hashlib
import inspect
import json
import logging
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen import __version__
from reportgen.progress import stage_label

log = logging.getLogger("reportgen")
MANIFEST = "manifest.json"
SITE_MARKER = ".reportgen-site.json"  # in the root of every site a build publishes (see report/publish.py)
# The standard tag (bford.info/cachedir) that backup tools skip, and that the data scan skips too
CACHE_TAG = "CACHEDIR.TAG"
_CACHE_TAG_TEXT = "Signature: 8a477f597d28d172789f06886806bc55\n# A reportgen cache: stage artifacts, safe to delete.\n"
_KEY = re.compile(r"[0-9a-f]{16}")
_TMP = re.compile(r"([0-9a-f]{16})\.tmp-(\d+)")


# Modules a stage's key follows by the values they give it, not by their source: config.py reads and
# checks the config, and every value a stage uses is in its params, so a new option or a reworded
# error message there retrains nothing (every stage imports it, for the option dataclasses)
KEYED_BY_VALUE = frozenset({"reportgen.config"})


def source_digest(*modules: str) -> str:
    """Hash of the source files of the named modules, so changed code invalidates the artifacts of the
    stages that run it (and only those: editing drawing code does not retrain a model)."""
    digest = hashlib.sha256()
    for name in sorted(modules):
        digest.update(name.encode() + b"\0" + module_source(name) + b"\0")
    return digest.hexdigest()[:16]


def module_source(name: str) -> bytes:
    """The bytes of a module's source file."""
    return module_file(name).read_bytes()


def module_file(name: str) -> Path:
    """The source file of a module of an imported top-level package, found on disk without importing it
    (so keys can be computed without torch)."""
    top, *rest = name.split(".")
    root = Path(inspect.getfile(sys.modules[top]))
    if root.name != "__init__.py":  # a top-level plain module
        return root
    folder = root.parent.joinpath(*rest)
    return folder / "__init__.py" if (folder / "__init__.py").is_file() else folder.with_suffix(".py")


def import_closure(name: str) -> tuple[str, ...]:
    """`name` and every module of its own top-level package that it imports, transitively, with the
    packages that contain them (their `__init__` runs on import too). Imports inside functions count:
    they run as well. Found by reading the source (ast), so nothing is listed by hand and nothing drifts."""
    top = name.split(".")[0]
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # its packages
        todo.extend(direct_imports(current, module_file(current), top))
    return tuple(sorted(seen))


def direct_imports(name: str, path: Path, top: str) -> list[str]:
    """Modules of package `top` imported by the source at `path` (module `name`), as absolute names;
    for `from X import y`, y too where it is a submodule of X. Parsed once per version of the file."""
    st = path.stat()
    return list(_parsed_imports(name, str(path), st.st_mtime_ns, st.st_size, top))


@functools.lru_cache(maxsize=1024)
def _parsed_imports(name: str, file: str, _mtime_ns: int, _size: int, top: str) -> tuple[str, ...]:
    path = Path(file)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(module)
            if module.split(".")[0] == top:
                found.extend(sub for alias in node.names if module_file(sub := f"{module}.{alias.name}").is_file())
    return tuple(m for m in found if m.split(".")[0] == top)


def plain(value: Any) -> Any:
    """Config sections (dataclasses), tuples and paths as JSON data, for keys and manifests."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("internal")}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def stable_hash(value: Any) -> str:
    """A short hash of JSON-able data (config sections included), independent of dict order."""
    text = json.dumps(plain(value), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """Short content hash of a file, so a replaced checkpoint or weights file invalidates what used it."""
    return file_sha256(path)[:16]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Stage:
    """A cached step of the build: `fn(folder, params, *inputs)` writes its files into `folder` and
    may return extra manifest fields. The code it runs is its module's import closure."""

    name: str
    fn: Callable[..., dict[str, Any] | None]

    def modules(self) -> tuple[str, ...]:
        return tuple(m for m in import_closure(self.fn.__module__) if m not in KEYED_BY_VALUE)


@dataclass(frozen=True)
class Artifact:
    """A finished stage output: its folder, key, manifest and whether it came from the cache."""

    stage: str
    key: str
    path: Path
    manifest: dict[str, Any]
    cached: bool
    seconds: float

    def file(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def external(cls, stage: str, path: Path) -> Artifact:
        """A user's file (a checkpoint, weights) as an input: keyed by its content, not its name."""
        return cls(stage, file_digest(path), path.parent, {"label": path.name, "files": [path.name],
                                                          "file": path.name}, True, 0.0)


def layered(records: Sequence[Any]) -> dict[str, Any]:
    """The npz entries of one dataclass record per layer: `<field>_<layer index>`, the one naming of
    per-layer arrays in every artifact."""
    return {f"{f.name}_{i}": getattr(record, f.name) for i, record in enumerate(records)
            for f in dataclasses.fields(record)}


def unlayered(cls: type, arrays: Any, count: int) -> list[Any]:
    """The `count` records of dataclass `cls` that `layered` wrote into `arrays` (an npz or a dict)."""
    return [cls(**{f.name: arrays[f"{f.name}_{i}"] for f in dataclasses.fields(cls)}) for i in range(count)]


def source_date() -> datetime.date | None:
    """The date of SOURCE_DATE_EPOCH (the reproducible-builds convention), None when it is unset."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return None
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).date()


def versions() -> dict[str, str]:
    """Versions that shape results; recorded in manifests and the site footer."""
    import numpy
    import torch

    return {"reportgen": __version__, "python": platform.python_version(), "torch": str(torch.__version__),
            "numpy": numpy.__version__}


class Cache:
    """Runs stages, reusing a finished artifact when its key is already on disk."""

    def __init__(self, root: Path, force: bool = False) -> None:
        self.root = root
        self.force = force
        self.used: set[Path] = set()  # artifact folders this build reached, for prune()

    def tag(self) -> None:
        """Create the cache folder with its CACHEDIR.TAG, so an image folder holding it never reads it as data."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / CACHE_TAG).exists():
            (self.root / CACHE_TAG).write_text(_CACHE_TAG_TEXT)

    def run(self, stage: Stage, params: Any, *inputs: Artifact, label: str | None = None,
            runtime: dict[str, Any] | None = None) -> Artifact:
        """The artifact of `stage` for `params` and `inputs`, calling the stage only on a cache miss.

        `runtime` holds settings that change how fast a stage runs, never what it writes (batch sizes):
        they reach the stage as keyword arguments and stay out of the key.
        """
        key = stable_hash({"stage": stage.name, "params": params, "inputs": [a.key for a in inputs],
                           "version": __version__, "code": source_digest(*stage.modules())})
        final = self.root / stage.name / key
        self.used.add(final)
        label = label or stage.name
        start = time.perf_counter()
        if not self.force and (final / MANIFEST).is_file():
            manifest = json.loads((final / MANIFEST).read_text())
            return Artifact(stage.name, key, final, manifest, True, time.perf_counter() - start)
        tmp = final.with_name(f"{key}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with stage_label(label):
                extra = stage.fn(tmp, params, *inputs, **(runtime or {})) or {}
            manifest = {"stage": stage.name, "label": label, "key": key, "params": plain(params),
                        "inputs": [a.key for a in inputs], "versions": versions(),
                        "files": sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()),
                        **extra}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
            if final.exists():  # a forced rebuild replaces the old artifact
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        seconds = time.perf_counter() - start
        log.debug("%s built in %.1fs -> %s", stage.name, seconds, final)
        return Artifact(stage.name, key, final, manifest, False, seconds)

    def _entries(self) -> list[Path]:
        """Folders this cache wrote: `<stage>/<key>` and `<stage>/<key>.tmp-<pid>`, nothing else."""
        if not self.root.is_dir():
            return []
        return [entry for stage in self.root.iterdir() if stage.is_dir() and not stage.is_symlink()
                for entry in stage.iterdir() if entry.is_dir() and not entry.is_symlink()
                and (_KEY.fullmatch(entry.name) or _TMP.fullmatch(entry.name))]

    def sweep(self) -> int:
        """Remove temporary folders of builds that were killed (their process is gone); return how many."""
        swept = 0
        for entry in self._entries():
            match = _TMP.fullmatch(entry.name)
            if match and not pid_alive(int(match.group(2))):
                shutil.rmtree(entry, ignore_errors=True)
                swept += 1
        return swept

    def prune(self) -> tuple[int, int]:
        """Remove finished entries this build did not reach; return (entries removed, bytes freed)."""
        removed = freed = 0
        for entry in self._entries():
            if _KEY.fullmatch(entry.name) and (entry / MANIFEST).is_file() and entry not in self.used:
                freed += sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and not p.is_symlink())
                shutil.rmtree(entry)
                removed += 1
        for stage in self.root.iterdir() if self.root.is_dir() else []:
            if stage.is_dir() and not stage.is_symlink() and not any(stage.iterdir()):
                stage.rmdir()
        return removed, freed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to someone else
        return True
    return True
