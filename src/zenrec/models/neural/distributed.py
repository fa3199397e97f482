"""Multi-process data-parallel training under ``torchrun`` (DDP: gloo on CPU, NCCL on GPU).

The CLI reads the environment ``torchrun`` sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``...) and calls :func:`init_distributed`; the trainer then wraps the loss in
``DistributedDataParallel`` and gives each process a contiguous share of every global batch.
All processes draw the same shuffles and negatives from identically seeded generators, so the
result equals single-process training up to floating-point summation order (in-batch softmax
losses see each process's share of the batch only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["DistInfo", "finalize_distributed", "init_distributed"]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(env: Mapping[str, str]) -> DistInfo:
    """Join the process group described by ``env`` (torchrun's variables); no-op for one process."""
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", "0"))
    if world <= 1:
        return DistInfo(0, 1, 0, "none")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not torch.distributed.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local)
        torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, backend)


def finalize_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
