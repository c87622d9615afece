"""Render the static site: Jinja2 templates + a Markdown narrative -> HTML, published atomically.

The site only reads finished artifacts. It is rendered into a staging folder first and moved into
the output folder file by file only once everything rendered, so a failed build leaves the previous
site intact; files the build did not write (a CNAME, say) are never touched.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from markupsafe import Markup, escape

from . import __version__
from .cache import Artifact, stable_hash, versions
from .config import Config, section
from .data import SPLITS, Dataset, augmented_train_count, split_counts
from .describe import read_summary
from .diagram import format_count
from .evaluate import ConfusionTable

MARKER = ".reportgen-site.json"
# a wheel installs the templates inside the package; a source checkout keeps them at the top level
_HERE = Path(__file__).resolve().parent
TEMPLATES = next((p for p in (_HERE / "templates", _HERE.parent / "templates") if (p / "base.html").is_file()),
                 _HERE.parent / "templates")


class SiteError(Exception):
    """An output folder or template problem; the message is one line."""


@dataclass(frozen=True)
class ModelRecord:
    """What the site reads about one model: its display name and the artifacts of its stages."""

    name: str
    key: str                 # file-name-safe id derived from the display name
    model: Artifact          # the train stage's checkpoint, or the user's checkpoint file
    loaded: bool             # True when the config named a checkpoint instead of training
    evaluation: Artifact
    description: Artifact


@dataclass(frozen=True)
class Page:
    """One HTML page of the site: where it goes, which template renders it, and its own context."""

    path: str                # relative to the site root, with '/' separators
    template: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        """The relative path from this page back to the site root ('' or '../../'), so links work
        from disk and under a GitHub Pages project sub-path alike."""
        return "../" * self.path.count("/")


def check_output_dir(out: Path) -> None:
    """Refuse to write into a folder that holds files reportgen did not write."""
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out}: output path exists and is not a folder; choose a folder with --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"{out}: refusing to write into a folder that is not empty and was not written by "
                        f"reportgen (no {MARKER}); use an empty or new folder (--out)")


class Numbering:
    """Numbers figures and tables in order of appearance and resolves references to them.

    References may come before their target, so `ref` leaves a token that `resolve` replaces once
    the whole post is rendered. Tokens are plain letters and digits so Markdown leaves them alone.
    """

    def __init__(self) -> None:
        self.numbers: dict[str, tuple[str, int]] = {}
        self.counts: dict[str, int] = {}
        self.stash: list[str] = []
        self.refs: list[str] = []
        self.cited: list[str] = []

    def cite(self, key: str) -> Markup:
        """A bracketed citation number, assigned in order of first citation."""
        if key not in self.cited:
            self.cited.append(key)
        number = self.cited.index(key) + 1
        return Markup(f'<a class="cite" href="#ref-{escape(key)}">[{number}]</a>')

    def add(self, kind: str, ident: str) -> int:
        if ident in self.numbers:
            raise SiteError(f"post template: {kind.lower()} id {ident!r} is used twice")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.numbers[ident] = (kind, self.counts[kind])
        return self.counts[kind]

    def hold(self, html: str) -> str:
        """Keep an HTML block out of Markdown's way; return the token standing for it."""
        self.stash.append(html)
        return f"\n\nRGBLOCK{len(self.stash) - 1:04d}X\n\n"

    def ref(self, ident: str) -> Markup:
        self.refs.append(ident)
        return Markup(f"RGREF{len(self.refs) - 1:04d}X")

    def resolve(self, html: str) -> str:
        html = re.sub(r"<p>RGBLOCK(\d{4})X</p>", lambda m: self.stash[int(m.group(1))], html)

        def link(m: re.Match[str]) -> str:
            ident = self.refs[int(m.group(1))]
            if ident not in self.numbers:
                raise SiteError(f"post template: reference to unknown figure or table {ident!r}; "
                                f"known: {', '.join(self.numbers) or 'none'}")
            kind, number = self.numbers[ident]
            return f'<a class="xref" href="#{kind.lower()}-{ident}">{kind} {number}</a>'

        return re.sub(r"RGREF(\d{4})X", link, html)


def _inline_markdown(text: str) -> Markup:
    html = markdown.markdown(str(text))
    return Markup(re.sub(r"^<p>(.*)</p>$", r"\1", html, flags=re.S))


def _numbered(kind: str, numbering: Numbering, env: Environment) -> Callable[..., Markup]:
    """A template function placing a numbered figure or table: {% call figure(id, caption) %}...{% endcall %}."""
    template = env.get_template(f"_{kind.lower()}.html")

    def place(ident: str, caption: str, wide: bool = False, caller: Callable[[], str] | None = None) -> Markup:
        number = numbering.add(kind, ident)
        body = caller() if caller else ""
        html = template.render(ident=ident, number=number, caption=_inline_markdown(caption),
                               body=Markup(body), wide=wide)
        return Markup(numbering.hold(html))

    return place


def _user_templates(cfg: Config) -> Path:
    """The folder of the user's template overrides; the built-in folder when none is set."""
    return cfg.resolve(cfg.site.templates) if cfg.site.templates else TEMPLATES


def make_env(cfg: Config) -> Environment:
    """Jinja environment: the user's template folder (if any) overrides the built-in templates."""
    loaders = [FileSystemLoader(str(TEMPLATES))]
    if cfg.site.templates:
        user = _user_templates(cfg)
        if not user.is_dir():
            raise SiteError(f"site.templates: folder not found: {user}")
        loaders.insert(0, FileSystemLoader(str(user)))
    env = Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, autoescape=select_autoescape(["html", "j2"], default=True))
    env.filters["pct"] = lambda v, digits=2: f"{v:.{digits}f}"
    env.filters["thousands"] = lambda v: f"{v:,}"
    env.filters["params"] = format_count
    env.filters["sci"] = lambda v: f"{v:g}"
    env.filters["markdown_inline"] = _inline_markdown
    return env


@dataclass(frozen=True)
class Picture:
    """An image on an atlas entry: a whole file, or one tile of a sprite sheet, so that thousands of
    units cost a few image files rather than thousands."""

    src: str                                   # relative to the post folder, e.g. "figures/preferred/x.png"
    alt: str
    width: int                                 # displayed size, CSS pixels
    height: int
    tile: tuple[int, int, int, int] | None = None   # x, y, w, h of the tile in the sheet, in sheet pixels
    sheet: tuple[int, int] | None = None            # the sheet's width and height, in pixels

    def style(self) -> str:
        """Inline CSS that shows just this tile, scaled to the displayed size."""
        if self.tile is None or self.sheet is None:
            return ""
        x, y, w, h = self.tile
        sx, sy = self.width / w, self.height / h
        return (f"width:{self.width}px;height:{self.height}px;background-size:{self.sheet[0] * sx:g}px "
                f"{self.sheet[1] * sy:g}px;background-position:{-x * sx:g}px {-y * sy:g}px")


@dataclass(frozen=True)
class AtlasPanel:
    """One section's contribution to one unit's atlas entry (preferred inputs, top patches ...)."""

    model: str                                 # the model's key (ModelRecord.key)
    layer: str                                 # the layer's name, e.g. "conv3"
    unit: int
    heading: str
    pictures: tuple[Picture, ...] = ()
    facts: tuple[str, ...] = ()                # short measured statements, e.g. "reached 4.2 (best test image 3.1)"
    flag: str = ""                             # e.g. "dead": shown, so a grey square is not taken for a result


@dataclass(frozen=True)
class Section:
    """What a section of the post (sections 2-4) adds to the site besides its Markdown template."""

    name: str                                           # the context key its templates read
    context: dict[str, Any]                             # numbers and file names, measured by its stages
    pages: list[Page] = field(default_factory=list)     # extra pages; paths relative to the post's folder
    media: list[Artifact] = field(default_factory=list)  # drawing artifacts copied into the post's figures/
    atlas: list[AtlasPanel] = field(default_factory=list)  # per-unit panels, gathered into the atlas pages


def atlas_path(model_key: str, layer: str) -> str:
    """Where a model's layer page of the unit atlas lives, relative to the post folder."""
    return f"atlas/{model_key}/{_file_slug(layer)}.html"


def _file_slug(name: str) -> str:
    """A file name for a layer name or module path ("features.0" -> "features-0"): never a path."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "layer"


def atlas_pages(sections: Sequence[Section], models: Sequence[ModelRecord]) -> list[Page]:
    """One page per model and layer holding every unit's entry, each entry gathering the panels that
    every section contributed for that unit, under a stable anchor (#unit-<index>)."""
    names = {m.key: m.name for m in models}
    grouped: dict[tuple[str, str], dict[int, list[AtlasPanel]]] = {}
    for panel in (p for s in sections for p in s.atlas):
        grouped.setdefault((panel.model, panel.layer), {}).setdefault(panel.unit, []).append(panel)
    layers_of: dict[str, list[str]] = {}
    for model, layer in grouped:
        layers_of.setdefault(model, []).append(layer)
    pages = []
    for (model, layer), units in grouped.items():
        path = atlas_path(model, layer)
        nav = [{"name": name, "href": "../../" + atlas_path(model, name), "current": name == layer}
               for name in layers_of[model]]
        entries = [{"unit": unit, "anchor": f"unit-{unit}", "panels": units[unit]} for unit in sorted(units)]
        pages.append(Page(path, "atlas.html", {"atlas": {"model": names.get(model, model), "layer": layer,
                                                         "nav": nav, "entries": entries}}))
    return pages


MEDIA = (".png", ".svg", ".mp4", ".jpg")


def render(cfg: Config, out: Path, dataset: Dataset, models: list[ModelRecord], drawings: list[Artifact],
           sections: Sequence[Section] = ()) -> None:
    """Render every page into a staging folder, then publish it into `out`."""
    check_output_dir(out)
    env = make_env(cfg)
    context = build_context(cfg, dataset, models)
    context.update({s.name: s.context for s in sections})
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    post = f"posts/{cfg.site.slug}"
    try:
        (staging / post / "figures").mkdir(parents=True)
        for art in [*drawings, *(a for s in sections for a in s.media)]:
            for name in art.manifest["files"]:
                if name.endswith(MEDIA):
                    target = staging / post / "figures" / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(art.file(name), target)
        for static in (TEMPLATES / "static", _user_templates(cfg) / "static"):
            if static.is_dir():  # the user's static files override the built-in ones
                shutil.copytree(static, staging / "static", dirs_exist_ok=True)
        with _template_errors():
            pages = [Page(f"{post}/index.html", "post.html", {"body": _post_body(env, context)}),
                     Page("index.html", "index.html")]
            # a section's page knows its way back to the post ("post") as well as to the site root
            pages += [Page(f"{post}/{p.path}", p.template, {**p.context, "post": "../" * p.path.count("/")})
                      for p in [*(p for s in sections for p in s.pages), *atlas_pages(sections, models)]]
            for page in pages:
                html = env.get_template(page.template).render(root=page.root, **context, **page.context)
                (staging / page.path).parent.mkdir(parents=True, exist_ok=True)
                (staging / page.path).write_text(html, encoding="utf-8")
        (staging / ".nojekyll").write_text("")  # GitHub Pages: serve folders as they are
        publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _post_body(env: Environment, context: dict[str, Any]) -> Markup:
    """The narrative: Jinja renders the Markdown, Markdown the HTML, then figure numbers resolve."""
    numbering = Numbering()
    env.globals.update(figure=_numbered("Figure", numbering, env), table=_numbered("Table", numbering, env),
                       ref=numbering.ref, cite=numbering.cite, references=lambda: list(numbering.cited))
    narrative = env.get_template("post.md.j2").render(**context)
    return Markup(numbering.resolve(markdown.markdown(narrative, extensions=["extra", "toc", "smarty"],
                                                      extension_configs={"toc": {"permalink": False}})))


@contextmanager
def _template_errors() -> Iterator[None]:
    """A user's edited template fails with its file and line, not a traceback."""
    try:
        yield
    except TemplateError as e:
        line = getattr(e, "lineno", None)
        where = (getattr(e, "filename", None) or "template") + (f", line {line}" if line else "")
        raise SiteError(f"{where}: {e.message}") from None


def publish(staging: Path, out: Path) -> None:
    """Move every staged file into `out`, then delete files that only the previous build wrote."""
    new = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    marker = out / MARKER
    old = json.loads(marker.read_text())["files"] if marker.is_file() else []
    out.mkdir(parents=True, exist_ok=True)
    for rel in new:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, out / rel)
    for rel in sorted(set(old) - set(new)):
        stale = out / rel
        stale.unlink(missing_ok=True)
        for parent in stale.parents:  # drop folders this removal emptied, never `out` itself
            if parent == out or any(parent.iterdir()):
                break
            parent.rmdir()
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generator": f"reportgen {__version__}", "files": new}, indent=1))
    os.replace(tmp, marker)


def build_context(cfg: Config, dataset: Dataset, models: list[ModelRecord]) -> dict[str, Any]:
    """Every number the templates print, measured from the artifacts."""
    split_rows = split_counts(dataset)
    model_rows = [_model_context(m) for m in models]
    best = max(model_rows, key=lambda r: r["totals"]["pct_correct"])
    augment = cfg.data.augment
    return {
        "site": cfg.site,
        "date": cfg.site.date or datetime.date.today().isoformat(),
        "data": {
            "source": cfg.data.source,
            "image_size": dataset.images.shape[1],
            "channels": dataset.images.shape[3],
            "min_width": cfg.data.min_width,
            "classes": list(dataset.class_names),
            "split_rows": split_rows,
            "split_totals": {s: sum(r[s] for r in split_rows) for s in SPLITS},
            "augmented_total": augmented_train_count(dataset, augment),
            "augment": augment,
            "augmented_classes": list(augment.classes) or list(dataset.class_names),
            "skipped": dataset.skipped,
        },
        "evaluate": cfg.evaluate,
        "models": model_rows,
        "best": best,
        "footer": {"versions": versions(), "config_hash": stable_hash(section(cfg)),
                   "built": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                   "seeds": {"data": cfg.data.seed, **{m.name: c.seed for m, c in zip(models, cfg.models,
                                                                                       strict=True)}}},
    }


def _model_context(m: ModelRecord) -> dict[str, Any]:
    """A model's description and confusion table, as the templates read them."""
    summary = read_summary(m.description)
    confusion = ConfusionTable(**json.loads(m.evaluation.file("confusion.json").read_text()))
    rows = [{"name": name, "counts": confusion.counts[i], "uncertain": confusion.uncertain[i],
             "total": confusion.row_totals[i], "percents": confusion.row_percents(i)}
            for i, name in enumerate(confusion.class_names)]
    metrics = summary["metrics"]
    val_acc = [a for a in metrics.get("val_acc", []) if a == a]  # NaN when there was no validation split
    best_val = max(val_acc, default=None)
    return {
        **summary,
        "name": m.name,
        "key": m.key,
        "architecture_file": f"architecture-{m.key}.svg",
        "has_curves": bool(metrics),
        "val_acc": metrics.get("val_acc", []),
        "loaded": m.loaded,
        "checkpoint": m.model.manifest["file"] if m.loaded else "",
        "best_val": best_val,
        # first epoch within one accuracy point of the best: how fast a model converges
        "epochs_to_best": next((i + 1 for i, a in enumerate(val_acc) if a >= best_val - 0.01), None)
        if best_val is not None else None,
        "confusion": confusion,
        "rows": rows,
        "totals": confusion.totals(),
    }
