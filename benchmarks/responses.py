"""Throughput of section 3's compute: the streamed response pass, guided backprop, frame composition and MP4 encoding.

    PYTHONPATH=. python benchmarks/responses.py [--images 1000] [--frames 300] [--threads N]

Uses the default config's models (model1 and model2 at width 0.5 on 28x28x1, 10 classes), untrained:
throughput does not depend on the weights. Images are random uint8. The machine may be shared, so
timings can be noisy: each figure is the best of --repeats runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from reportgen.drawing.video import accelerating_durations, write_mp4
from reportgen.nets.architectures import create_model
from reportgen.nets.checkpoint import Normalizer
from reportgen.sections.responses.frames import response_frames
from reportgen.sections.responses.recording import Responses, guided_backprop, record_responses

T = TypeVar("T")


def best(repeats: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Shortest wall time of `repeats` calls, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench(arch: str, images: np.ndarray, labels: np.ndarray, args: argparse.Namespace) -> None:
    """Print one model's three throughputs."""
    names = [str(i) for i in range(10)]
    keep = list(range(min(100, len(images))))
    model = create_model(arch, in_channels=1, image_size=28, num_classes=10, width=0.5).eval()

    def bare() -> None:
        with torch.inference_mode():
            for start in range(0, len(images), args.batch):
                model(torch.zeros(min(args.batch, len(images) - start), 1, 28, 28))

    def record() -> Responses:
        return record_responses(model, images, labels, [0.13], [0.3], class_names=names, keep=keep,
                                batch_size=args.batch)

    plain, _ = best(args.repeats, bare)
    seconds, rec = best(args.repeats, record)
    units = sum(layer.units for layer in rec.layers)
    print(f"{arch}: streamed pass      {len(images) / seconds:8.0f} images/s ({seconds:.2f} s for {len(images)}, "
          f"{len(rec.layers)} layers, {units} units; a bare forward pass: {len(images) / plain:.0f} images/s)")

    # guided backprop of many units in one batch (one channel per row), as the responses stage runs it
    layer = rec.layers[-2]
    rows = min(256, layer.units * rec.k)
    units = np.repeat(np.arange(layer.units), rec.k)[:rows]
    picks = layer.top_image.reshape(-1)[:rows]
    positions = [tuple(p) for p in layer.top_pos.reshape(-1, 2)[:rows]]
    x = Normalizer([0.13], [0.3], torch.device("cpu")).images(images[picks])
    seconds, _ = best(args.repeats, lambda: guided_backprop(model, x, layer.path, units.tolist(), positions))
    print(f"{arch}: guided backprop    {rows / seconds:8.0f} rows/s at {layer.name} ({rows} rows in one batch)")

    movie, frames = response_frames([(layer.name, layer.units) for layer in rec.layers], rec.class_names, images,
                                    rec.probs, rec.labels, rec.keep.tolist(),
                                    [layer.kept_units for layer in rec.layers],
                                    title=f"{arch} responses")
    frame = next(frames)
    values = np.concatenate([layer.kept_units for layer in rec.layers], axis=1)
    order = np.arange(args.frames) % len(keep)

    def compose() -> list[np.ndarray]:
        return [movie.frame(images[i], rec.probs[i], values[i], int(labels[i])) for i in order]

    seconds, composed = best(args.repeats, compose)
    print(f"{arch}: frame composition  {args.frames / seconds:8.0f} frames/s "
          f"({movie.size[0]}x{movie.size[1]} px, {frame.nbytes / 1e6:.2f} MB a frame)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        seconds, info = best(1, lambda: write_mp4(composed, out / "m.mp4", 25.0, out / "m.png"))
        print(f"{arch}: encoding           {info.frames / seconds:8.0f} frames/s (libx264 crf 20 veryfast, "
              f"{(out / 'm.mp4').stat().st_size / 1e3:.0f} kB for {info.frames} frames)")
        durations = accelerating_durations(len(keep))
        seconds, info = best(1, lambda: write_mp4(composed[:len(keep)], out / "a.mp4", durations, out / "a.png"))
        print(f"{arch}: accelerating movie of {len(keep)} frames -> {info.frames} encoded frames, "
              f"{info.seconds:.1f} s long, written in {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; timings on a shared machine may be noisy "
          f"(best of {args.repeats})")
    for arch in ("model1", "model2"):
        bench(arch, images, labels, args)


if __name__ == "__main__":
    main()
