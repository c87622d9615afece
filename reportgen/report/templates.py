"""Where the templates are: the built-in folder and the user's overrides (`site.templates`)."""

from __future__ import annotations

from pathlib import Path

from reportgen.config import Config

# a wheel installs the templates inside the package; a source checkout keeps them at the top level
_PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = next((p for p in (_PACKAGE / "templates", _PACKAGE.parent / "templates") if (p / "base.html").is_file()),
                 _PACKAGE.parent / "templates")


def user_templates(cfg: Config) -> Path:
    """The folder of the user's template overrides; the built-in folder when none is set."""
    return cfg.resolve(cfg.site.templates) if cfg.site.templates else TEMPLATES
