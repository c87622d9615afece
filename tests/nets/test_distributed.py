"""`torchrun --nproc-per-node 2 -m reportgen build` on CPU with the gloo backend: rank 0 builds the
site, both ranks train every model in DistributedDataParallel, and the same config and world size
train the same checkpoint twice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import TINY, BuiltSite


def _torchrun(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "reportgen", "build", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=config.parent)


def _trained(cache: Path) -> dict[str, Path]:
    """The checkpoints two ranks trained, by stage label."""
    found = {}
    for manifest in (cache / "train").glob("*/manifest.json"):
        record = json.loads(manifest.read_text())
        if record["params"].get("world") == 2:
            found[record["label"]] = manifest.parent / "checkpoint.pt"
    return found


def test_two_gloo_ranks_train_every_model_and_rank_0_builds_the_site(tiny_site: BuiltSite, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    # the session build's config with sections 2-4 off: this is about training, and the tiny session
    # build covers the sections
    text = TINY
    for table in ("[preferred]\n", "[responses]\n"):
        text = text.replace(table, f"{table}enabled = false\n")
    config.write_text(text.replace("[build]\n", "[build]\nworkers = 1\n") + "\n[clusters]\nenabled = false\n")
    first = _torchrun(config)
    assert first.returncode == 0, first.stderr[-3000:]
    # one summary, from rank 0, and a site; both models trained by two ranks
    assert first.stderr.count("Site written to") == 1, first.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()
    trained = _trained(tmp_path / "cache")
    assert sorted(trained) == ["train Model I", "train Model II"]
    for label, path in trained.items():
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint["environment"]["ranks"] == 2
        # each rank took its half of every batch: as many steps as one process takes over the same batches
        alone = next(a for a in tiny_site.stages("train") if a.manifest["label"] == label)
        steps = len(torch.load(alone.file("checkpoint.pt"), weights_only=True)["metrics"]["iter_acc"])
        assert len(checkpoint["metrics"]["iter_acc"]) == steps

    # the same config and world size: the same checkpoints, byte for byte
    before = {label: path.read_bytes() for label, path in trained.items()}
    for path in trained.values():
        shutil.rmtree(path.parent)
    again = _torchrun(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {label: path.read_bytes() for label, path in _trained(tmp_path / "cache").items()} == before
