"""`torchrun --nproc-per-node 2 -m reportgen build` on CPU with the gloo backend: rank 0 builds the
site, both ranks train every model in DistributedDataParallel and share section 2's preferred
inputs, and the same config and world size train the same checkpoint twice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from reportgen.cache import Artifact
from tests.conftest import TINY


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


def test_two_gloo_ranks_train_render_and_rank_0_builds_the_site(tmp_path: Path) -> None:
    """The session's tiny config, sections 3-4 off, with Model II a wider network loaded from a state
    dict (its larger layers are more than one batch of units, so both ranks render some): Model I is
    trained by both ranks, section 2's preferred inputs are rendered by both."""
    from reportgen.config import load_config
    from reportgen.nets.architectures import create_model
    from reportgen.nets.checkpoint import resolve_precision
    from reportgen.sections.preferred import compute

    torch.manual_seed(0)
    torch.save(create_model("model2", in_channels=1, image_size=16, num_classes=10, width=0.5).state_dict(),
               tmp_path / "model2.pt")
    text = TINY.replace('arch = "model2"\nwidth = 0.125', 'arch = "model2"\nwidth = 0.5\ntrain = false\n'
                        'weights = "model2.pt"')
    text = text.replace("[responses]\n", "[responses]\nenabled = false\n")
    text = text.replace("[build]\n", "[build]\nworkers = 1\n")
    config = tmp_path / "config.toml"
    config.write_text(text + "\n[clusters]\nenabled = false\n")
    first = _torchrun(config)
    assert first.returncode == 0, first.stderr[-3000:]
    # one summary, from rank 0, and a site
    assert first.stderr.count("Site written to") == 1, first.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()
    trained = _trained(tmp_path / "cache")
    assert sorted(trained) == ["train Model I"]
    checkpoint = torch.load(trained["train Model I"], weights_only=True)
    assert checkpoint["environment"]["ranks"] == 2
    # each rank took its half of every batch: the 300-image tiny set's 2 augmented epochs in batches of 32
    assert len(checkpoint["metrics"]["iter_acc"]) == 2 * -(-int(0.7 * 300) * 2 // 32)

    # the preferred inputs two ranks rendered for Model II are the bytes one process renders: each rank
    # optimized whole batches, as one process does
    records = {json.loads(m.read_text())["label"]: m.parent for m in (tmp_path / "cache").glob("*/*/manifest.json")}
    shared = records["preferred inputs Model II"]
    params = json.loads((shared / "manifest.json").read_text())["params"]
    cfg = load_config(config)
    alone = tmp_path / "alone"
    alone.mkdir()
    data, model = (Artifact(stage, folder.name, folder, json.loads((folder / "manifest.json").read_text()), True, 0.0)
                   for stage, folder in (("data", records["data"]), ("load", records["load Model II"])))
    compute.preferred_stage(alone, {"preferred": compute.keyed(cfg.preferred), "device": "cpu",
                                    "threads": params["threads"],
                                    "precision": resolve_precision(cfg.preferred.precision, "cpu"), "layers": []},
                            data, model)
    units = json.loads((shared / "preferred.json").read_text())["layers"]
    assert max(layer["shown"] for layer in units) > 64  # more than one batch (DEFAULT_CHUNK_SIZE)
    with np.load(shared / "preferred.npz") as ours, np.load(alone / "preferred.npz") as theirs:
        assert sorted(ours.files) == sorted(theirs.files)
        for name in ours.files:
            assert np.array_equal(ours[name], theirs[name]), name

    # the same config and world size: the same checkpoint, byte for byte (section 2 off this time)
    before = trained["train Model I"].read_bytes()
    shutil.rmtree(trained["train Model I"].parent)
    config.write_text(config.read_text().replace("[preferred]\n", "[preferred]\nenabled = false\n"))
    again = _torchrun(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _trained(tmp_path / "cache")["train Model I"].read_bytes() == before
