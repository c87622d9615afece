"""Training throughput of the write-up's networks at the write-up's size: Model I and Model II at
width 1.0 on 96x96x3 images, through the build's own training loop (`reportgen.nets.train.train`:
batches read from the data, augmented, stepped with SGD).

    python benchmarks/train.py [--images 1024] [--batch-size 64] [--threads 2] [--device cpu|cuda]

Trains each model for one epoch on `--images` random images (the cost does not depend on what they
show) in float32 and in bfloat16 (`models[].precision`: autocast, channels-last; on hardware without
native bfloat16 torch emulates it, slower) and prints training images per second, and what one epoch
of the write-up's 416,223 augmented training images would take at that rate. A GPU row needs a
machine with one (`--device cuda`).

Measured on the shared 2-core machine (AVX-512 with bfloat16, 2 threads, load 1.8, 2026-12-02):
Model I 25.2 images/s in float32 (4.6 h per write-up epoch), 49.9 in bfloat16 (2.3 h, 1.98x);
Model II 19.7 (5.9 h) and 40.7 (2.8 h, 2.06x).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace

import numpy as np
import torch

from reportgen.config import AugmentConfig, ModelConfig
from reportgen.nets.data import Dataset
from reportgen.nets.train import deterministic, train

WRITEUP_IMAGES = 416_223
# the write-up's settings for each model (config.toml's comments; README)
MODELS = {"Model I": ModelConfig(name="Model I", arch="model1", width=1.0, dropout=0.5, lr=0.003,
                                 weight_decay=0.001, epochs=1),
          "Model II": ModelConfig(name="Model II", arch="model2", width=1.0, dropout=0.5, lr=0.03,
                                  weight_decay=0.0005, epochs=1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    n = args.images
    data = Dataset(images=rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8),
                   labels=rng.integers(0, 3, n), splits=np.zeros(n, np.int8),
                   class_names=("female", "male", "non-face"), skipped={})
    augment = AugmentConfig(factor=1, flip=True, shift=4, jitter=0.1)
    device = torch.device(args.device)
    print(f"training on {n} random 96x96x3 images, batch {args.batch_size}, {args.device}, "
          f"{args.threads} thread(s), torch {torch.__version__}, {os.cpu_count()} CPUs")
    print(f"{'model':10}{'precision':>10}{'parameters':>12}{'images/s':>10}{'416K-image epoch':>18}")
    for name, base in MODELS.items():
        rates = []
        for precision in ("float32", "bfloat16"):
            cfg = replace(base, batch_size=args.batch_size, precision=precision)
            start = time.perf_counter()
            with deterministic(args.threads):
                checkpoint = train(cfg, augment, data, device)
            seconds = time.perf_counter() - start
            params = sum(v.numel() for k, v in checkpoint["state_dict"].items() if "running" not in k and
                         "num_batches" not in k)
            rates.append(n / seconds)
            hours = WRITEUP_IMAGES / rates[-1] / 3600
            print(f"{name:10}{precision:>10}{params / 1e6:11.1f}M{rates[-1]:10.1f}{hours:15.1f} h", flush=True)
        print(f"{'':10}{'':>10}{'':>12}{rates[1] / rates[0]:9.2f}x in bfloat16")
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
