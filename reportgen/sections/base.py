"""What a section of the post is to the pipeline: a name, whether the config turns it on, and a
function that runs its stages and presents their results as a `Section` of the site.

The pipeline loops over `pipeline.SECTIONS`; adding a section adds a package under sections/ with
compute.py (stages that run networks), draw.py (pictures from their data), present.py (template
context, pages, atlas panels), stages.py (its `SECTION`), a template under templates/sections/, and
one line in that tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reportgen.cache import Artifact, Stage
from reportgen.config import Config
from reportgen.report.pages import ModelRecord, Section

if TYPE_CHECKING:
    from reportgen.nets.data import Dataset


@dataclass(frozen=True)
class BuildContext:
    """What every section reads: the config, the data, each model's records, the device, `run`, which
    runs a stage through the cache and records it for the build summary, and what earlier sections
    shared."""

    cfg: Config
    dataset: Dataset
    dataset_art: Artifact
    records: list[ModelRecord]
    device: str
    run: Callable[..., Artifact]
    # artifacts a section leaves for the sections after it, by name: section 2's per-model "preferred"
    # compute artifacts, which section 3's activated-units pictures use when section 2 ran
    shared: dict[str, list[Artifact]] = field(default_factory=dict)


@dataclass(frozen=True)
class SectionSpec:
    name: str
    stages: tuple[Stage, ...]                    # in the order they run
    enabled: Callable[[Config], bool]
    build: Callable[[BuildContext], Section]
