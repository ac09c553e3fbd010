"""Parallel HDF5: write on N ranks (mpio and the VDS fallback), read back on 1 and N ranks."""

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from hpc_rg.io import schema
from hpc_rg.io.writer import mpi_available, open_output
from hpc_rg.parallel.distribute import block_range

SHAPE = (3, 5, 8, 8)  # (temperature, sample, x, y)


def reference():
    return np.arange(np.prod(SHAPE), dtype=np.int64).reshape(SHAPE) % 127 - 63


def write_slabs(path, comm, writer):
    """Each rank writes a slab of x for every (t, sample): the sampler's write pattern."""
    ref = reference()
    xs = block_range(SHAPE[2], comm.Get_size(), comm.Get_rank())
    f = open_output(path, comm, "w", writer=writer)
    f.set_attrs("/", {schema.ATTR_SEED: 7})
    f.create_dataset("L8/configs", SHAPE, np.int8, chunks=(1, 1, 8, 8), attrs={"axes": "t,s,x,y"})
    f.create_dataset("L8/energy", SHAPE[:2], np.float64)
    f.set_attrs("L8", {"L": 8})
    for t in range(SHAPE[0]):
        sel = (t, slice(None), slice(xs.start, xs.stop))
        f.own("L8/configs", sel)
        f.write("L8/configs", sel, ref[sel].astype(np.int8))
    if comm.Get_rank() == 0:
        f.own("L8/energy", ())
        f.write("L8/energy", (), ref[:, :, 0, 0].astype(np.float64))
    assert path.with_name(path.name + ".partial").exists() or comm.Get_rank() != 0
    assert not path.exists()
    f.close(complete=True)
    return ref


def check_file(path):
    ref = reference()
    with h5py.File(path, "r") as h:
        assert h.attrs[schema.ATTR_COMPLETE]
        assert h.attrs[schema.ATTR_SEED] == 7
        assert h["L8"].attrs["L"] == 8
        assert h["L8/configs"].attrs["axes"] == "t,s,x,y"
        np.testing.assert_array_equal(h["L8/configs"][...], ref.astype(np.int8))
        np.testing.assert_array_equal(h["L8/energy"][...], ref[:, :, 0, 0])


@pytest.mark.parametrize("writer", ["mpio", "vds"])
def test_single_rank_roundtrip(tmp_path, writer):
    if writer == "mpio" and not mpi_available():
        pytest.fail("h5py lacks MPI: the install is broken (see INSTALL.md)")
    path = tmp_path / "samples.h5"
    write_slabs(path, MPI.COMM_SELF, writer)
    assert not path.with_name("samples.h5.partial").exists()
    check_file(path)


def test_vds_master_readable_from_another_directory(tmp_path, monkeypatch):
    path = tmp_path / "out" / "samples.h5"
    write_slabs(path, MPI.COMM_SELF, "vds")
    monkeypatch.chdir("/")
    check_file(path)


def test_incomplete_file_not_under_final_name(tmp_path):
    path = tmp_path / "samples.h5"
    f = open_output(path, MPI.COMM_SELF, "w", writer="mpio")
    f.create_dataset("L8/energy", (2,), np.float64)
    f.close(complete=False)
    assert not path.exists()
    with h5py.File(path.with_name("samples.h5.partial"), "r") as h:
        assert not h.attrs.get(schema.ATTR_COMPLETE, False)


def test_unwritable_output_is_a_clear_error(tmp_path):
    from hpc_rg.errors import OutputError
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    import os
    if os.geteuid() == 0:  # root ignores permissions: use a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        target = blocker / "samples.h5"
    else:
        target = ro / "samples.h5"
    with pytest.raises(OutputError) as e:
        open_output(target, MPI.COMM_SELF, "w", writer="mpio")
    assert str(target.parent) in str(e.value)


@pytest.mark.mpi(min_size=2)
@pytest.mark.mpi4
@pytest.mark.parametrize("writer", ["mpio", "vds"])
def test_parallel_roundtrip(shared_tmp, writer):
    comm = MPI.COMM_WORLD
    path = shared_tmp / f"par_{writer}.h5"
    write_slabs(path, comm, writer)
    comm.Barrier()
    # read on one rank
    if comm.Get_rank() == 0:
        check_file(path)
    # read on all ranks, each its own block of temperatures, with the mpio driver
    ref = reference()
    if writer == "mpio":
        with h5py.File(path, "r", driver="mpio", comm=comm) as h:
            ts = block_range(SHAPE[0], comm.Get_size(), comm.Get_rank())
            np.testing.assert_array_equal(h["L8/configs"][ts.start:ts.stop], ref[ts.start:ts.stop])
    comm.Barrier()
