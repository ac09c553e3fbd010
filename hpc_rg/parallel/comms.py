"""The one object that owns the MPI world, its sub-communicators and the per-rank device.

Layout of the world (size P, ``S = ranks_per_replica``)::

    rank = group * S + slab_rank       groups = P / S

- ``slab``: the S ranks of one replica group; they share each configuration, one slab of
  the first lattice axis per rank (domain decomposition, halo exchange).
- ``across``: the ranks with the same slab rank in every group; a configuration's slab
  travels nowhere, but parallel-tempering energies and temperature swaps go through it.
- ``node``: the ranks sharing this node's memory (local rank, device choice).

Data-parallel training runs over the whole world.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class Comms:
    """MPI communicators and the device of this rank.

    Parameters
    ----------
    world : mpi4py.MPI.Comm
        Usually ``MPI.COMM_WORLD``, passed in by ``__main__``.
    ranks_per_replica : int
        Slab ranks per replica group; must divide ``world.size``.
    device : {"auto", "cpu", "cuda"}
        ``auto`` picks ``cuda:<local rank mod GPUs>`` when GPUs are visible.
    """

    world: object
    ranks_per_replica: int = 1
    device_request: str = "auto"
    slab: object = field(init=False)
    across: object = field(init=False)
    node: object = field(init=False)

    def __post_init__(self):
        size, S = self.world.Get_size(), self.ranks_per_replica
        if S < 1 or size % S:
            raise ValueError(f"ranks_per_replica={S} does not divide {size} ranks")
        rank = self.world.Get_rank()
        self.slab = self.world.Split(color=rank // S, key=rank)
        self.across = self.world.Split(color=rank % S, key=rank)
        from mpi4py import MPI
        self.node = self.world.Split_type(MPI.COMM_TYPE_SHARED, key=rank)

    # ------------------------------------------------------------------ layout
    @property
    def rank(self) -> int:
        return self.world.Get_rank()

    @property
    def size(self) -> int:
        return self.world.Get_size()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def group(self) -> int:
        """Index of this rank's replica group, 0 .. n_groups-1."""
        return self.rank // self.ranks_per_replica

    @property
    def n_groups(self) -> int:
        return self.size // self.ranks_per_replica

    @property
    def slab_rank(self) -> int:
        return self.slab.Get_rank()

    @property
    def local_rank(self) -> int:
        return self.node.Get_rank()

    @property
    def local_size(self) -> int:
        return self.node.Get_size()

    # ------------------------------------------------------------------ device
    def setup_device(self):
        """Pick this rank's torch device and thread count; returns the ``torch.device``.

        CUDA: ``cuda:<local rank mod visible GPUs>``. CPU: torch threads = usable cores on
        the node / ranks on the node (at least 1), unless OMP_NUM_THREADS is set.
        """
        import torch

        want = self.device_request
        if want == "cuda" and not torch.cuda.is_available():
            from ..errors import HpcRgError
            raise HpcRgError("run.device=cuda but torch sees no CUDA device on this node; "
                             "use run.device: auto or cpu, or install a CUDA build of torch")
        if want in ("cuda", "auto") and torch.cuda.is_available():
            dev = torch.device("cuda", self.local_rank % torch.cuda.device_count())
            torch.cuda.set_device(dev)
        else:
            dev = torch.device("cpu")
            if "OMP_NUM_THREADS" not in os.environ:
                cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                    else (os.cpu_count() or 1)
                # affinity under mpirun may be one core per rank: then cores is already per rank
                per_rank = max(1, cores // self.local_size) if cores >= self.local_size else cores
                torch.set_num_threads(max(1, per_rank))
        self.device = dev
        return dev

    # ------------------------------------------------------------------ helpers
    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (loop decisions)."""
        from mpi4py import MPI
        return bool(self.world.allreduce(bool(flag), op=MPI.LOR))

    def bcast_root(self, value):
        """Rank 0's ``value`` on every rank."""
        return self.world.bcast(value, root=0)

    def free(self) -> None:
        for c in (self.slab, self.across, self.node):
            c.Free()


def world_comm():
    """``MPI.COMM_WORLD``; only ``__main__`` and tests call this."""
    from mpi4py import MPI
    return MPI.COMM_WORLD
