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
    """An image in an atlas row: a whole file, or one tile of a sprite sheet, so that thousands of
    units cost a few image files rather than thousands."""

    src: str                                   # relative to the post folder, e.g. "figures/preferred/x.png"
    alt: str
    width: int                                 # displayed size, CSS pixels
    height: int
    tile: tuple[int, int, int, int] | None = None   # x, y, w, h of the tile in the sheet, in sheet pixels
    sheet: tuple[int, int] | None = None            # the sheet's width and height, in pixels

    @property
    def view_box(self) -> str:
        """The SVG viewBox that shows just this tile of the sheet: the browser scales it to the
        displayed size exactly, with no rounded background offsets and no inline style."""
        x, y, w, h = self.tile or (0, 0, self.width, self.height)
        return f"{x} {y} {w} {h}"


@dataclass(frozen=True)
class AtlasCell:
    """One column of a unit's row in the atlas: pictures, or a short measured text with the number the
    column sorts by."""

    column: str                                # the column's heading, the same for every unit of a layer
    text: str = ""
    pictures: tuple[Picture, ...] = ()
    value: float | None = None                 # what the column sorts by; None: not measured for this unit
    prose: bool = False                        # words rather than a number: left-aligned, wrapped


@dataclass(frozen=True)
class AtlasPanel:
    """One section's cells of one unit's row in the atlas (preferred inputs, top patches ...)."""

    model: str                                 # the model's key (ModelRecord.key)
    layer: str                                 # the layer's name, e.g. "conv3"
    unit: int
    cells: tuple[AtlasCell, ...] = ()
    flags: tuple[str, ...] = ()                # e.g. "dead": shown, so a grey square is not taken for a result


@dataclass(frozen=True)
class AtlasNote:
    """What one section's columns mean for a whole layer (said once above its table, not per unit):
    what the pictures show, what a flag means."""

    model: str
    layer: str
    text: str


@dataclass(frozen=True)
class Section:
    """What a section of the post adds to the site besides its Markdown template."""

    name: str                                           # the context key its templates read
    context: dict[str, Any]                             # numbers and file names, measured by its stages
    pages: list[Page] = field(default_factory=list)     # extra pages; paths relative to the post's folder
    media: list[Artifact] = field(default_factory=list)  # drawing artifacts copied into the post's figures/
    atlas: list[AtlasPanel] = field(default_factory=list)  # per-unit cells, gathered into the atlas pages
    atlas_notes: list[AtlasNote] = field(default_factory=list)  # per-layer legends of those cells
    # facts every template of the post reads at the top level (section 1's data and models)
    shared: dict[str, Any] = field(default_factory=dict)


# units per atlas page: a 512-unit layer is four pages of a table about 10,000 px tall at 1280 px, not
# one of 40,000 px; pages hold fixed ranges of unit indices, so any link can name a unit's page
ATLAS_PAGE_UNITS = 128


def atlas_path(model_key: str, layer: str, page: int = 0) -> str:
    """Where a model's layer page of the unit atlas lives, relative to the post folder: page 0 holds
    units 0-127, page 1 units 128-255 ... (a '.' cannot come from file_slug, so no layer's name
    collides with another's later page)."""
    first = page * ATLAS_PAGE_UNITS
    suffix = f".units-{first}-{first + ATLAS_PAGE_UNITS - 1}" if page else ""
    return f"atlas/{model_key}/{file_slug(layer)}{suffix}.html"


def atlas_href(model_key: str, layer: str, unit: int) -> str:
    """The link to one unit's row of the atlas, relative to the post folder."""
    return f"{atlas_path(model_key, layer, unit // ATLAS_PAGE_UNITS)}#unit-{unit}"


def file_slug(name: str) -> str:
    """A file name for a layer name or module path ("features.0" -> "features-0"): never a path."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "layer"

