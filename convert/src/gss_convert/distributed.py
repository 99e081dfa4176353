"""Training on several processes (DistributedDataParallel), started by torchrun.

`torchrun --nproc_per_node N -m gss_convert.cli train ...` starts N copies of the command with
RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/MASTER_PORT) in their environment. Without
them, or with WORLD_SIZE 1, training is the single process it always was: `DistEnv()` is that
case, and every helper here is then a no-op, so the single-process path runs exactly the same
operations as before.

The process group is NCCL on CUDA GPUs (one GPU per process, picked by LOCAL_RANK) and gloo on
the CPU. What the trainer needs from it: splitting the global batch (`local_batch`), summing
small tensors over ranks (loss shares, the VQ codebook's EMA statistics), handing rank 0's
objects (checkpoints) to every rank, and barriers between stages.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .utils import resolve_device

# What torchrun (torch.distributed.run) puts into each worker's environment.
TORCHRUN_VARS: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK")

# Ranks wait for each other in collectives while one of them does something long alone: every
# rank decodes the whole training split before DDP's first broadcast (minutes on Cityscapes), and
# the others wait in a barrier while rank 0 writes checkpoints and measures stage 1's codebook.
# NCCL's default timeout (10 minutes) could fire there; a real hang still ends, after this long.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class DistEnv:
    """This process's place among the training processes; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when there are other ranks to talk to (a process group exists)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, shows progress and writes the run directory."""
        return self.rank == 0

    def local_batch(self, global_batch: int, what: str = "batch_size") -> int:
        """This rank's share of a global batch: `global_batch / world_size`, which must be whole,
        so every rank runs the same shapes and DDP's gradient mean weighs every sample alike."""
        if global_batch < 1:
            raise ValueError(f"{what} {global_batch}: must be at least 1")
        if global_batch % self.world_size:
            raise ValueError(
                f"{what} {global_batch} is the global batch and must split evenly over the "
                f"{self.world_size} training processes (WORLD_SIZE={self.world_size}); set it to a "
                f"multiple of {self.world_size} or start torchrun with a divisor of {global_batch} processes"
            )
        return global_batch // self.world_size

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sums `tensor` over ranks in place and returns it (unchanged in one process)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Overwrites `tensor` on every rank with rank `src`'s, in place."""
        if self.enabled:
            dist.broadcast(tensor, src=src)
        return tensor

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank `src`'s picklable `obj` on every rank (the argument is ignored elsewhere)."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src)
        return box[0]


def current() -> DistEnv:
    """The ranks of the process group this process is in, for code (such as the VQ codebook's
    update inside a forward pass) that is not handed a DistEnv; a single process when there is
    none. Its local_rank is not known here and left 0."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistEnv()
    return DistEnv(dist.get_rank(), dist.get_world_size())


def env_from_torchrun(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The DistEnv torchrun's variables describe; a single process when none are set."""
    environ = os.environ if environ is None else environ
    present = [k for k in TORCHRUN_VARS if k in environ]
    if not present:
        return DistEnv()
    missing = [k for k in TORCHRUN_VARS if k not in environ]
    if missing:
        raise RuntimeError(
            f"distributed training: {', '.join(present)} set but not {', '.join(missing)}; "
            f"start several processes with torchrun, which sets all of {', '.join(TORCHRUN_VARS)}"
        )
    try:
        env = DistEnv(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ["LOCAL_RANK"]))
    except ValueError:
        raise RuntimeError(
            "distributed training: RANK, WORLD_SIZE and LOCAL_RANK must be integers, got "
            + ", ".join(f"{k}={environ[k]!r}" for k in TORCHRUN_VARS)
        ) from None
    if env.world_size < 1 or not 0 <= env.rank < env.world_size or env.local_rank < 0:
        raise RuntimeError(
            f"distributed training: RANK={env.rank}, WORLD_SIZE={env.world_size}, "
            f"LOCAL_RANK={env.local_rank} do not describe a process among the others"
        )
    return env


def backend_for(device: torch.device) -> str:
    """NCCL between CUDA GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextlib.contextmanager
def distributed_session(
    device_name: str, environ: Mapping[str, str] | None = None
) -> Iterator[tuple[DistEnv, torch.device]]:
    """This process's DistEnv and training device; with several ranks, the process group is up
    for the duration of the block and destroyed after it, whatever happens inside.

    On CUDA each process takes the GPU numbered by its LOCAL_RANK (its index on this machine), so
    `--nproc_per_node` should equal the number of GPUs the machine shows."""
    environ = os.environ if environ is None else environ
    env = env_from_torchrun(environ)
    device = resolve_device(device_name)
    launched = any(k in environ for k in TORCHRUN_VARS)  # by torchrun, even as its only process
    if device.type == "cuda" and launched:
        if env.local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {env.local_rank}: this machine shows only "
                f"{torch.cuda.device_count()} CUDA GPUs; start at most that many "
                f"processes per machine (--nproc_per_node)"
            )
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)  # NCCL's collectives and broadcast_object_list use it
    if not env.enabled or (dist.is_available() and dist.is_initialized()):
        # One process, or inside another session (a script that runs several trainings under one
        # torchrun launch): that session owns the group. Destroying and re-creating the default
        # group in one process reuses its rendezvous keys and can race with the other ranks.
        yield env, device
        return
    # NCCL told its GPU up front: barriers and broadcasts then know the device without guessing
    eager = (
        device.type == "cuda"
        and "device_id" in inspect.signature(dist.init_process_group).parameters
    )
    dist.init_process_group(
        backend_for(device),
        timeout=PROCESS_GROUP_TIMEOUT,
        **({"device_id": device} if eager else {}),
    )
    try:
        yield env, device
    finally:
        dist.destroy_process_group()


__all__ = [
    "DistEnv",
    "TORCHRUN_VARS",
    "PROCESS_GROUP_TIMEOUT",
    "current",
    "env_from_torchrun",
    "backend_for",
    "distributed_session",
]
