"""A torch.distributed process group on top of an MPI communicator, torn down safely.

Launching from mpirun/srun: rank 0 picks a free port and broadcasts it with its address,
every rank sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``
and joins the group (gloo on CPU, NCCL on GPUs).

Teardown matters: with gloo (torch 2.13) a process can abort at interpreter exit *after*
its work succeeded (``terminate called without an active exception``) when the process
group's worker thread releases a Python object during shutdown. Measured on this platform:
7 of 12 runs without cleanup, 0 of 44 with barrier, dropping every reference to
engine/model/optimizer/tensors, ``gc.collect()``, then ``destroy_process_group()``. Hence
:func:`process_group` is a context manager whose exit does exactly that, and callers keep
their torch objects inside a holder they clear (see ``holder`` below).
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _master_address(comm) -> str:
    """Rank 0's address: loopback when the whole job is on one node."""
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    single_node = node.Get_size() == comm.Get_size()
    node.Free()
    if single_node:
        return "127.0.0.1"
    return os.environ.get("HPC_RG_MASTER_ADDR") or socket.gethostbyname(socket.gethostname())


@contextlib.contextmanager
def process_group(comm, backend: str | None = None, local_rank: int = 0):
    """Create the default torch process group over the ranks of ``comm``.

    Yields a dict ``holder``: put every torch object that lives as long as the group
    (DeepSpeed engine, model, optimizer, tensors) into it; it is cleared before teardown.

    Parameters
    ----------
    comm : mpi4py communicator
    backend : {"gloo", "nccl"}, optional
        Default: nccl when CUDA is available, else gloo.
    """
    import torch
    import torch.distributed as dist

    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    rank, size = comm.Get_rank(), comm.Get_size()
    addr = _master_address(comm)
    port = comm.bcast(_free_port() if rank == 0 else None, root=0)
    addr = comm.bcast(addr if rank == 0 else None, root=0)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(local_rank),
                      MASTER_ADDR=addr, MASTER_PORT=str(port))
    dist.init_process_group(backend=backend, rank=rank, world_size=size)
    holder: dict = {}
    try:
        yield holder
    except BaseException:
        holder.clear()  # no collectives here: other ranks may never arrive; the job aborts
        raise
    teardown(holder)


def teardown(holder: dict | None = None) -> None:
    """Barrier, drop references, collect garbage, destroy the process group (in that order)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    with contextlib.suppress(Exception):
        dist.barrier()
    if holder is not None:
        holder.clear()
    gc.collect()
    dist.destroy_process_group()
