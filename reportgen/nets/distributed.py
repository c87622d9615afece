"""Training past one process with torch's own distributed engine:

    torchrun --nproc-per-node N -m reportgen build           # N processes on this machine
    torchrun --nnodes M --nproc-per-node N --rdzv-id ID --rdzv-backend c10d --rdzv-endpoint HOST:PORT -m reportgen build
                                                             # (the same on each of M machines)

torchrun starts the command once per process with RANK, WORLD_SIZE and LOCAL_RANK set and a
rendezvous to meet at. Rank 0 runs the build as a single process would: the data stage, the cache,
every section and the site; it alone writes. The other ranks wait for rank 0 to hand them a job
(its settings and the artifacts it reads, which every rank reaches on a shared disk or the same path
on each machine) and run their share of it: a training, in DistributedDataParallel on their part of
every batch (train.train_job), or a layer of section 2's preferred inputs, whole batches of units
each (preferred.compute.render_job); then they wait for the next, until rank 0 says there are no
more. Gradients are summed in a fixed order for a given world size, so the same config and world size
give the same checkpoint.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# rank 0 may spend hours between jobs (a long data stage, evaluating the model before the next
# training); the other ranks wait that long for it
TIMEOUT = datetime.timedelta(hours=12)


@dataclass(frozen=True)
class World:
    """This process's place among the ranks torchrun started."""

    rank: int
    size: int
    local_rank: int

    @property
    def leader(self) -> bool:
        return self.rank == 0


def world() -> World | None:
    """The ranks torchrun started, or None for a single process (no torchrun, or one process)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def join(device: str) -> World | None:
    """Join the process group torchrun set up (NCCL on CUDA, each process on its LOCAL_RANK's GPU;
    gloo on CPU), once per process; None for a single process."""
    found = world()
    if found is None:
        return None
    if not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(found.local_rank)
        dist.init_process_group("nccl" if device == "cuda" else "gloo", timeout=TIMEOUT)
    return found


def current() -> World | None:
    """The world this process joined, or None when it trains alone."""
    return world() if dist.is_available() and dist.is_initialized() else None


_released = False  # whether rank 0 has told the others there are no more jobs


def hand_out(job: tuple[Any, ...]) -> None:
    """On rank 0: send every other rank its next job, (name, *arguments)."""
    dist.broadcast_object_list([job], src=0)


def release() -> None:
    """On rank 0: tell the other ranks there are no more jobs (once; nothing outside torchrun)."""
    global _released
    if current() is not None and not _released:
        dist.broadcast_object_list([None], src=0)
        _released = True


def serve(jobs: dict[str, Callable[..., object]]) -> None:
    """On the other ranks: run the jobs rank 0 hands out, (name, *arguments) each, until it says
    there are no more."""
    while True:
        box: list[Any] = [None]
        dist.broadcast_object_list(box, src=0)
        if box[0] is None:
            return
        name, *arguments = box[0]
        jobs[name](*arguments)


def leave() -> None:
    """Leave the process group (every rank, at the end)."""
    global _released
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _released = False
