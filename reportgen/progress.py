"""Progress reporting: a tqdm bar on a terminal, periodic log lines with rates elsewhere.

CI logs and redirected output cannot render a carriage-return bar, so when stderr is not a terminal
we log one line every `interval` seconds instead (and always a final one).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("reportgen")
# the running stage's display label ("train Model I"): stages never see display names, progress does
_LABEL: ContextVar[str] = ContextVar("stage_label", default="")


def current_label() -> str:
    """The running stage's display label ('' outside a stage), for log lines that are not progress."""
    return _LABEL.get()


@contextmanager
def stage_label(label: str) -> Iterator[None]:
    """Prefix progress shown while the block runs with `label`."""
    token = _LABEL.set(label)
    try:
        yield
    finally:
        _LABEL.reset(token)


def track(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
          interval: float = 10.0, postfix: dict[str, str] | None = None) -> Iterator[T]:
    """Yield from `items` while showing progress. `postfix` may be mutated by the caller to show
    live figures such as the running accuracy."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    desc = ": ".join(filter(None, (_LABEL.get(), desc)))
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 shows the progress all ranks make
        yield from items
        return
    if sys.stderr.isatty():
        bar = tqdm(items, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
        for item in bar:
            yield item
            if postfix:
                bar.set_postfix(postfix, refresh=False)
        return
    start = last = time.monotonic()
    done = logged = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= interval:
            last, logged = now, done
            _log_line(desc, done, total, unit, now - start, postfix)
    if done and logged != done:  # the final line, unless the last periodic one was already it
        _log_line(desc, done, total, unit, time.monotonic() - start, postfix)


def _log_line(desc: str, done: int, total: int | None, unit: str, seconds: float,
              postfix: dict[str, str] | None) -> None:
    of = f"/{total}" if total else ""
    rate = done / seconds if seconds > 0 else 0.0
    extra = "".join(f" {k}={v}" for k, v in (postfix or {}).items())
    log.info("%s: %d%s %s (%.1f %s/s)%s", desc, done, of, unit, rate, unit, extra)
