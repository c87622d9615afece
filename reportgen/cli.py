"""Command line: `reportgen build [--config PATH] [--out DIR] [--force]` and `reportgen serve`.

The CLI owns the terminal: it sets up logging, turns known input errors into one-line messages with
a non-zero exit (no traceback), and closes with a summary of what was built and how long it took.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from reportgen import __version__
from reportgen.builds import BuildResult, check_files, up_to_date
from reportgen.config import Config, ConfigError, load_config
from reportgen.errors import DataError, EvaluateError, LayerError, ModelError, Problems, SettingError, SiteError

log = logging.getLogger("reportgen")
INPUT_ERRORS = (DataError, ModelError, SiteError, EvaluateError, LayerError)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reportgen", description="Train or load two image classifiers and "
                                "publish what they learned as a static website.")
    p.add_argument("--version", action="version", version=f"reportgen {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the site described by a config file")
    b.add_argument("--config", type=Path, default=Path("config.toml"),
                   help="config file, relative to the current directory (default: config.toml)")
    b.add_argument("--out", type=Path, help="output folder, relative to the current directory (default: the "
                   "config's build.out, which is relative to the config file)")
    b.add_argument("--force", action="store_true", help="rebuild every stage, ignoring cached artifacts")
    b.add_argument("--prune", action="store_true",
                   help="after the build, delete cache entries this config no longer uses and report the space freed")
    b.add_argument("-q", "--quiet", action="store_true", help="only warnings, errors and the summary")
    v = sub.add_parser("serve", help="build, serve the site on this machine, and rebuild when the config, a "
                       "template override or a model file changes")
    v.add_argument("--config", type=Path, default=Path("config.toml"),
                   help="config file, relative to the current directory (default: config.toml)")
    v.add_argument("--out", type=Path, help="output folder, relative to the current directory (default: the "
                   "config's build.out, which is relative to the config file)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000; 0 picks a free one)")
    v.add_argument("-q", "--quiet", action="store_true", help="only warnings, errors and the summaries")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # under torchrun only rank 0 reports progress: the others train the same batches
    quiet = args.quiet or os.environ.get("RANK", "0") != "0"
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    logging.getLogger("openTSNE").setLevel(logging.WARNING)  # its INFO notes are about its own arguments
    if args.command == "serve":
        from reportgen.serve import serve

        code, served = reported(lambda: serve(args.config, args.out, _serve_build, args.host, args.port))
        return code or served or 0
    code, result = reported(lambda: build_once(load_config(args.config), args.out, args.force, args.prune))
    if result is not None:
        print(summary(result), file=sys.stderr)
    return code


def build_once(cfg: Config, out_arg: Path | None, force: bool = False, prune: bool = False) -> BuildResult | None:
    """One build of `cfg` into --out or the config's build.out (None on a torchrun rank other than
    0, which only trains)."""
    out = out_arg.resolve() if out_arg else cfg.resolve(cfg.build.out)
    if os.environ.get("WORLD_SIZE", "1") != "1":  # under torchrun: every rank joins, even for a built site
        check_files(cfg)
        from reportgen.pipeline import build_ranks

        return build_ranks(cfg, out, force, prune)
    # decided from file hashes and the config, without torch: an unchanged build answers at once
    result = None if force or prune else up_to_date(cfg, out)
    if result is None:
        check_files(cfg)  # a wrong path fails in a second, not after torch is imported
        from reportgen.pipeline import build  # imports torch: keep `--help` and config errors instant

        result = build(cfg, out=out, force=force, prune=prune, check_unchanged=False)
    return result


def _serve_build(cfg: Config, out: Path) -> bool:
    """`reportgen serve`'s build: its errors and summary printed as `build` prints them; Ctrl-C stops."""
    code, result = reported(lambda: build_once(cfg, out))
    if code == 130:
        raise KeyboardInterrupt
    if result is not None:
        print(summary(result), file=sys.stderr)
    return result is not None


T = TypeVar("T")


def reported(action: Callable[[], T]) -> tuple[int, T | None]:
    """Run `action`; a known input error becomes one line (or one per problem) on stderr and an exit
    code, never a traceback. Returns (0, its result) or (the exit code, None)."""
    try:
        return 0, action()
    except ConfigError as e:
        count = f"{len(e.problems)} problem{'s' if len(e.problems) != 1 else ''}"
        print(f"reportgen: error: {e.path}: {count} in the config:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2, None
    except SettingError as e:  # a setting the model or data cannot meet: a config problem
        print(f"reportgen: error: {e}", file=sys.stderr)
        return 2, None
    except Problems as e:  # several found before any model trained: all of them, one line each
        print(f"reportgen: error: {len(e.problems)} problems found before training anything:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return (2 if e.settings_only else 1), None
    except INPUT_ERRORS as e:
        print(f"reportgen: error: {e}", file=sys.stderr)
        return 1, None
    except OSError as e:
        print(f"reportgen: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1, None
    except KeyboardInterrupt:
        print("reportgen: interrupted; the previous site and finished cache entries are intact", file=sys.stderr)
        return 130, None


def summary(result: BuildResult) -> str:
    """A table of stages (built or cached, seconds) and where the site is."""
    lines = ["", f"{'stage':<28} {'status':<7} {'seconds':>8}"]
    for art in result.stages:
        label = art.manifest.get("label", art.stage)
        status = "cached" if art.cached else "built"
        lines.append(f"{label:<28} {status:<7} {art.seconds:8.1f}")
    built = sum(not a.cached for a in result.stages)
    lines.append(f"{'total':<28} {'':<7} {result.seconds:8.1f}")
    cached = len(result.stages) - built
    if result.up_to_date:
        lines.append(f"\nNothing changed since the last build ({cached} stages in the cache, checked in "
                     f"{result.seconds:.2f} s): the site at {result.out} is up to date and was left as it was.")
    else:
        lines.append(f"\nSite written to {result.out} ({built} stage{'s' if built != 1 else ''} built, "
                     f"{cached} from cache).")
    if result.pruned is not None:
        removed, freed = result.pruned
        lines.append(f"Pruned {removed} unused cache entr{'y' if removed == 1 else 'ies'}, "
                     f"freeing {freed / 1e6:.1f} MB.")
    lines.append(f"Open {result.out / 'index.html'} in a browser, or publish the folder as it is.")
    return "\n".join(lines)
