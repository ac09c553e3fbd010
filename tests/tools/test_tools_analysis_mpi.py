"""Observable tables under MPI: the world's result equals one rank's, bit for bit."""

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from hpc_rg.analysis.tables import group_table
from hpc_rg.io import schema

pytestmark = pytest.mark.mpi


def _write(path):
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        f.attrs.update({schema.ATTR_SCHEMA: 1, schema.ATTR_VERSION: "0.1.0",
                        schema.ATTR_STAGE: "sample", schema.ATTR_CONFIG: ""})
        g = f.create_group("L8")  # clean ising: 3 temperatures, 2 chains of 24
        g.attrs.update(model="ising", dims=2, L=8, chains=2, source="monte_carlo")
        s = rng.choice(np.array([-1, 1], np.int8), size=(3, 48, 8, 8))
        g["configs"] = s
        g["magnetization"] = s.mean(axis=(2, 3))
        g["energy"] = rng.normal(size=(3, 48))
        g["temperatures"] = [2.0, 2.3, 2.6]
        e = f.create_group("L4")  # EA Monte Carlo: 3 disorder samples, 4 replicas
        e.attrs.update(model="edwards_anderson", dims=3, L=4, source="monte_carlo")
        x = rng.choice(np.array([-1, 1], np.int8), size=(3, 2, 5, 4, 4, 4, 4))
        pairs = [(a, b) for a in range(4) for b in range(a + 1, 4)]
        e["configs"] = x
        e["overlap"] = np.stack([(x[:, :, :, a] * x[:, :, :, b]).mean(axis=(3, 4, 5))
                                 for a, b in pairs], axis=-1)
        e["link_overlap"] = rng.normal(size=(3, 2, 5, 6))
        e["energy"] = rng.normal(size=(3, 2, 5, 4))
        e["temperatures"] = [0.8, 1.2]


@pytest.mark.mpi(min_size=2)
def test_world_equals_one_rank(shared_tmp):
    comm = MPI.COMM_WORLD
    path = shared_tmp / "samples.h5"
    if comm.Get_rank() == 0:
        _write(path)
    comm.Barrier()
    with h5py.File(path, "r") as f:
        for L in (8, 4):
            world = group_table(f[f"L{L}"], comm, n_bins=4 if L == 8 else None)
            alone = group_table(f[f"L{L}"], None, n_bins=4 if L == 8 else None)
            assert world.values.keys() == alone.values.keys()
            for k in world.values:
                np.testing.assert_array_equal(world.values[k], alone.values[k])
                np.testing.assert_array_equal(world.errors[k], alone.errors[k])
            np.testing.assert_array_equal(world.two_point, alone.two_point)
            np.testing.assert_array_equal(world.two_point_err, alone.two_point_err)
            assert world.n_bins == (4 if L == 8 else 3)
    comm.Barrier()
