"""Cold-build and warm-rebuild wall time, per stage, for a config (default: the repository's).

    python benchmarks/build.py [--config config.toml]

The cold build uses a fresh cache and output folder in a temporary directory, so it measures
training and everything else from scratch; the warm rebuild then runs with nothing changed.

Measured on the shared 2-core machine at load 7-10, the default config with build.workers = 1:
cold 587 s (training 571 s), warm 0.4 s; section 4 (1,000 test images) 11.3 s cold, 1.9% of the
build: descriptors of both models 1.9 s, neighbours and precision@k 0.6 s, t-SNE 6.5 s, grid 0.3 s,
drawing 1.9 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from reportgen.config import load_config
from reportgen.pipeline import build

# The stages of each section after the first, by stage name, for a line on each section's share
SECTIONS = {"section 4 (clusterings)": ("clusters", "clusters-figures")}


def run(config: Path, tmp: Path) -> tuple[list[tuple[str, float, float]], list[str]]:
    """Per-stage rows (label, cold s, warm s) plus the total, and lines on each section's share."""
    overrides = {"build.cache": str(tmp / "cache"), "build.out": str(tmp / "site")}
    cold = build(load_config(config, overrides))
    warm = build(load_config(config, overrides))
    pairs = zip(cold.stages, warm.stages, strict=True)
    rows = [(a.manifest.get("label", a.stage), a.seconds, b.seconds) for a, b in pairs]
    notes = []
    for section, names in SECTIONS.items():
        stages = [a for a in cold.stages if a.stage in names]
        if stages:
            seconds = sum(a.seconds for a in stages)
            parts = {k: v for a in stages for k, v in a.manifest.get("timings", {}).items()}
            detail = ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
            notes.append(f"{section}: {seconds:.1f} s cold, {100 * seconds / cold.seconds:.1f}% of the build"
                         + (f" ({detail})" if detail else ""))
    return rows + [("total", cold.seconds, warm.seconds)], notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parent.parent / "config.toml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, notes = run(args.config, Path(tmp))
    print(f"config: {args.config}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cuda={'yes' if torch.cuda.is_available() else 'no'}")
    total = rows[-1][1]
    print(f"{'stage':<28} {'cold s':>8} {'share':>6} {'warm s':>8}")
    for label, cold, warm in rows:
        print(f"{label:<28} {cold:8.1f} {100 * cold / total:5.1f}% {warm:8.1f}")
    for note in notes:
        print(note)
    print(f"budget: the cold build must stay under 300 s on 2 cores; this one used {100 * total / 300:.0f}% of it")
    print(f"benchmark wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
