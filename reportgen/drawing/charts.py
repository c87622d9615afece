"""The sanity checks' small matplotlib charts (randomization curves, path scores, seed stability):
how each is finished and saved, said once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image


def finish_chart(fig: Any, ax: Any, title: str, path: Path) -> dict[str, int]:
    """A check's chart completed and saved: a zero line, the model's name as the title (neither it nor
    the layer names on the axis read as mathtext), on white; returns its size in pixels."""
    import matplotlib.pyplot as plt

    ax.axhline(0, color="#888888", lw=0.8)
    ax.set_title(title, fontsize=12, parse_math=False)
    for label in ax.get_xticklabels():  # layer names are module paths, which a ModuleDict lets hold a "$"
        label.set_parse_math(False)
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    plt.close(fig)
    with Image.open(path) as image:
        width, height = image.size
    return {"width": width, "height": height}
