"""Rank checkpoints hold tensors and plain data only and are read with weights_only=True:
a run directory copied from elsewhere cannot make ``--resume`` execute code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mpi4py import MPI

from hpc_rg.errors import InputFileError
from hpc_rg.io.checkpoint import RankCheckpoints, from_plain, to_plain
from helpers import RunsCode


def test_state_with_numpy_round_trips_exactly(tmp_path):
    state = {"ensemble": {"chain_ids": np.arange(5, dtype=np.int64), "x0": 0,
                          "local_shape": (8, 8), "config": torch.randn(5, 8, 8),
                          "temp_index": np.array([0, 1, 0, 1, 0]),
                          "acceptance": (np.ones(5), 3), "warned": np.zeros(2, dtype=bool),
                          "tempering": None, "generators": [torch.ByteTensor([1, 2, 3])]},
             "buffer": {"labels": [np.arange(3)], "scalars": [{"energy": np.float64([1.5, -2.0])}],
                        "configs": [np.ones((2, 4), dtype=np.int8)], "pairs": [{}]},
             "chunks_done": 2, "flag": np.float32(0.5), 7: "int keys too"}
    ck = RankCheckpoints(tmp_path, "sample", MPI.COMM_SELF)
    ck.save(0, state)
    seq, back = ck.load_latest()
    assert seq == 0
    e = back["ensemble"]
    assert isinstance(e["chain_ids"], np.ndarray) and e["chain_ids"].dtype == np.int64
    np.testing.assert_array_equal(e["chain_ids"], np.arange(5))
    assert e["local_shape"] == (8, 8) and torch.equal(e["config"], state["ensemble"]["config"])
    assert e["warned"].dtype == bool and e["acceptance"][1] == 3
    assert back["buffer"]["configs"][0].dtype == np.int8
    assert back["buffer"]["scalars"][0]["energy"].tolist() == [1.5, -2.0]
    assert back["flag"] == 0.5 and back[7] == "int keys too"


def test_objects_are_refused_when_saving():
    class Thing:
        pass
    with pytest.raises(TypeError, match="holds a Thing"):
        to_plain({"a": [Thing()]})
    assert from_plain(to_plain({"x": (1, 2.5, None)})) == {"x": (1, 2.5, None)}


def test_pickled_object_in_a_checkpoint_is_refused_in_one_line(tmp_path):
    """A checkpoint carrying a pickled object (here one that would run a shell command) is
    refused with one clear line, and nothing of it runs."""
    marker = tmp_path / "code-ran"
    root = tmp_path / "checkpoints"
    root.mkdir()
    torch.save({"chunks_done": 1, "payload": RunsCode(marker)}, root / "sample.rank0.4.pt")
    with pytest.raises(InputFileError) as e:
        RankCheckpoints(root, "sample", MPI.COMM_SELF).load_latest()
    msg = str(e.value)
    assert "\n" not in msg and "sample.rank0.4.pt" in msg
    assert "pickled Python objects" in msg and "could run code" in msg
    assert "rerun without --resume" in msg
    assert not marker.exists()
    # the same file through the loader the old code used would have run the command
    torch.load(root / "sample.rank0.4.pt", weights_only=False)
    assert marker.exists()
