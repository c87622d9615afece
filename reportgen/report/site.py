"""Render the static site: Jinja2 templates + a Markdown narrative -> HTML, published atomically.

The site only reads finished artifacts. It is rendered into a staging folder first and moved into
the output folder file by file only once everything rendered, so a failed build leaves the previous
site intact; files the build did not write (a CNAME, say) are never touched.
"""

from __future__ import annotations

import datetime
import html
import logging
import os
import re
import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import markdown
from jinja2 import BytecodeCache, ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.bccache import Bucket
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from PIL import Image

from reportgen import stats
from reportgen.cache import source_date, stable_hash, versions
from reportgen.config import Config, section
from reportgen.errors import SiteError
from reportgen.report.pages import ATLAS_PAGE_UNITS, AtlasPanel, ModelRecord, Page, Section, atlas_path
from reportgen.report.prose import (
    Text,
    as_text,
    compact_count,
    escape_text,
    join_and,
    layer_range,
    number,
    plural,
    times,
)
from reportgen.report.publish import check_output_dir, publish
from reportgen.report.templates import TEMPLATES, user_templates

log = logging.getLogger("reportgen")
SITE_NAME = "reportgen notebook"  # the masthead and the home page's title; a post has its own title


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
        self.places: list[str] = []  # 'file, line n' of the template that wrote each reference
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
        self.places.append(_template_place())  # resolved after rendering: remember where it was written
        return Markup(f"RGREF{len(self.refs) - 1:04d}X")

    def resolve(self, html: str) -> str:
        html = re.sub(r"<p>RGBLOCK(\d{4})X</p>", lambda m: self.stash[int(m.group(1))], html)

        def link(m: re.Match[str]) -> str:
            ident = self.refs[int(m.group(1))]
            if ident not in self.numbers:
                raise SiteError(f"{self.places[int(m.group(1))]}: reference to unknown figure or table {ident!r}; "
                                f"known: {', '.join(self.numbers) or 'none'}")
            kind, number = self.numbers[ident]
            return f'<a class="xref" href="#{kind.lower()}-{ident}">{kind} {number}</a>'

        return re.sub(r"RGREF(\d{4})X", link, html)


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


TITLE_CHARS = 70  # search results and browser tabs cut a page title after about this many characters


def short_title(title: str) -> str:
    """A page's <title> (HTML, as the page writes it) of at most TITLE_CHARS characters, counted as
    written (`&lt;` is four), so at most that many as the reader sees them too: one that runs longer
    (the page's own part, then the site title) ends at a word boundary with an ellipsis."""
    if len(title) <= TITLE_CHARS:
        return title
    text = " ".join(html.unescape(title).split())
    if len(escape(text)) <= TITLE_CHARS:  # long only for its spaces or its entities' spelling
        return str(escape(text))
    words = text.split(" ")
    cut = text
    while len(escape(cut + "…")) > TITLE_CHARS:
        if len(words) > 1:
            words.pop()
            cut = " ".join(words).rstrip(" ·,;:-–—|")
        else:  # a single word longer than a title: cut it
            cut = cut[:-1]
    return str(escape(cut + "…"))


_TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def short_titles(html_: str) -> str:
    """A page with its <title> cut to TITLE_CHARS, whichever template wrote it (short_title)."""
    return _TITLE.sub(lambda m: f"<title>{short_title(m.group(1))}</title>", html_, count=1)


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


class _CompiledTemplates(BytecodeCache):
    """Compiled templates kept for the life of the process, by template file and source checksum (Jinja
    compares the checksum, so an edited template compiles again): the next build in the same process
    (`reportgen serve`, the tests) skips the quarter of a second that compiling the post's templates takes."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if (code := self._code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def make_env(cfg: Config) -> Environment:
    """Jinja environment: the user's template folder (if any) overrides the built-in templates."""
    loaders = [FileSystemLoader(str(TEMPLATES))]
    if cfg.site.templates:
        user = user_templates(cfg)
        if not user.is_dir():
            raise SiteError(f"site.templates: folder not found: {user}")
        loaders.insert(0, FileSystemLoader(str(user)))
    # Sandboxed: a template from a cloned repository cannot reach Python internals. Every printed value
    # goes through _finalize, so escaping does not depend on each template remembering it.
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, autoescape=True, finalize=_finalize,
                               bytecode_cache=_COMPILED)
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
    env.filters["params"] = compact_count
    env.filters["sci"] = lambda v: f"{v:g}"
    env.filters["markdown_inline"] = _inline_markdown
    return env


def atlas_pages(sections: Sequence[Section], models: Sequence[ModelRecord]) -> list[Page]:
    """Per model and layer, a table with a row per unit whose cells every section contributed, split
    into pages of ATLAS_PAGE_UNITS unit indices; each row under a stable anchor (#unit-<index>)."""
    names = {m.key: m.name for m in models}
    grouped: dict[tuple[str, str], dict[int, list[AtlasPanel]]] = {}
    order: dict[tuple[str, str], dict[str, None]] = {}  # columns in the order the sections give them
    for panel in (p for s in sections for p in s.atlas):
        grouped.setdefault((panel.model, panel.layer), {}).setdefault(panel.unit, []).append(panel)
        order.setdefault((panel.model, panel.layer), {}).update(dict.fromkeys(c.column for c in panel.cells))
    notes: dict[tuple[str, str], list[str]] = {}
    for note in (n for s in sections for n in s.atlas_notes):
        notes.setdefault((note.model, note.layer), []).append(note.text)
    layers_of: dict[str, list[str]] = {}
    for model, layer in grouped:
        layers_of.setdefault(model, []).append(layer)
    pages = []
    for (model, layer), units in grouped.items():
        cells = [c for unit in sorted(units) for panel in units[unit] for c in panel.cells]
        columns = list(order[model, layer])
        sortable = {c.column for c in cells if c.value is not None}
        pictured = {c.column for c in cells if c.pictures}
        prose = {c.column for c in cells if c.prose}
        header = [{"name": name, "sort": name in sortable, "pictures": name in pictured, "prose": name in prose}
                  for name in columns]
        page_of = {unit: unit // ATLAS_PAGE_UNITS for unit in units}
        indices = sorted({0, *page_of.values()})
        nav = [{"name": name, "href": "../../" + atlas_path(model, name), "current": name == layer}
               for name in layers_of[model]]
        for index in indices:
            rows = []
            for unit in sorted(u for u in units if page_of[u] == index):
                by_column = {c.column: c for panel in units[unit] for c in panel.cells}
                flags = [flag for panel in units[unit] for flag in panel.flags]
                rows.append({"unit": unit, "anchor": f"unit-{unit}", "flags": flags,
                             "cells": [by_column.get(name) for name in columns]})
            first = index * ATLAS_PAGE_UNITS
            ranges = [{"label": f"{n * ATLAS_PAGE_UNITS}\u2013{n * ATLAS_PAGE_UNITS + ATLAS_PAGE_UNITS - 1}",
                       "href": "../../" + atlas_path(model, layer, n), "current": n == index}
                      for n in indices] if len(indices) > 1 else []
            pages.append(Page(atlas_path(model, layer, index), "atlas.html", {"atlas": {
                "model": names.get(model, model), "layer": layer, "nav": nav, "ranges": ranges,
                "first": first, "last": first + ATLAS_PAGE_UNITS - 1, "units": len(units),
                "columns": header, "rows": rows, "notes": notes.get((model, layer), []),
                "flagged": sum(bool(r["flags"]) for r in rows)}}))
    return pages


MEDIA = (".png", ".svg", ".mp4", ".jpg", ".webp")


def render(cfg: Config, out: Path, models: list[ModelRecord], sections: Sequence[Section]) -> None:
    """Render every page into a staging folder, then publish it into `out`."""
    check_output_dir(out)
    env = make_env(cfg)
    context: dict[str, Any] = {"site": cfg.site, "date": post_date(cfg, models)}
    for s in sections:
        context.update(s.shared)
        context[s.name] = s.context
    context["footer"] = footer(cfg, models, context.get("models", []))
    context = as_text(context)  # every string in it prints as text, whichever stage measured it
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    post = f"posts/{cfg.site.slug}"
    try:
        (staging / post / "figures").mkdir(parents=True)
        for art in (a for s in sections for a in s.media):
            for name in art.manifest["files"]:
                if name.endswith(MEDIA):
                    target = staging / post / "figures" / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(art.file(name), target)
        for static in (TEMPLATES / "static", user_templates(cfg) / "static"):
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
                                                                           **as_text(page.context)), page.path)
                html = sized_images(short_titles(html), (staging / page.path).parent)
                (staging / page.path).parent.mkdir(parents=True, exist_ok=True)
                (staging / page.path).write_text(html, encoding="utf-8")
        (staging / ".nojekyll").write_text("")  # GitHub Pages: serve folders as they are
        publish(staging, out)
    except OSError as e:  # name the destination: the staging folder is gone by the time anyone looks
        raise SiteError(f"{out}: cannot write the site ({e.strerror or e}); the previous site is unchanged") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_IMG = re.compile(r"<img\b[^>]*>")
_SRC = re.compile(r'\ssrc="([^"]+)"')


def sized_images(html_: str, folder: Path) -> str:
    """Every <img> of a page with its width and height (read from the file the build copied, so the
    layout does not shift as images arrive) and, after the page's first image, loading="lazy" and
    decoding="async", so images below the fold wait for the reader."""
    seen = 0

    def fix(m: re.Match[str]) -> str:
        nonlocal seen
        tag, seen = m.group(0), seen + 1
        extra = []
        src = _SRC.search(tag)
        if " width=" not in tag and src and (size := _image_size(folder / html.unescape(src.group(1)))):
            extra.append(f'width="{size[0]}" height="{size[1]}"')
        if seen > 1 and " loading=" not in tag:
            extra.append('loading="lazy" decoding="async"')
        return tag[:-1].rstrip("/").rstrip() + "".join(" " + e for e in extra) + ">" if extra else tag

    return _IMG.sub(fix, html_)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a PNG/JPEG (its header) or an SVG (its root's width and height); None when
    the file is not one the build wrote (an outside URL, a missing file)."""
    try:
        if path.suffix == ".svg":
            head = path.read_text(encoding="utf-8")[:2000]
            found = re.search(r'<svg\b[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"', head)
            return (round(float(found[1])), round(float(found[2]))) if found else None
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None


def _post_body(env: Environment, context: dict[str, Any]) -> Markup:
    """The narrative: Jinja renders the Markdown, Markdown the HTML, then figure numbers resolve."""
    numbering = Numbering()
    env.globals.update(figure=_numbered("Figure", numbering, env), table=_numbered("Table", numbering, env),
                       ref=numbering.ref, cite=numbering.cite, references=lambda: list(numbering.cited))
    narrative = env.get_template("post.md.j2").render(**context)
    body = markdown.markdown(narrative, extensions=["extra", "toc", "smarty"],
                             extension_configs={"toc": {"permalink": False}})
    return Markup(permalinks(numbering.resolve(_code_spans(body))))


def permalinks(body: str) -> str:
    """A link to itself after every section heading that has an id ("#", named for screen readers), so
    a reader can copy the address of a section; figures and tables link from their labels."""
    def add(m: re.Match[str]) -> str:
        level, ident, inner = m.groups()
        name = html.unescape(re.sub(r"<[^>]+>", "", inner)).strip()
        return (f'<h{level} id="{ident}">{inner} <a class="permalink" href="#{ident}" '
                f'aria-label="Link to the section {html.escape(name)}">#</a></h{level}>')
    return re.sub(r'<h([2-4]) id="([^"]+)">(.*?)</h\1>', add, body, flags=re.S)


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


def _template_place() -> str:
    """'file, line n' of the template whose code is running now (Jinja marks its compiled frames with
    their template, which maps Python lines back to template lines); 'post template' outside one."""
    frame = sys._getframe(1)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            return f"{template.filename}, line {template.get_corresponding_lineno(frame.f_lineno)}"
        frame = frame.f_back
    return "post template"


def _template_line(e: Exception) -> str:
    """'file, line n' of the template an error came from."""
    if getattr(e, "lineno", None) and getattr(e, "filename", None):  # syntax errors know where they are
        return f"{e.filename}, line {e.lineno}"
    # Jinja rewrites tracebacks so that template code shows as frames of the template file
    frame = next((f for f in reversed(traceback.extract_tb(e.__traceback__))
                  if f.filename.endswith((".j2", ".html"))), None)
    return f"{frame.filename}, line {frame.lineno}" if frame else getattr(e, "filename", None) or "template"


def footer(cfg: Config, models: list[ModelRecord], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Versions, config hash, seeds and where the models were trained; no build time: the same inputs
    must give the same bytes (reproducible builds)."""
    return {"versions": versions(), "config_hash": stable_hash(section(cfg)),
            "trained": sorted({_environment(r["environment"]) for r in rows if r.get("environment")}),
            "seeds": {"data": cfg.data.seed, **{m.name: c.seed for m, c in zip(models, cfg.models, strict=True)}}}


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
        if m.model.manifest.get("created"):  # the day a train stage ran, or a loaded weights file's date
            dates.append(m.model.manifest["created"])
        elif m.loaded:  # a reportgen checkpoint named in the config: its file's date
            stamp = m.model.file(m.model.manifest["file"]).stat().st_mtime
            dates.append(datetime.datetime.fromtimestamp(stamp, datetime.UTC).date().isoformat())
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

