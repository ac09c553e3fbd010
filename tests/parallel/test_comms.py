"""Communicator layout for 1, 2 and 4 ranks (run also under mpirun -n 4)."""

import pytest
from mpi4py import MPI

from hpc_rg.parallel.comms import Comms
from hpc_rg.parallel.distribute import block_range, owner_of


def test_block_range_partitions():
    for n in range(0, 13):
        for parts in range(1, 6):
            got = [list(block_range(n, parts, p)) for p in range(parts)]
            assert sum(got, []) == list(range(n))
            assert max(map(len, got)) - min(map(len, got)) <= 1
            for p, items in enumerate(got):
                for i in items:
                    assert owner_of(i, n, parts) == p


@pytest.mark.mpi(min_size=1)
@pytest.mark.mpi4
def test_splits_for_every_divisor():
    world = MPI.COMM_WORLD
    size, rank = world.Get_size(), world.Get_rank()
    for S in [s for s in range(1, size + 1) if size % s == 0]:
        c = Comms(world, ranks_per_replica=S)
        assert c.n_groups == size // S and c.group == rank // S
        assert c.slab.Get_size() == S and c.slab_rank == rank % S
        assert c.across.Get_size() == size // S and c.across.Get_rank() == rank // S
        # slab members are the consecutive ranks of one group
        members = c.slab.allgather(rank)
        assert members == list(range(c.group * S, c.group * S + S))
        assert c.any(rank == size - 1) is True and c.any(False) is False
        c.free()


@pytest.mark.mpi(min_size=1)
@pytest.mark.mpi4
def test_bad_split_raises():
    world = MPI.COMM_WORLD
    with pytest.raises(ValueError):
        Comms(world, ranks_per_replica=world.Get_size() + 1)


def test_cpu_device_and_threads(monkeypatch):
    import torch
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    c = Comms(MPI.COMM_SELF, device_request="cpu")
    try:
        assert c.setup_device().type == "cpu"
        assert torch.get_num_threads() >= 1
    finally:
        torch.set_num_threads(before)
        c.free()
