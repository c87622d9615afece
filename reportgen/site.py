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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown
import numpy as np
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape
from markupsafe import Markup, escape

from . import __version__, stats
from .cache import Artifact, source_date, stable_hash, versions
from .config import Config, section
from .data import SPLITS, Dataset, augmented_train_count, split_counts
from .describe import read_summary
from .diagram import format_count
from .evaluate import ConfusionTable

MARKER = ".reportgen-site.json"
SITE_NAME = "reportgen notebook"  # the masthead and the home page's title; a post has its own title
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
    env = Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, autoescape=select_autoescape(["html", "j2"], default=True))
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


def render(cfg: Config, out: Path, dataset: Dataset, models: list[ModelRecord], drawings: list[Artifact]) -> None:
    """Render every page into a staging folder, then publish it into `out`."""
    check_output_dir(out)
    env = make_env(cfg)
    context = build_context(cfg, dataset, models)
    # what the drawings say about themselves (the curve colours the caption names)
    context["drawn"] = {k: v for art in drawings for k, v in art.manifest.get("drawn", {}).items()}
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    post = f"posts/{cfg.site.slug}"
    try:
        (staging / post / "figures").mkdir(parents=True)
        for art in drawings:
            for name in art.manifest["files"]:
                if name.endswith((".png", ".svg", ".mp4")):
                    shutil.copy2(art.file(name), staging / post / "figures" / name)
        for static in (TEMPLATES / "static", _user_templates(cfg) / "static"):
            if static.is_dir():  # the user's static files override the built-in ones
                shutil.copytree(static, staging / "static", dirs_exist_ok=True)
        with _template_errors():
            pages = [Page(f"{post}/index.html", "post.html", {"body": _post_body(env, context)}),
                     Page("index.html", "index.html")]
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
    best = max(model_rows, key=lambda r: r["totals"]["correct"])
    augment = cfg.data.augment
    return {
        "site": cfg.site,
        "site_name": SITE_NAME,
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
        "train_seconds": m.model.manifest.get("train_seconds"),
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
