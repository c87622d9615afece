"""Content-addressed stage artifacts with atomic writes.

A stage's artifacts live in `<cache>/<stage>/<key>/`, where the key hashes the stage's own config
section, the keys of the artifacts it reads and the code version. A stage writes into a temporary
sibling folder and only a finished folder, with its manifest, is renamed into place, so an
interrupted build (Ctrl-C, kill) never leaves a folder that a later build would trust.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import __version__

log = logging.getLogger("reportgen")
MANIFEST = "manifest.json"


def source_digest(*modules: ModuleType) -> str:
    """Hash of the source files of the modules a stage runs, so changed code invalidates its artifacts
    (and only those: editing the site code does not retrain a model)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()[:16]


def stable_hash(value: Any) -> str:
    """A short hash of JSON-able data, independent of dict order."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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

    def run(self, stage: str, inputs: dict[str, Any], produce: Callable[[Path], dict[str, Any] | None],
            label: str | None = None, code: tuple[ModuleType, ...] = ()) -> Artifact:
        """Return the artifact for `inputs`, calling `produce(tmp_dir)` only on a cache miss.

        `produce` writes its files into the folder it is given and may return extra manifest fields;
        `code` lists the modules whose source the artifact depends on.
        """
        key = stable_hash({"stage": stage, "inputs": inputs, "version": __version__,
                           "code": source_digest(*code)})
        final = self.root / stage / key
        start = time.perf_counter()
        if not self.force and (final / MANIFEST).is_file():
            manifest = json.loads((final / MANIFEST).read_text())
            return Artifact(stage, key, final, manifest, True, time.perf_counter() - start)
        tmp = final.with_name(f"{key}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            extra = produce(tmp) or {}
            manifest = {"stage": stage, "label": label or stage, "key": key, "inputs": inputs,
                        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "files": sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()),
                        **extra}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
            if final.exists():  # a forced rebuild replaces the old artifact
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        seconds = time.perf_counter() - start
        log.debug("%s built in %.1fs -> %s", stage, seconds, final)
        return Artifact(stage, key, final, manifest, False, seconds)
