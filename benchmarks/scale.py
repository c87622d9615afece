"""The data stage at the write-up's scale: a folder of 96x96 colour images decoded with bounded memory.

    python benchmarks/scale.py [--images 100000] [--writeup] [--keep DIR] [--size 96] [--source-size 128]

Writes `--images` JPEG files (`--writeup`: 416,223, the write-up's augmented training set) of
`--source-size` pixels in two class folders (smooth random colour fields: what a photo costs to
decode, not what it shows), then runs the build's data stage on them in a fresh process and prints
its decode rate and peak memory, then in another fresh process what a later stage does with the
result: maps it, computes the training set's channel statistics (as training and a loaded model's
normalization do) and reads one epoch of random 128-image batches (as training does). For
comparison the same decode into memory (how the data stage worked before it streamed to the cache).

Goal (issue 20): peak RSS of the data stage on 100K 96x96x3 images <= 4 GiB, with a rate printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

GOAL_GB = 4.0
WRITEUP_IMAGES = 416_223


def write_folder(root: Path, images: int, side: int, seed: int = 0) -> None:
    """`images` JPEGs in root/a and root/b: 8x8 random colour fields scaled up to side x side."""
    def write(start: int) -> None:
        rng = np.random.default_rng((seed, start))
        for i in range(start, min(start + 1000, images)):
            field = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            picture = Image.fromarray(field).resize((side, side), Image.BILINEAR)
            picture.save(root / "ab"[i % 2] / f"{i:06d}.jpg", quality=90)

    for name in "ab":
        (root / name).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(write, range(0, images, 1000)))


def stage(folder: str, out: str, size: int, memory: bool) -> dict:
    """The data stage in this (fresh) process: the build's function, or with `memory` the same decode
    into an in-memory array; its seconds and this process's peak RSS."""
    from reportgen.config import DataConfig
    from reportgen.nets.data import dataset_stage, load_dataset

    cfg = DataConfig(source="folder", path=folder, image_size=size, channels=3)
    start = time.perf_counter()
    if memory:
        images = len(load_dataset(cfg, Path(folder)).labels)
    else:
        images = dataset_stage(Path(out), {"data": cfg})["images"]
    return {"images": images, "seconds": time.perf_counter() - start, "peak_gb": _peak_gb()}


def reader(out: str, batch: int = 128) -> dict:
    """What later stages do with the data stage's files, in this (fresh) process."""
    from reportgen.nets.data import Dataset, channel_stats

    start = time.perf_counter()
    data = Dataset.load(Path(out) / "dataset.npz")
    rows = data.rows("train")
    channel_stats(data.images, rows)
    stats = time.perf_counter() - start
    order = rows[np.random.default_rng(0).permutation(len(rows))]
    start = time.perf_counter()
    for i in range(0, len(order), batch):
        np.asarray(data.images[order[i:i + batch]], np.float32)
    epoch = time.perf_counter() - start
    test, _ = data.part("test")
    return {"train": len(rows), "stats_s": stats, "epoch_s": epoch, "test_gb": test.nbytes / 2**30,
            "peak_gb": _peak_gb()}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _in_fresh_process(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--writeup", action="store_true", help=f"{WRITEUP_IMAGES:,} images")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--source-size", type=int, default=128)
    parser.add_argument("--keep", type=Path, help="write (or reuse) the image folder here")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the in-memory comparison")
    parser.add_argument("--stage", nargs=4, help=argparse.SUPPRESS)   # folder out size memory
    parser.add_argument("--reader", help=argparse.SUPPRESS)           # out
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage[0], args.stage[1], int(args.stage[2]), args.stage[3] == "1")))
        return
    if args.reader:
        print(json.dumps(reader(args.reader)))
        return
    count = WRITEUP_IMAGES if args.writeup else args.images
    tmp = Path(tempfile.mkdtemp(prefix="reportgen-scale-"))
    folder = args.keep or tmp / "images"
    try:
        if not folder.is_dir() or sum(1 for _ in folder.rglob("*.jpg")) != count:
            shutil.rmtree(folder, ignore_errors=True)
            start = time.perf_counter()
            write_folder(folder, count, args.source_size)
            print(f"wrote {count:,} {args.source_size}x{args.source_size} JPEGs in {time.perf_counter() - start:.0f} s",
                  flush=True)
        out = tmp / "stage"
        out.mkdir()
        streamed = _in_fresh_process("--stage", str(folder), str(out), str(args.size), "0")
        read = _in_fresh_process("--reader", str(out))
        memory = None if args.skip_memory else _in_fresh_process("--stage", str(folder), str(out), str(args.size), "1")
        cpus, load = os.cpu_count(), os.getloadavg()[0]
        side = f"{args.size}x{args.size}x3"
        print(f"\ndata stage on {count:,} images to {side}, {cpus} CPUs, load {load:.1f} at the end")
        print(f"{'':34}{'seconds':>9}{'images/s':>10}{'peak RSS GiB':>13}")
        print(f"{'streamed to the cache (the build)':34}{streamed['seconds']:9.1f}"
              f"{streamed['images'] / streamed['seconds']:10.0f}{streamed['peak_gb']:13.2f}")
        if memory:
            print(f"{'decoded into memory (before)':34}{memory['seconds']:9.1f}"
                  f"{memory['images'] / memory['seconds']:10.0f}{memory['peak_gb']:13.2f}")
        print(f"later stage: channel statistics of {read['train']:,} training images {read['stats_s']:.1f} s, "
              f"an epoch of random 128-image batches {read['epoch_s']:.1f} s "
              f"({read['train'] / read['epoch_s']:,.0f} images/s), the test split in memory "
              f"{read['test_gb']:.2f} GiB; peak RSS {read['peak_gb']:.2f} GiB")
        size_gb = (out / "images.u8").stat().st_size / 2**30
        peak = max(streamed["peak_gb"], read["peak_gb"])
        verdict = "met" if peak <= GOAL_GB else "NOT met"
        print(f"images file {size_gb:.2f} GiB; goal peak RSS <= {GOAL_GB:g} GiB: {verdict} ({peak:.2f} GiB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
