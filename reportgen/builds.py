"""What a build made, and how the next one knows from files alone that it would make the same.

A finished build records in the cache (builds/<hash of the output folder>.json) a fingerprint of
everything it read: the config, the package's source and templates, the data source's own
fingerprint, the user's checkpoint, weights and template files, the versions of the libraries that
shape results, and SOURCE_DATE_EPOCH; with it, the hash of the site marker it published and the
cache entries of the stages it ran. A later build whose fingerprint matches, whose cache still holds
those entries and whose site still holds its files has nothing to do: it says so without importing
torch or rendering a page. Anything else runs the full build, where each stage decides from its key.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from reportgen import __version__
from reportgen.cache import MANIFEST, SITE_MARKER, Artifact, plain, source_digest
from reportgen.config import Config
from reportgen.errors import ModelError
from reportgen.nets.data import file_state, source_fingerprint
from reportgen.report.templates import TEMPLATES, user_templates

_PACKAGE = Path(__file__).resolve().parent
# distributions whose version can change a number, a picture or the footer of the site
_LIBRARIES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "openTSNE", "matplotlib", "pillow",
              "jinja2", "markdown", "imageio", "imageio-ffmpeg", "scikit-image", "mlxtend")


@dataclass
class BuildResult:
    out: Path
    stages: list[Artifact] = field(default_factory=list)
    seconds: float = 0.0
    pruned: tuple[int, int] | None = None   # (cache entries removed, bytes freed) with prune=True
    up_to_date: bool = False                # nothing changed: no stage ran and the site was left as it was


def inputs_fingerprint(cfg: Config, out: Path) -> str:
    """A hash of everything a build of `cfg` into `out` reads (see the module's docstring)."""
    files = {f"models[{i}].{key}": file_state(cfg.resolve(path)) for i, m in enumerate(cfg.models)
             for key, path in (("checkpoint", m.checkpoint), ("weights", m.weights),
                               ("classes_file", m.classes_file)) if path}
    files.update({f"models[{i}].arch": file_state(path) for i, m in enumerate(cfg.models)
                  if (path := m.class_file(cfg.root)) is not None})
    parts = {
        "reportgen": __version__,
        "config": plain(cfg),
        "root": str(cfg.root.resolve()),
        "out": str(out),
        "code": source_digest(*_package_modules()),
        "templates": [_tree_digest(TEMPLATES, "*"), _tree_digest(user_templates(cfg), "*")],
        "data": source_fingerprint(cfg.data, cfg.root),
        "files": files,
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "environment": {name: os.environ.get(name, "") for name in ("SOURCE_DATE_EPOCH", "CUDA_VISIBLE_DEVICES")},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def check_files(cfg: Config) -> None:
    """The files a build reads, checked before torch is imported (seconds on a loaded machine): the
    image folder and its class folders, and each model file the config names."""
    source_fingerprint(cfg.data, cfg.root)  # scans a folder source as loading it would, without decoding
    for index, m in enumerate(cfg.models):
        for key, path in (("checkpoint", m.checkpoint), ("weights", m.weights), ("classes_file", m.classes_file)):
            if path and not cfg.resolve(path).is_file():
                raise ModelError(f"models[{index}].{key}: file not found: {cfg.resolve(path)}")
        if (module := m.class_file(cfg.root)) is not None and not module.is_file():
            raise ModelError(f"models[{index}].arch: file not found: {module}")


def save_record(cfg: Config, out: Path, inputs: str, stages: list[Artifact]) -> None:
    """Keep, in the cache, what `up_to_date` checks next time: the inputs' fingerprint, the hash of the
    site marker just published (so the site is the one this build wrote) and the stages' folders. In
    the cache, not the site: a published file would show local paths and differ between machines."""
    record = {"inputs": inputs, "marker": _sha256((out / SITE_MARKER).read_bytes()),
              "stages": [{"label": a.manifest.get("label", a.stage), "stage": a.stage, "path": str(a.path)}
                         for a in stages if a.key]}
    path = _record_path(cfg, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def up_to_date(cfg: Config, out: Path) -> BuildResult | None:
    """The previous build's result when a build now would change nothing; None when it must run."""
    start = time.perf_counter()
    try:
        record = json.loads(_record_path(cfg, out).read_text(encoding="utf-8"))
        marker = (out / SITE_MARKER).read_bytes()
        inputs, stages, files = record["inputs"], record["stages"], json.loads(marker)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no previous build of this site, or a record this version cannot read: build
    if _sha256(marker) != record.get("marker") or inputs != inputs_fingerprint(cfg, out):
        return None  # another build published there since, or something it reads changed
    folders = [Path(s["path"]) for s in stages]
    if not all((folder / MANIFEST).is_file() for folder in folders):
        return None  # pruned or deleted cache entries: the stages must say what they would do
    if not all((out / name).is_file() for name in files):
        return None  # a published file was removed: republish
    artifacts = [Artifact(s["stage"], folder.name, folder, {"label": s["label"]}, True, 0.0)
                 for s, folder in zip(stages, folders, strict=True)]
    return BuildResult(out, artifacts, time.perf_counter() - start, up_to_date=True)


def _record_path(cfg: Config, out: Path) -> Path:
    """One record per output folder, in the cache's builds/ folder (not a stage: prune leaves it)."""
    return cfg.resolve(cfg.build.cache) / "builds" / f"{_sha256(str(out).encode())[:16]}.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _package_modules() -> list[str]:
    """Every module of the package, by name (hashed through cache.module_source, as stage keys are)."""
    names = []
    for path in _PACKAGE.rglob("*.py"):
        parts = ("reportgen", *path.relative_to(_PACKAGE).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _tree_digest(root: Path, pattern: str) -> str:
    """Content hash of the files under `root` that match `pattern`, with their relative paths."""
    digest = hashlib.sha256()
    if root.is_dir():
        for path in sorted(p for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""
