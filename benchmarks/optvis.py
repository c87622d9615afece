"""Preferred-input throughput: the batched optvis engine against a one-unit loop and torch-lucent.

Prints unit-steps per second (units x gradient steps / seconds, wall and CPU) for the same model, units and
steps, the chunk-size sweep behind `optvis.DEFAULT_CHUNK_SIZE`, and the same at write-up size.
Run from the repository root:

    PYTHONPATH=. python benchmarks/optvis.py            # about 5 minutes on 2 shared CPU cores
    PYTHONPATH=. python benchmarks/optvis.py --quick    # a smoke run, a minute

torch-lucent is optional, for this script only (`pip install torch-lucent==0.1.8`); without it that
row says why. Timings on a machine shared with other jobs are noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from reportgen.nets.architectures import create_model
from reportgen.nets.layers import find_layer, receptive_fields, unit_layers
from reportgen.optvis import DEFAULT_CHUNK_SIZE, Settings, Unit, render
from reportgen.sections.preferred.compute import receptive_windows

Seconds = tuple[float, float]  # (wall, this process's CPU): CPU time is what other jobs on the machine disturb least


def _rate(units: int, steps: int, seconds: Seconds) -> Seconds:
    return units * steps / seconds[0], units * steps / seconds[1]


def _timed(fn: Callable[[], object]) -> Seconds:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _show(rate: Seconds) -> str:
    return f"{rate[0]:8.1f} wall / {rate[1]:8.1f} cpu unit-steps/s"


def _times(rate: Seconds, other: Seconds) -> str:
    return f"{rate[0] / other[0]:.1f}x wall, {rate[1] / other[1]:.1f}x cpu"


def _model(width: float, channels: int, side: int) -> nn.Module:
    torch.manual_seed(0)
    return create_model("model1", in_channels=channels, image_size=side, num_classes=2, width=width).eval()


def _ours(model: nn.Module, units: list[Unit], shape: tuple[int, int, int], settings: Settings,
          chunk_size: int) -> Seconds:
    return _timed(lambda: render(model, units, shape, mean=0.5, std=0.25, settings=settings, chunk_size=chunk_size))


def _ours_loop(model: nn.Module, units: list[Unit], shape: tuple[int, int, int], settings: Settings) -> Seconds:
    return _timed(lambda: [render(model, [u], shape, mean=0.5, std=0.25, settings=settings) for u in units])


def _lucent(model: nn.Module, units: list[Unit], side: int, channels: int, steps: int) -> Seconds | str:
    """Seconds for lucent's render_vis on each unit in turn, or why it could not run."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lucent.optvis import param
            from lucent.optvis.render import render_vis
    except ImportError as e:
        return f"not installed ({e}); pip install torch-lucent==0.1.8"

    def one(unit: Unit, thresholds: tuple[int, ...]) -> None:
        # render_vis hooks every module and never removes the hooks: a fresh copy per call keeps
        # them from piling up (and from slowing our engine, which runs on the original)
        fresh = copy.deepcopy(model)
        render_vis(fresh, f"{unit.path.replace('.', '_')}:{unit.index}",
                   param_f=lambda: param.image(side, channels=channels, decorrelate=channels == 3),
                   thresholds=thresholds, preprocess=False, fixed_image_size=side, show_image=False,
                   progress=False)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one(units[0], (2,))  # the first call JIT-compiles
            wall = cpu = 0.0
            for unit in units:
                copying = _timed(lambda: copy.deepcopy(model))
                total = _timed(lambda u=unit: one(u, (steps,)))
                wall, cpu = wall + total[0] - copying[0], cpu + total[1] - copying[1]
            return wall, cpu
    except Exception as e:  # report any failure of the third-party package instead of stopping
        return f"failed: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _compare(title: str, width: float, channels: int, side: int, layer: str, batched_units: int | None,
             sample: int, steps: int, chunk_sizes: list[int]) -> None:
    model = _model(width, channels, side)
    shape = (channels, side, side)
    found = find_layer(unit_layers(model, shape), layer)
    everything = [Unit(found.path, i) for i in range(found.units)]
    units = everything[:batched_units] if batched_units else everything
    # lucent's default objective for a conv channel is its spatial mean; ours matches it here, with a
    # Fourier image and jitter like lucent's defaults and our default blur
    settings = Settings(steps=steps, param="fourier", reduce="mean", jitter=1)
    print(f"\n## {title}: model1 width {width}, {channels}x{side}x{side}, layer {layer} ({found.units} units), "
          f"{steps} steps")

    print(f"chunk-size sweep on {len(units)} units, {max(steps // 4, 4)} steps each:")
    sweep_settings = Settings(**{**settings.as_dict(), "steps": max(steps // 4, 4)})
    _ours(model, units[:4], shape, Settings(**{**settings.as_dict(), "steps": 2}), 4)  # warm-up
    for size in chunk_sizes:
        seconds = _ours(model, units, shape, sweep_settings, size)
        print(f"  chunk {size:4d}: {_show(_rate(len(units), sweep_settings.steps, seconds))}")

    batched = _rate(len(units), steps, _ours(model, units, shape, settings, DEFAULT_CHUNK_SIZE))
    loop = _rate(sample, steps, _ours_loop(model, units[:sample], shape, settings))
    lucent = _lucent(model, units[:sample], side, channels, steps)
    print(f"(a) batched engine, chunk {DEFAULT_CHUNK_SIZE}, {len(units)} units: {_show(batched)}")
    print(f"(b) one unit at a time, {sample} units:       {_show(loop)}; batched is {_times(batched, loop)}")
    if isinstance(lucent, str):
        print(f"(c) torch-lucent render_vis: {lucent}")
    else:
        rate = _rate(sample, steps, lucent)
        print(f"(c) torch-lucent render_vis, {sample} units:  {_show(rate)}; batched is {_times(batched, rate)}")
    # section 2's default objective, the centre neuron, on the receptive-field crop it sees
    centre = Settings(**{**settings.as_dict(), "reduce": "center"})
    windows = receptive_windows(model, [found], receptive_fields(model, shape), shape)
    whole = _rate(len(units), steps, _ours(model, units, shape, centre, DEFAULT_CHUNK_SIZE))
    if found.path in windows:
        w = windows[found.path]
        cropped = _rate(len(units), steps, _timed(lambda: render(model, units, shape, mean=0.5, std=0.25,
                                                                  settings=centre, windows=windows)))
        print(f"(d) centre objective, whole image: {_show(whole)}; on its {w.bottom - w.top}x{w.right - w.left} "
              f"receptive-field window: {_show(cropped)}, {_times(cropped, whole)}")
    else:
        print(f"(d) centre objective, whole image: {_show(whole)}; no window (the receptive field covers the image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core CPU two threads made tiny ops 10-100x slower)")
    parser.add_argument("--quick", action="store_true", help="fewer units and steps, for a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU. Timings on a shared machine are "
          "noisy: read the ratios.")
    steps = 16 if args.quick else 64
    _compare("default size (the default config's models)", 0.5, 1, 28, "conv4",
             64 if args.quick else None, 4 if args.quick else 8, steps, [1, 16, 64] if args.quick
             else [1, 8, 16, 32, 64, 128, 256])
    _compare("default size, an FC layer", 0.5, 1, 28, "fc6",
             64 if args.quick else None, 4 if args.quick else 8, steps, [16, 64] if args.quick else [16, 64, 256])
    _compare("write-up size (a sample of units)", 1.0, 3, 96, "conv4", 8 if args.quick else 32,
             2 if args.quick else 4, 8 if args.quick else 16, [1, 8] if args.quick else [1, 8, 16, 32])


if __name__ == "__main__":
    main()
