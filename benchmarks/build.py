"""Cold-build and warm-rebuild wall time, per stage, for a config (default: the repository's).

    python benchmarks/build.py [--config config.toml] [--warm-runs 5]

The cold build uses a fresh cache and output folder in a temporary directory, so it measures
training and everything else from scratch. The warm rebuild is then `reportgen build` run as a
user runs it (a new process each time) with nothing changed: the median wall time of several runs,
Python's start-up included, which is what a user waits for.

Latest, at load ~0.5 before it started (2026-12-02, 01:00, after the data stage streamed its images to
the cache and training read batches from the map): cold 227 s, of which training 157 s (Model I 73 s,
Model II 84 s), section 2 33 s with its figures, section 4 9.3 s; nothing changed 0.29 s. The machine
was slow that hour (the whole test suite ran 1.4-1.6x its quiet time); one epoch of Model I with the
previous commit's training code and this one's, alternated twice in one run: 9.8/9.8 s and 9.6/9.4 s.

Before, at load ~1.5 (2026-12-01, late evening, after section 2's successive-halving search over 16
settings, the channels-last ascent and the stacked phone movies): cold 199 s, of which training 144 s
(Model I 63 s, Model II 81 s: the load, not the code, since training is unchanged), section 2 28 s
with its figures (preferred inputs 9.0 + 14.5 s), section 3 15 s, section 4 5.9 s; nothing changed
0.21 s wall.

Measured on the shared 2-core machine at load ~1 (2026-12-01 evening, the default config, after
section 2 gained its seed check and section 3 its path check and plain-gradient atlas pictures):
cold 192 s, of which training 137 s (Model I 58 s, Model II 79 s; this morning 120 s on a less busy
machine), section 2 28 s with its figures (preferred inputs 8.7 + 14.8 s, class units 2.6 s), section 3
15 s (path checks 3.4 s, randomization 0.9 s), section 4 5.5 s, the site 1.7 s; `reportgen build` with
nothing changed 0.26 s wall. The morning's figures, at load ~0.9: cold 161 s, training 120 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from reportgen.config import load_config
from reportgen.pipeline import build

# The stages of each section after the first, by stage name, for a line on each section's share
SECTIONS = {"section 4 (clusterings)": ("clusters", "clusters-figures")}


def run(config: Path, tmp: Path, warm_runs: int) -> tuple[list[tuple[str, float]], list[str], list[float]]:
    """Per-stage rows (label, cold s) plus the total, lines on each section's share, and the wall
    seconds of each warm `reportgen build`."""
    overrides = {"build.cache": str(tmp / "cache"), "build.out": str(tmp / "site")}
    cold = build(load_config(config, overrides))
    rows = [(a.manifest.get("label", a.stage), a.seconds) for a in cold.stages]
    notes = []
    for section, names in SECTIONS.items():
        stages = [a for a in cold.stages if a.stage in names]
        if stages:
            seconds = sum(a.seconds for a in stages)
            parts = {k: v for a in stages for k, v in a.manifest.get("timings", {}).items()}
            detail = ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
            notes.append(f"{section}: {seconds:.1f} s cold, {100 * seconds / cold.seconds:.1f}% of the build"
                         + (f" ({detail})" if detail else ""))
    # the same config with the temporary cache and site, beside the original so its relative paths hold
    copy = config.with_name(f".benchmark-{os.getpid()}.toml")
    copy.write_text(_with_build_paths(config.read_text(encoding="utf-8"), tmp), encoding="utf-8")
    try:
        warm = []
        for _ in range(warm_runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "reportgen", "build", "--config", str(copy), "--quiet"],
                           check=True, capture_output=True)
            warm.append(time.perf_counter() - start)
    finally:
        copy.unlink()
    return rows + [("total", cold.seconds)], notes, warm


def _with_build_paths(text: str, tmp: Path) -> str:
    """The config's text with build.out and build.cache pointing into `tmp` (the [build] table's own
    out/cache lines dropped, the new ones put first in it; a [build] table added when there is none)."""
    paths = f'out = "{(tmp / "site").as_posix()}"\ncache = "{(tmp / "cache").as_posix()}"\n'
    match = re.search(r"^\[build\][ \t]*\n(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    if not match:
        return f"[build]\n{paths}\n{text}"
    body = re.sub(r"^(out|cache)\s*=.*\n?", "", match.group(1), flags=re.M)
    return text[:match.start(1)] + paths + body + text[match.end(1):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parent.parent / "config.toml")
    parser.add_argument("--warm-runs", type=int, default=5, help="warm `reportgen build` runs to time (default 5)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, notes, warm = run(args.config.resolve(), Path(tmp), args.warm_runs)
    print(f"config: {args.config}")
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cuda={'yes' if torch.cuda.is_available() else 'no'}")
    total = rows[-1][1]
    print(f"{'stage':<28} {'cold s':>8} {'share':>6}")
    for label, cold in rows:
        print(f"{label:<28} {cold:8.1f} {100 * cold / total:5.1f}%")
    for note in notes:
        print(note)
    section2 = sum(cold for label, cold in rows[:-1] if label.startswith("preferred "))
    print(f"section 2 (preferred inputs and their figures): {section2:.1f} s cold, {100 * section2 / total:.0f}% "
          "of the build (its share of the budget: about 70 s)")
    print(f"budget: the cold build must stay under 300 s on 2 cores; this one used {100 * total / 300:.0f}% of it")
    print(f"warm `reportgen build`, nothing changed: median {statistics.median(warm):.2f} s of {len(warm)} runs "
          f"({', '.join(f'{w:.2f}' for w in warm)}); goal 1 s")
    print(f"benchmark wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
