"""Cold-build and warm-rebuild wall time, per stage, for a config (default: the repository's).

    python benchmarks/build.py [--config config.toml]

The cold build uses a fresh cache and output folder in a temporary directory, so it measures
training and everything else from scratch; the warm rebuild then runs with nothing changed.
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


def run(config: Path, tmp: Path) -> list[tuple[str, float, float]]:
    overrides = {"build.cache": str(tmp / "cache"), "build.out": str(tmp / "site")}
    cold = build(load_config(config, overrides))
    warm = build(load_config(config, overrides))
    pairs = zip(cold.stages, warm.stages, strict=True)
    rows = [(a.manifest.get("label", a.stage), a.seconds, b.seconds) for a, b in pairs]
    return rows + [("total", cold.seconds, warm.seconds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parent.parent / "config.toml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.config, Path(tmp))
    print(f"config: {args.config}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cuda={'yes' if torch.cuda.is_available() else 'no'}")
    total = rows[-1][1]
    print(f"{'stage':<28} {'cold s':>8} {'share':>6} {'warm s':>8}")
    for label, cold, warm in rows:
        print(f"{label:<28} {cold:8.1f} {100 * cold / total:5.1f}% {warm:8.1f}")
    section2 = sum(cold for label, cold, _ in rows[:-1] if label.startswith("preferred "))
    print(f"section 2 (preferred inputs and their figures): {section2:.1f} s cold, {100 * section2 / total:.0f}% "
          "of the build (its share of the budget: about 70 s)")
    print(f"budget: the cold build must stay under 300 s on 2 cores; this one used {100 * total / 300:.0f}% of it")
    print(f"benchmark wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
