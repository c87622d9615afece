"""Render the static site: Jinja2 templates + a Markdown narrative -> HTML, published atomically.

The site only reads finished artifacts. It is rendered into a staging folder first and moved into
the output folder file by file only once everything rendered, so a failed build leaves the previous
site intact; files the build did not write (a CNAME, say) are never touched.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import glob
import hashlib
import html
import json
import logging
import os
import re
import shutil
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown
import numpy as np
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from . import __version__, stats
from .cache import SITE_MARKER, Artifact, pid_alive, source_date, stable_hash, versions
from .config import Config, section
from .data import SPLITS, Dataset, augmented_train_count, split_counts
from .describe import read_summary
from .diagram import format_count
from .errors import SiteError
from .evaluate import ConfusionTable

log = logging.getLogger("reportgen")
MARKER = SITE_MARKER
SITE_NAME = "reportgen notebook"  # the masthead and the home page's title; a post has its own title
# a wheel installs the templates inside the package; a source checkout keeps them at the top level
_HERE = Path(__file__).resolve().parent
TEMPLATES = next((p for p in (_HERE / "templates", _HERE.parent / "templates") if (p / "base.html").is_file()),
                 _HERE.parent / "templates")



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


class Text(str):
    """A string from outside the templates (the config, folder names, checkpoints): always printed as
    literal text. Jinja escapes it through `__html__` wherever it lands (printed, concatenated with
    `~` into a caption, joined), and the usual string methods keep the mark."""

    def __html__(self) -> Markup:
        return Markup(escape_text(self))

    def __add__(self, other: str) -> Text:
        return Text(str.__add__(self, other))

    def __radd__(self, other: str) -> Text:
        return Text(str.__add__(other, self))

    def __getitem__(self, key: Any) -> Text:
        return Text(str.__getitem__(self, key))

    def __mod__(self, args: Any) -> Text:
        return Text(str.__mod__(self, args))


for _name in ("capitalize", "casefold", "center", "format", "ljust", "lower", "lstrip", "replace", "rjust", "rstrip",
              "strip", "swapcase", "title", "upper", "zfill"):
    setattr(Text, _name, (lambda method: lambda self, *a, **k: Text(method(self, *a, **k)))(getattr(str, _name)))

# Characters Markdown acts on anywhere in a line, and at the start of one (headings, lists, quotes,
# rules, definitions, tables); numeric entities display the same in Markdown text, raw HTML blocks
# and attributes alike, so one escaping fits every place a value is printed.
_MARKDOWN_INLINE = str.maketrans({c: f"&#{ord(c)};" for c in "\\`*_[]{}|~"})
_MARKDOWN_START = re.compile(r"^(\s*)([#+\-=:])|^(\s*\d+)([.)])(?=\s|$)")


def escape_text(value: object) -> str:
    """`value` as HTML that shows it literally, inert to both HTML and Markdown."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(value))  # a newline could end the paragraph it sits in
    text = html.escape(text, quote=True).translate(_MARKDOWN_INLINE)
    return _MARKDOWN_START.sub(lambda m: (m.group(1) or m.group(3) or "") + f"&#{ord(m.group(2) or m.group(4))};", text)


def _as_text(value: Any) -> Any:
    """The template context with every string in it marked as text, however deep: in tables, lists
    and the fields of records (config sections, atlas panels), which keep their type and methods."""
    if isinstance(value, str):
        return value if isinstance(value, Markup) else Text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        marked = copy.copy(value)
        for f in dataclasses.fields(value):
            object.__setattr__(marked, f.name, _as_text(getattr(value, f.name)))  # frozen ones too
        return marked
    if isinstance(value, dict):
        return {_as_text(k): _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    if type(value) is tuple:
        return tuple(_as_text(v) for v in value)
    return value


def _finalize(value: Any) -> Any:
    """Every value a template prints: text, unless it is markup a template or reportgen made."""
    return value if hasattr(value, "__html__") else Markup(escape_text("" if value is None else value))


def _inline_markdown(text: str) -> Markup:
    """Markdown written in a template (a caption, a reference) as inline HTML; a Text stays text."""
    if isinstance(text, Text):
        return text.__html__()
    html_ = markdown.markdown(str(text))
    return Markup(re.sub(r"^<p>(.*)</p>$", r"\1", html_, flags=re.S))


# Links that would run code when followed; no template or value should ever produce one
_ACTIVE_LINK = re.compile(r"""\b(?:href|src|action|formaction|xlink:href)\s*=\s*["']?\s*(?:javascript|vbscript):""",
                          re.I)


def _check_inert(html_: str, page: str) -> str:
    """Refuse a page with a javascript: link: escaping should make one impossible, so it is a bug."""
    if m := _ACTIVE_LINK.search(html_):
        raise SiteError(f"{page}: the rendered page links to script ({m.group(0)!r}); refusing to publish it")
    return html_


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


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number(n: float) -> str:
    """A count as prose writes it: words up to ten, digits with thousands separators above;
    a ratio that is not whole keeps up to two significant decimals (2.5, not 2.50)."""
    if float(n).is_integer():
        whole = int(n)
        return _WORDS[whole] if 0 <= whole < len(_WORDS) else f"{whole:,}"
    return f"{n:.3g}"


def plural(n: int, singular: str, plural_form: str | None = None, words: bool = True) -> str:
    """"one image", "two images", "1,000 images": a count and its noun, agreeing in number."""
    noun = singular if n == 1 else (plural_form or singular + "s")
    return f"{number(n) if words else f'{n:,}'} {noun}"


def times(n: int) -> str:
    """"once", "twice", "three times", "12 times"."""
    return {1: "once", 2: "twice"}.get(n, f"{number(n)} times")


def join_and(items: Any, conjunction: str = "and") -> str:
    """"a", "a and b", "a, b and c"."""
    items = [str(item) for item in items]
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def layer_range(names: list[str]) -> str:
    """Consecutive layers by name: "conv1", "conv1 and conv2", "conv3a to conv4b"."""
    return join_and(names) if len(names) <= 2 else f"{names[0]} to {names[-1]}"


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
    # Sandboxed: a template from a cloned repository cannot reach Python internals. Every printed value
    # goes through _finalize, so escaping does not depend on each template remembering it.
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, autoescape=True, finalize=_finalize)
    env.globals["site_name"] = SITE_NAME  # every page extends base.html, whatever its own context
    env.filters["pct"] = lambda v, digits=2: f"{v:.{digits}f}"
    env.filters["percent"] = stats.format_percent
    env.filters["percent_ci"] = stats.format_proportion_ci
    env.filters["number"] = number
    env.filters["plural"] = plural
    env.filters["times"] = times
    env.filters["join_and"] = join_and
    env.filters["layer_range"] = layer_range
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
    # what the drawings say about themselves (the curve colours the caption names)
    context["drawn"] = {k: v for art in drawings for k, v in art.manifest.get("drawn", {}).items()}
    context.update({s.name: s.context for s in sections})
    context = _as_text(context)  # every string in it prints as text, whichever stage measured it
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
                html = _check_inert(env.get_template(page.template).render(root=page.root, **context,
                                                                           **_as_text(page.context)), page.path)
                (staging / page.path).parent.mkdir(parents=True, exist_ok=True)
                (staging / page.path).write_text(html, encoding="utf-8")
        (staging / ".nojekyll").write_text("")  # GitHub Pages: serve folders as they are
        publish(staging, out)
    except OSError as e:  # name the destination: the staging folder is gone by the time anyone looks
        raise SiteError(f"{out}: cannot write the site ({e.strerror or e}); the previous site is unchanged") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _post_body(env: Environment, context: dict[str, Any]) -> Markup:
    """The narrative: Jinja renders the Markdown, Markdown the HTML, then figure numbers resolve."""
    numbering = Numbering()
    env.globals.update(figure=_numbered("Figure", numbering, env), table=_numbered("Table", numbering, env),
                       ref=numbering.ref, cite=numbering.cite, references=lambda: list(numbering.cited))
    narrative = env.get_template("post.md.j2").render(**context)
    body = markdown.markdown(narrative, extensions=["extra", "toc", "smarty"],
                             extension_configs={"toc": {"permalink": False}})
    return Markup(numbering.resolve(_code_spans(body)))


def _code_spans(body: str) -> str:
    """Markdown escapes `&` again inside `code spans`; undo that for the entities escaping produced."""
    return re.sub(r"<code>(.*?)</code>", lambda m: "<code>" + re.sub(
        r"&amp;(#\d+|lt|gt|amp|quot|#x27);", r"&\1;", m.group(1)) + "</code>", body, flags=re.S)


@contextmanager
def _template_errors() -> Iterator[None]:
    """A user's edited template fails with its file and line, not a traceback: syntax and undefined
    names (TemplateError) as much as Python errors its expressions raise (1 / 0, None + 1 ...)."""
    try:
        yield
    except SiteError:
        raise
    except Exception as e:  # any error a template expression raises is the template's to report
        message = e.message if isinstance(e, TemplateError) else f"{e.__class__.__name__}: {e}"
        raise SiteError(f"{_template_line(e)}: {message}") from None


def _template_line(e: Exception) -> str:
    """'file, line n' of the template an error came from."""
    if getattr(e, "lineno", None) and getattr(e, "filename", None):  # syntax errors know where they are
        return f"{e.filename}, line {e.lineno}"
    # Jinja rewrites tracebacks so that template code shows as frames of the template file
    frame = next((f for f in reversed(traceback.extract_tb(e.__traceback__))
                  if f.filename.endswith((".j2", ".html"))), None)
    return f"{frame.filename}, line {frame.lineno}" if frame else getattr(e, "filename", None) or "template"


def publish(staging: Path, out: Path) -> None:
    """Make the staged site the site at `out`, all at once.

    The staged tree receives the marker and every file of `out` that this build cannot prove a build
    wrote (a CNAME, say: hard-linked, or copied), then replaces `out` by two renames, undone if the
    second fails; a reader sees the old site or the new one, never a mix. From the old tree only files
    whose content still matches the hash the marker recorded, and the ones carried over, are deleted.
    """
    check_output_dir(out)  # also here, so no caller can publish over a foreign or unknown folder
    owned = read_marker(out) if (out / MARKER).is_file() else {}
    new = {p.relative_to(staging).as_posix(): _sha256(p) for p in sorted(staging.rglob("*"))
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
    kept = _remove_old_site(old, owned, carried)
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _proven(path: Path, rel: str, owned: dict[str, str]) -> bool:
    """True when `path` is a regular file (not a link) whose content is what a build recorded writing."""
    return not path.is_symlink() and path.is_file() and rel in owned and _sha256(path) == owned[rel]


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


def _remove_old_site(old: Path, owned: dict[str, str], carried: set[str]) -> list[str]:
    """Delete what a build wrote (and what was carried into the new site) from the old tree; return
    the files kept, whose folder then stays in place."""
    kept: list[str] = []
    for rel, path, real_dir in reversed(list(_walk(old))):
        if real_dir:
            with suppress(OSError):  # not empty: something in it was kept
                path.rmdir()
        elif rel in carried or rel == MARKER or _proven(path, rel, owned):
            path.unlink()
        else:
            kept.append(rel)
    with suppress(OSError):
        old.rmdir()
    return kept


def _recover(out: Path) -> None:
    """Clear what builds killed while publishing left beside `out`: a staged tree is dropped, and a
    previous site moved aside is renamed back when no site took its place."""
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
        elif kind == "staging":
            shutil.rmtree(leftover, ignore_errors=True)  # only what a build wrote, and links to user files


def build_context(cfg: Config, dataset: Dataset, models: list[ModelRecord]) -> dict[str, Any]:
    """Every number the templates print, measured from the artifacts."""
    split_rows = split_counts(dataset)
    model_rows = [_model_context(m) for m in models]
    best = max(model_rows, key=lambda r: r["totals"]["correct"])
    augment = cfg.data.augment
    return {
        "site": cfg.site,
        "date": post_date(cfg, models),
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
        "comparisons": _comparisons(best, model_rows, models),
        # no build time: the same inputs must give the same bytes (reproducible builds)
        "footer": {"versions": versions(), "config_hash": stable_hash(section(cfg)),
                   "trained": sorted({_environment(r["environment"]) for r in model_rows if r["environment"]}),
                   "seeds": {"data": cfg.data.seed, **{m.name: c.seed for m, c in zip(models, cfg.models,
                                                                                       strict=True)}}},
    }


def post_date(cfg: Config, models: list[ModelRecord]) -> str:
    """The post's date: `site.date`; else SOURCE_DATE_EPOCH's date; else the day the newest results
    were produced (a train artifact's recorded date, a loaded checkpoint's file date). Never the
    clock at render time, so re-rendering unchanged results changes no byte."""
    if cfg.site.date:
        return cfg.site.date
    if (fixed := source_date()) is not None:
        return fixed.isoformat()
    dates = []
    for m in models:
        if m.loaded:
            stamp = m.model.file(m.model.manifest["file"]).stat().st_mtime
            dates.append(datetime.datetime.fromtimestamp(stamp, datetime.UTC).date().isoformat())
        elif m.model.manifest.get("created"):
            dates.append(m.model.manifest["created"])
    return max(dates, default=datetime.date.today().isoformat())


def _environment(env: dict[str, Any]) -> str:
    """"cpu, 2 threads, AVX2 kernels, deterministic algorithms": what a model's exact weights depend on."""
    parts = [env.get("gpu") or env.get("device", "")]
    if env.get("device") == "cpu":
        parts.append(plural(env["threads"], "thread", words=False))
        if env.get("cpu_capability"):
            parts.append(f"{env['cpu_capability']} kernels")
    if env.get("deterministic"):
        parts.append("deterministic algorithms")
    return ", ".join(p for p in parts if p)


def _comparisons(best: dict[str, Any], rows: list[dict[str, Any]], models: list[ModelRecord]) -> list[dict[str, Any]]:
    """The best model against each other one on the same test images: exact McNemar test and the
    paired interval of the accuracy difference, from the per-image correctness each evaluation saved."""
    correct = {r["name"]: np.load(m.evaluation.file("predictions.npz"))["correct"]
               for r, m in zip(rows, models, strict=True)}
    out = []
    for other in rows:
        if other is best:
            continue
        result = stats.mcnemar(correct[best["name"]], correct[other["name"]])
        out.append({"better": best, "other": other, "result": result,
                    "phrase": stats.compare_phrase(result, with_ci=True)})
    return out


def _model_context(m: ModelRecord) -> dict[str, Any]:
    """A model's description and confusion table, as the templates read them."""
    summary = read_summary(m.description)
    confusion = ConfusionTable(**json.loads(m.evaluation.file("confusion.json").read_text()))
    rows = [{"name": name, "counts": confusion.counts[i], "uncertain": confusion.uncertain[i],
             "total": confusion.row_totals[i], "correct": confusion.counts[i][i],
             "incorrect": confusion.row_totals[i] - confusion.counts[i][i] - confusion.uncertain[i]}
            for i, name in enumerate(confusion.class_names)]
    metrics = summary["metrics"]
    val_acc = [a for a in metrics.get("val_acc", []) if a == a]  # NaN when there was no validation split
    best_val = max(val_acc, default=None)
    return {
        "architecture": _architecture(summary.get("structure", [])),
        "column_totals": [sum(col) for col in zip(*confusion.counts, strict=True)],
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
        "environment": summary.get("environment") or {},
    }


def _architecture(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """The architecture facts the prose states, grouped the way a person would say them: runs of
    consecutive layers followed by the same operations, the pooled layers, biases, the output layer."""
    if not layers:
        return {}
    hidden, output = layers[:-1], layers[-1]
    runs: list[dict[str, Any]] = []
    for layer in hidden:
        after = _operations(layer)
        if runs and runs[-1]["after"] == after:
            runs[-1]["names"].append(layer["name"])
        else:
            runs.append({"names": [layer["name"]], "after": after})
    pools: dict[str, list[str]] = {}
    for layer in layers:
        if layer["pool"]:
            pools.setdefault(layer["pool"], []).append(layer["name"])
    without = [layer["name"] for layer in hidden if not layer["bias"]]
    return {
        "conv": sum(layer["kind"] == "conv" for layer in layers),
        "fc": sum(layer["kind"] == "fc" for layer in layers),
        "kernels": sorted({layer["kernel"].replace("x", "×") for layer in layers if "kernel" in layer}),
        "runs": runs,
        "pools": [{"window": window.split(" ")[0].replace("x", "×"), "kind": " ".join(window.split(" ")[1:]),
                   "names": names} for window, names in pools.items()],
        "hidden_bias": "all" if not without else "none" if len(without) == len(hidden) else "some",
        "without_bias": without,
        # a layer without bias followed by batch norm loses nothing: batch norm's shift takes its place
        "bn_shift": bool(without) and all("bn" in layer["after"] for layer in hidden if not layer["bias"]),
        "output": {**output, "after": _operations(output)},
        "detailed": len(layers) <= 12,  # per-layer prose for small networks; a ResNet gets counts only
    }


def _operations(layer: dict[str, Any]) -> list[str]:
    """What follows a layer, in order, as prose names it (pooling is stated on its own)."""
    words = {"bn": "batch normalization", "relu": "a ReLU"}
    return [f"dropout with p\u00a0=\u00a0{layer['dropout']:g}" if kind == "dropout" else words[kind]
            for kind in layer["after"]]
