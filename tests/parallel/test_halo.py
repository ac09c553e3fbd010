"""Halo exchange along the first lattice axis: 1 rank (periodic wrap) and a 2-rank slab."""

import numpy as np
import pytest
import torch
from mpi4py import MPI

from hpc_rg.parallel.halo import exchange_halo, start_halo_exchange, strip_halo
from hpc_rg.models import ising
from hpc_rg.models.lattice import neighbour_sum


def _lattice(B, shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 100, (B,) + tuple(shape), generator=g).to(dtype)


@pytest.mark.parametrize("dtype", [torch.int8, torch.float32, torch.float64, torch.bool])
@pytest.mark.parametrize("shape", [(4,), (4, 3), (6, 2, 3)])
def test_single_rank_wraps_periodically(dtype, shape):
    x = _lattice(2, shape, torch.int64).to(dtype)
    for comm in (None, MPI.COMM_SELF):
        p = exchange_halo(x, comm)
        assert p.shape == (2, shape[0] + 2) + tuple(shape[1:]) and p.dtype == dtype
        assert torch.equal(strip_halo(p), x)
        assert torch.equal(p[:, 0], x[:, -1]) and torch.equal(p[:, -1], x[:, 0])


def test_halo_neighbour_sum_matches_periodic():
    x = _lattice(3, (6, 4, 4))
    assert torch.equal(neighbour_sum(exchange_halo(x, None), halo=True), neighbour_sum(x))


def test_rejects_unbatched():
    with pytest.raises(ValueError):
        exchange_halo(torch.zeros(5), None)


@pytest.mark.mpi(min_size=2)
@pytest.mark.mpi4
@pytest.mark.parametrize("dtype", [torch.int8, torch.float32, torch.bool])
def test_slabs_match_global_lattice(dtype):
    """Every rank of the world holds one slab; ghosts equal the neighbouring global planes,
    and the slab local fields equal the corresponding part of the global field."""
    comm = MPI.COMM_WORLD
    P, r = comm.Get_size(), comm.Get_rank()
    Lx = 2
    L = Lx * P
    glob = _lattice(3, (L, 4, 6), torch.int64, seed=42)
    glob = (glob % 2 * 2 - 1).to(dtype) if dtype != torch.bool else (glob % 2).bool()
    mine = glob[:, r * Lx:(r + 1) * Lx].contiguous()
    h = start_halo_exchange(mine, comm)
    assert torch.equal(strip_halo(h.padded), mine)  # interior usable before wait
    p = h.wait()
    assert torch.equal(p[:, 0], glob[:, (r * Lx - 1) % L])
    assert torch.equal(p[:, -1], glob[:, ((r + 1) * Lx) % L])
    if dtype != torch.bool:
        f_slab = ising.local_field(p, J=0.7, h=0.1, halo=True)
        f_glob = ising.local_field(glob, J=0.7, h=0.1)[:, r * Lx:(r + 1) * Lx]
        assert torch.equal(f_slab, f_glob)


@pytest.mark.mpi(min_size=2)
@pytest.mark.mpi4
def test_two_rank_subcommunicator_tags():
    """S = 2: left and right neighbour are the same rank; tags keep the planes apart."""
    comm = MPI.COMM_WORLD.Split(color=MPI.COMM_WORLD.Get_rank() // 2,
                                key=MPI.COMM_WORLD.Get_rank())
    try:
        assert comm.Get_size() == 2  # 2 and 4 ranks split into pairs
        r = comm.Get_rank()
        x = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2) + 100 * r
        p = exchange_halo(x, comm)
        other = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2) + 100 * (1 - r)
        assert torch.equal(p[:, 0], other[:, -1]) and torch.equal(p[:, -1], other[:, 0])
        assert np.isfinite(p.numpy()).all()
    finally:
        comm.Free()
