"""torch.distributed (gloo) over the MPI ranks: create, use, tear down without a crash at exit."""

import pytest
import torch
from mpi4py import MPI

from hpc_rg.parallel.torch_dist import process_group


@pytest.mark.mpi(min_size=2)
def test_gloo_group_allreduce_and_teardown():
    import torch.distributed as dist
    comm = MPI.COMM_WORLD
    for _ in range(2):  # creating the group again after teardown works
        with process_group(comm, backend="gloo") as held:
            held["model"] = torch.nn.Linear(4, 4)
            held["x"] = torch.full((3,), float(comm.Get_rank() + 1))
            dist.all_reduce(held["x"])
            n = comm.Get_size()
            assert torch.equal(held["x"], torch.full((3,), n * (n + 1) / 2))
        assert not dist.is_initialized() and not held
