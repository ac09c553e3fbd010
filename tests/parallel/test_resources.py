"""Stage cost records: peak RSS grows with an allocation; usage combines ranks correctly."""

import numpy as np
import pytest
from mpi4py import MPI

from hpc_rg.parallel.resources import StageUsage, gather_usage, peak_rss_bytes


def test_peak_rss_sees_a_large_allocation():
    before = peak_rss_bytes()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    after = peak_rss_bytes()
    assert block.sum() > 0
    assert after >= before and after >= 64 * 2**20


def test_usage_attrs_and_line():
    u = StageUsage(ranks=2, seconds=10.0, items=40, peak_rss=np.array([2**30, 3 * 2**29]))
    a = u.attrs("upscale")
    assert a["upscale_items_per_second_per_rank"] == pytest.approx(2.0)
    assert list(a["upscale_peak_rss_bytes"]) == [2**30, 3 * 2**29]
    assert a["upscale_ranks"] == 2 and a["upscale_items"] == 40
    assert "40 configurations in 10.0 s on 2 rank(s)" in u.line("upscale")
    assert "1.00-1.50 GiB" in u.line("upscale")


@pytest.mark.mpi(min_size=1)
@pytest.mark.mpi4
def test_gather_usage_sums_items_and_takes_the_slowest_rank():
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    u = gather_usage(comm, seconds=1.0 + rank, items=3)
    assert u.ranks == size and u.items == 3 * size and u.seconds == 1.0 + (size - 1)
    assert u.peak_rss.shape == (size,) and (u.peak_rss > 0).all()
