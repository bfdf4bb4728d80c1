"""Process-group helpers: who am I (rank, device), and the few collectives Algorithm 1 needs.

Launch with ``torchrun --nproc_per_node N -m strucspars_viz.cli train ...``: ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK`` come from the environment. ``P, Q, G`` are computed on rank 0 and broadcast (the
sparsifier's ``state_dict``); the regulariser runs on every rank after DDP has all-reduced the
gradients, so every rank applies the same update. With one process every helper is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "destroy"]


@dataclass(frozen=True)
class DistContext:
    """Rank, world size and device of this process (see :meth:`from_env`)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls) -> "DistContext":
        """Read torchrun's variables, pick the device (CUDA ``LOCAL_RANK`` if present, else CPU) and
        initialise the process group (nccl on CUDA, gloo on CPU) when ``WORLD_SIZE > 1``."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world, local_rank, device)

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run folder and runs the P/Q search."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel when distributed, else unchanged."""
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a picklable object; internal state only, never user files)."""
        if not self.distributed:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return t.tolist()

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's BN running statistics to every rank (DDP broadcasts buffers only before each
        forward, so after the last step each rank holds the statistics of its own last batch)."""
        if self.distributed:
            for buf in model.buffers():
                dist.broadcast(buf, src=0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any_true(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (so that all ranks stop together)."""
        if not self.distributed:
            return bool(flag)
        return self.all_sum([1.0 if flag else 0.0])[0] > 0


def destroy() -> None:
    """Tear the process group down (end of ``train``), if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
