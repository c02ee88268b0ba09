"""torchrun support without script habits: read the env, pick the backend from the device, no globals patched.

`segstudio train` is the same program alone or under `torchrun --nproc_per_node N` (or multi-node):
`DistContext.from_env()` finds RANK / WORLD_SIZE / LOCAL_RANK, chooses `nccl` for CUDA and `gloo`
otherwise (from the device actually used, never hard-coded), and every helper here is a no-op in a
single process, so the trainer has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from segstudio.core.errors import SegStudioError

__all__ = ["DistContext", "DistributedError", "backend_for", "launched_by_torchrun"]


class DistributedError(SegStudioError):
    """The torchrun environment is inconsistent or the process group cannot start."""


def launched_by_torchrun(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return "RANK" in env and "WORLD_SIZE" in env


def backend_for(device: torch.device) -> str:
    """NCCL only moves CUDA tensors; everything else (CPU, MPS) goes through gloo."""
    return "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DistContext:
        """Ranks from torchrun's variables; a plain process is rank 0 of 1."""
        env = os.environ if env is None else env
        if not launched_by_torchrun(env):
            return cls()
        try:
            rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError as error:
            raise DistributedError(
                f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {error}"
            ) from None
        if not 0 <= rank < world:
            raise DistributedError(f"RANK={rank} is outside WORLD_SIZE={world}")
        return cls(rank=rank, world_size=world, local_rank=local)

    def device_for(self, device: torch.device) -> torch.device:
        """Each rank gets its own GPU (LOCAL_RANK); CPU/MPS ranks share the device type."""
        if device.type == "cuda" and self.enabled:
            return torch.device("cuda", self.local_rank)
        return device

    def init(self, device: torch.device) -> None:
        """Start the process group (env:// rendezvous) when running under torchrun; no-op otherwise."""
        if not self.enabled or dist.is_initialized():
            self.backend = dist.get_backend() if dist.is_initialized() else None
            return
        self.backend = backend_for(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            kwargs: dict[str, Any] = {"backend": self.backend, "init_method": "env://"}
            if device.type == "cuda":
                kwargs["device_id"] = device
            dist.init_process_group(**kwargs)
        except Exception as error:  # rendezvous failures come as RuntimeError/ValueError/DistNetworkError
            raise DistributedError(f"cannot start the {self.backend} process group: {error}") from None
        self.initialized_here = True

    def shutdown(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()
            self.initialized_here = False

    def barrier(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over ranks in place (confusion matrices, loss sums)."""
        if self.enabled and dist.is_initialized():
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """Rank `src`'s object on every rank (the manifest built by rank 0, a stop decision)."""
        if not (self.enabled and dist.is_initialized()):
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def any_true(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if it is true on any (e.g. one rank got SIGTERM: all stop together)."""
        if not (self.enabled and dist.is_initialized()):
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device if self.backend == "nccl" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast_buffers(self, module: torch.nn.Module, src: int = 0) -> None:
        """Copy rank `src`'s buffers (BatchNorm running stats) to every rank.

        DDP syncs gradients, so parameters agree, but without SyncBatchNorm (CPU) each rank's last
        forward updates its own running statistics; this makes the evaluated and saved model the same
        on every rank.
        """
        if not (self.enabled and dist.is_initialized()):
            return
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=src)
