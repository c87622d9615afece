"""Shared fixtures: a tiny config (300 MNIST digits at 16x16, two narrow models, 2 epochs) and one
site built from it for the whole session, for the tests that only read a built site."""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reportgen.builds import BuildResult

TINY = """
[site]
title = "Tiny <test> build"
samples_per_class = 3

[build]
out = "site"
cache = "cache"
device = "cpu"

[data]
source = "mnist5k"
image_size = 16
max_per_class = 30
seed = 1

[data.augment]
factor = 2
shift = 1

[evaluate]
uncertain = "threshold"
threshold = 0.5

[preferred]
threads = 1
steps = 4
trials = 4
search_units = 2
movie_fps = 4
[responses]
classes = ["0", "1"]
third = "2"
per_class = 5
low_confidence = 3
patches = 2
threshold = 0.3

[[models]]
name = "Model I"
arch = "model1"
width = 0.125
lr = 0.02
step = 50
epochs = 2
batch_size = 32

[[models]]
name = "Model II"
arch = "model2"
width = 0.125
lr = 0.1
step = 30
weight_decay = 0.0005
epochs = 2
batch_size = 32
"""


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """A config file for a build that takes seconds."""
    path = tmp_path / "config.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one torch thread: two threads spinning on a shared 2-core machine
    made them 20x slower. Used by the test modules of tiny networks (pytestmark)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class BuiltSite:
    config: Path
    result: BuildResult

    @property
    def site(self) -> Path:
        return self.result.out

    def stages(self, name: str) -> list:
        """The artifacts of the stage called `name`, in build order."""
        return [a for a in self.result.stages if a.stage == name]


EPOCH = 1_474_459_200  # SOURCE_DATE_EPOCH of the session's build: 2016-09-21, the write-up's date


@pytest.fixture(scope="session")
def tiny_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    """One tiny build for every test that only reads a built site and its cache: never write into it.
    Dated by SOURCE_DATE_EPOCH, so that a build of the same config in another process must match it
    byte for byte (tests/test_reproducible.py)."""
    from reportgen import pipeline
    from reportgen.config import load_config

    config = tmp_path_factory.mktemp("tiny-site") / "config.toml"
    config.write_text(TINY)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
        return BuiltSite(config, pipeline.build(load_config(config)))


@pytest.fixture
def tiny_copy(tiny_site: BuiltSite, tmp_path: Path) -> Path:
    """A copy of the session build's folder (config, cache and site) for a test that builds again:
    its first build takes every stage from the copied cache, as a second build of its own would."""
    folder = tmp_path / "copy"
    shutil.copytree(tiny_site.config.parent, folder, symlinks=True)
    return folder / "config.toml"


CHROMIUM = Path("/usr/bin/chromium")
# `playwright install` needs the internet, so we drive Debian's Chromium; the flags stop it from
# phoning home (updates, sync, background fetches) and let it run as root in a container
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """Headless Debian Chromium, started once for the whole session (a start takes seconds on a loaded
    machine). Modules that use it check first that Chromium and Playwright are there."""
    from playwright.sync_api import sync_playwright  # imported late: modules must load without it to skip

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
