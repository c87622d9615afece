"""The site's data model: pages, sections, atlas panels and pictures, as the sections fill them in.

Nothing here renders; report/site.py turns these records into HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from reportgen.cache import Artifact


@dataclass(frozen=True)
class ModelRecord:
    """What the site reads about one model: its display name and the artifacts of its stages."""

    name: str
    key: str                 # file-name-safe id derived from the display name
    model: Artifact          # the train or load stage's checkpoint, or the user's checkpoint file
    origin: str              # the file a model trained elsewhere came from; '' when this build trained it
    evaluation: Artifact
    description: Artifact
    data: Artifact           # the data stage of the images as this model's input takes them

    @property
    def loaded(self) -> bool:
        """True when the network was trained elsewhere: loaded, not trained by this build."""
        return bool(self.origin)


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
    """What a section of the post adds to the site besides its Markdown template."""

    name: str                                           # the context key its templates read
    context: dict[str, Any]                             # numbers and file names, measured by its stages
    pages: list[Page] = field(default_factory=list)     # extra pages; paths relative to the post's folder
    media: list[Artifact] = field(default_factory=list)  # drawing artifacts copied into the post's figures/
    atlas: list[AtlasPanel] = field(default_factory=list)  # per-unit panels, gathered into the atlas pages
    # facts every template of the post reads at the top level (section 1's data and models)
    shared: dict[str, Any] = field(default_factory=dict)


def atlas_path(model_key: str, layer: str) -> str:
    """Where a model's layer page of the unit atlas lives, relative to the post folder."""
    return f"atlas/{model_key}/{file_slug(layer)}.html"


def file_slug(name: str) -> str:
    """A file name for a layer name or module path ("features.0" -> "features-0"): never a path."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "layer"

