"""The four-section report of a torchvision ResNet-18 trained elsewhere, at its native input size.

    python benchmarks/own_model.py [--images 1000] [--size 224] [--workers 2] [--preferred-threads N] [--keep DIR]

Writes a folder of `--images` photographs in five classes (random crops of five pictures that ship
with scikit-image, resized to `--size`), a ResNet-18 state dict with random weights (what a user's
`torch.save(model.state_dict(), ...)` gives; the cost does not depend on what the weights learned),
and a config that loads it with no section settings at all: the defaults a user gets. Then it
builds the site as `reportgen build` does and prints every stage's seconds, and what the default
caps cost in coverage (units visualized of the units each layer has).

Goal (issue 14): the whole report in <= 10 minutes on 2 CPU cores with the default caps.

Latest (2026-12-02, just after midnight, load 1.7 at the end): 723 s, NOT within the goal. The path
check now cuts receptive fields into windows, runs each (image, box) once and runs channels-last:
56.6 s (98.3 s before); section 2 459 s (search 71.8 s, render ~360 s), guided backprop 107 s.

Before (2026-12-01, late evening, load 1.9 at the end): 729 s, NOT within the goal. Against the
512 s below: section 2 427 s (search 64 s, was 32 s: 16 settings by successive halving instead of 4;
render 335 s), the path check 98 s (added since), guided backprop 93 s in bfloat16 (48 s below; the
load), section 3's drawings 24 s. The path check and the search are where the time went back.

Measured on the shared 2-core machine (AVX-512 with bf16, load 1.3-1.9, nothing else running,
2026-12-01): 512 s, within the goal. Section 2 387 s (search 32 s; receptive-field windows for conv1
8x8, layer1 46x46 and layer2 106x106; layer3's 256 units and layer4's 256 of 512, which see the whole
image, most of the rest), its class units 24 s, section 3 54 s (guided backprop 48 s in bfloat16) and
its drawings 13 s, the randomization test 9 s, section 4 8 s, the rest 13 s; section 2 covered 773 of
the 1,029 units (layer4 sampled 256 of 512); the site is 95 MB. Earlier the same day: 730 s (section
2 592 s, guided backprop 93 s); before the previous session's changes section 2 alone took 1068 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
import torchvision
from PIL import Image

from reportgen.config import load_config
from reportgen.pipeline import build

PICTURES = ("brick", "grass", "gravel", "coffee", "chelsea")


def write_folder(root: Path, images: int, size: int, seed: int = 0) -> None:
    """`images` random crops (a third to the whole of the shorter side) of the five pictures, resized
    to size x size, in root/<picture>/."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(PICTURES):
        picture = Image.fromarray(np.asarray(getattr(skimage.data, name)(), np.uint8)).convert("RGB")
        folder = root / name
        folder.mkdir(parents=True)
        count = images // len(PICTURES) + (c < images % len(PICTURES))
        for i in range(count):
            side = int(rng.uniform(1 / 3, 1) * min(picture.size))
            x, y = rng.integers(0, picture.size[0] - side + 1), rng.integers(0, picture.size[1] - side + 1)
            tile = picture.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR)
            tile.save(folder / f"{i:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--preferred-threads", type=int, default=0,
                        help="section 2's torch threads (0: the config default, build.workers)")
    parser.add_argument("--keep", type=Path, help="write the folder, weights, cache and site here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="reportgen-own-model-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    if not (tmp / "images").is_dir():
        write_folder(tmp / "images", args.images, args.size)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None, num_classes=len(PICTURES)).state_dict(),
               tmp / "resnet18.pth")
    (tmp / "config.toml").write_text(f'''
[build]
workers = {args.workers}

[data]
source = "folder"
path = "images"
image_size = {args.size}
channels = 3

[[models]]
name = "ResNet-18"
arch = "torchvision:resnet18"
weights = "resnet18.pth"
train = false
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
''' + (f"\n[preferred]\nthreads = {args.preferred_threads}\n" if args.preferred_threads else ""))
    start = time.perf_counter()
    result = build(load_config(tmp / "config.toml"))
    wall = time.perf_counter() - start
    print(f"\nResNet-18 at {args.size}x{args.size}, {args.images} images, {args.workers} workers, section 2 on "
          f"{args.preferred_threads or args.workers} thread(s), "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end")
    print(f"{'stage':32} {'seconds':>8}")
    for a in result.stages:
        print(f"{a.manifest.get('label', a.stage):32} {a.seconds:8.1f}")
    print(f"{'total':32} {wall:8.1f}  (goal 600)")
    summaries = list((tmp / ".reportgen-cache").glob("preferred/*/preferred.json"))
    if summaries:
        summary = json.loads(summaries[0].read_text())
        shown = sum(layer["shown"] for layer in summary["layers"])
        units = sum(layer["units"] for layer in summary["layers"])
        print(f"section 2 coverage: {shown} of {units} units ({100 * shown / units:.0f}%): " + ", ".join(
            f"{layer['name']} {layer['shown']}/{layer['units']}" for layer in summary["layers"]))
        print("section 2 seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items()))
        windowed = [f"{layer['name']} {bottom - top}x{right - left}" for layer in summary["layers"]
                    if layer.get("window") for top, left, bottom, right in [layer["window"][:4]]]
        print("receptive-field windows: " + (", ".join(windowed) or "none"))
    print(f"site: {tmp / 'site'}")


if __name__ == "__main__":
    main()
