"""The sample stage's chunk writer: the one-hyperslab path of disordered models puts every
configuration, scalar and pair observable exactly where the per-chain path (the layout's
``chain_slot``) puts it. The file object is a unit-level stand-in holding numpy arrays."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from hpc_rg.config import config_from_dict
from hpc_rg.io import schema
from hpc_rg.io.layout import SizeLayout
from hpc_rg.mc.ensemble import Ensemble
from hpc_rg.parallel.comms import Comms
from hpc_rg.pipeline import sample as stage


class ArrayFile:
    """``put(name, selection, data)`` into numpy arrays of the layout's dataset shapes."""

    def __init__(self, layout):
        self.data = {f"/g/{k}": np.full(shape, -7, dtype=np.float64)
                     for k, (shape, *_rest) in layout.datasets().items()}

    def put(self, name, selection, data):
        self.data[name][selection] = data


@pytest.mark.parametrize("kernel", ["msc", "torch"])
def test_disordered_chunk_is_written_where_each_chain_belongs(kernel):
    cfg = config_from_dict({
        "run": {"seed": 3},
        "model": {"name": "edwards_anderson", "dims": 2, "disorder": "pm1", "disorder_samples": 3,
                  "replicas": 3},
        "sample": {"L": 4, "temperatures": [0.8, 1.2, 1.7, 2.4], "kernel": kernel,
                   "tempering": {"enabled": True, "every": 1}, "samples": 6, "chunk": 6,
                   "thin": 1}})
    ens = Ensemble(cfg, Comms(MPI.COMM_SELF, 1), "cpu")
    layout = SizeLayout.from_config(cfg)
    buf = stage.ChunkBuffer()
    for _ in range(6):
        ens.sweep(1)
        buf.append(ens)
    labels = np.stack(buf.labels)
    assert len({tuple(r) for r in labels}) > 1  # tempering moved labels within the chunk
    fast = ArrayFile(layout)
    stage._write_chunk(fast, "/g", layout, ens, Comms(MPI.COMM_SELF, 1), buf, 0)
    ref = ArrayFile(layout)
    configs = np.stack(buf.configs)
    scalars = {n: np.stack([m[n] for m in buf.scalars]) for n in layout.scalar_names()}
    stage._write_chunk_by_chain(ref, "/g", layout, ens, configs, labels, scalars,
                                (slice(0, 4), slice(0, 4)), 0, True)
    for name in [schema.CONFIGS, *layout.scalar_names()]:
        key = f"/g/{name}"
        assert (ref.data[key] != -7).all(), name  # the per-chain path filled everything
        assert np.array_equal(fast.data[key], ref.data[key]), name
    for name in layout.pair_names():
        got = fast.data[f"/g/{name}"]
        want = np.stack([p[name] for p in buf.pairs], axis=2)  # (D, T, K, P)
        assert np.array_equal(got, want), name
