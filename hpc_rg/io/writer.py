"""Parallel HDF5 writers: one small interface, two strategies.

- :class:`MpioFile`: one shared file opened by every rank with h5py's ``mpio`` driver;
  datasets and attributes are created collectively, each rank writes its own slices
  independently. Configuration data is never gathered on one rank.
- :class:`VdsFile`: fallback when h5py lacks MPI: every rank writes its own file
  ``NAME.ranks/rank<r>.h5`` and rank 0 writes the master ``NAME`` whose datasets are
  HDF5 virtual datasets with the same layout, mapping each rank's declared slices.

Both write ``NAME.partial`` and rename it to ``NAME`` in :meth:`OutputFile.close` with
``complete=True``, so a reader never sees a half-written file under the final name.
Open with :func:`open_output`, which picks the strategy and warns once when it falls back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import warnings
from abc import ABC, abstractmethod
from pathlib import Path

import h5py
import numpy as np

from ..errors import OutputError
from . import schema


def mpi_available() -> bool:
    """True when this h5py was built against parallel HDF5."""
    return bool(h5py.get_config().mpi)


_warned = False


def open_output(path, comm, mode: str = "w", writer: str = "auto") -> "OutputFile":
    """Open the stage output ``path`` (final name) for writing by all ranks of ``comm``.

    Parameters
    ----------
    path : str or Path
        Final file name, e.g. ``runs/x/samples.h5``; data goes to ``path + '.partial'``.
    comm : mpi4py communicator
    mode : {"w", "r+"}
        ``w`` creates (truncates) the partial file; ``r+`` reopens it to resume.
    writer : {"auto", "mpio", "vds"}
    """
    global _warned
    if writer == "auto":
        writer = "mpio" if mpi_available() else "vds"
        if writer == "vds" and not _warned and comm.Get_rank() == 0:
            warnings.warn("h5py was built without MPI: writing one file per rank plus a "
                          "virtual-dataset master file (reinstall h5py with HDF5_MPI=ON, "
                          "see INSTALL.md)", RuntimeWarning, stacklevel=2)
            _warned = True
    cls = {"mpio": MpioFile, "vds": VdsFile}[writer]
    return cls(Path(path), comm, mode)


_REASONS = {errno.ENOSPC: "the disk is full", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
            errno.EDQUOT: "disk quota exceeded", errno.ENOTDIR: "a parent is not a directory",
            errno.ENOENT: "no such directory", errno.EISDIR: "is a directory",
            errno.EIO: "input/output error"}


def _free_bytes(path) -> int | None:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p if p.is_dir() else p.parent)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


#: less free space than this after a failed write: report "the disk is full"
NEARLY_FULL = 1 << 20


def os_error_reason(e: Exception, path=None) -> str:
    """A short, one-line reason for ``e`` (errno when known, else HDF5's first line).

    HDF5 through MPI-IO loses errno (``ValueError: Unable to create dataset (file write
    failed)``); with ``path`` a failed write on a file system with (almost) no free space
    left is reported as a full disk."""
    code = getattr(e, "errno", None)
    if code in _REASONS:
        return _REASONS[code]
    text = " ".join(str(e).split())  # HDF5 messages can span lines
    low = text.lower()
    if path is not None and ("write failed" in low or "can't write" in low
                             or "unable to write" in low or "file write" in low):
        free = _free_bytes(path)
        if free is not None and free < NEARLY_FULL:
            return f"the disk is full ({free // 1024} KiB free)"
    # HDF5 through MPI-IO often loses errno: recognise the common cases by their text
    if "no space" in low or "disk full" in low or "enospc" in low:
        return "the disk is full"
    if "permission denied" in low:
        return "permission denied"
    if "read-only file system" in low:
        return "read-only file system"
    return (e.strerror if getattr(e, "strerror", None) else text)[:200] or type(e).__name__


def _os_error(path, e: Exception) -> OutputError:
    return OutputError(f"{path}: cannot write output: {os_error_reason(e, path)}")


def is_io_failure(e: Exception) -> bool:
    """An exception from h5py that is a failed file operation, not a programming error
    (h5py raises ValueError/RuntimeError for some HDF5 write failures)."""
    if isinstance(e, OSError):
        return True
    low = str(e).lower()
    return any(w in low for w in ("write failed", "file write", "can't write", "unable to write",
                                  "unable to flush", "can't flush", "no space", "unable to close",
                                  "can't close", "file close failed", "truncate", "failed writing",
                                  "errno"))


_IO_ERRORS = (OSError, ValueError, RuntimeError)


@contextlib.contextmanager
def _io_errors(path):
    """A failed file operation inside (disk full, quota, permissions; see
    :func:`is_io_failure`) becomes a one-line :class:`OutputError` naming ``path``; any
    other exception is a bug and passes unchanged."""
    try:
        yield
    except _IO_ERRORS as e:
        if not is_io_failure(e):
            raise
        raise _os_error(path, e) from None


def fsync_path(path, directory: bool = False) -> None:
    """fsync a file (or a directory, to persist a rename in it); best effort for dirs."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems refuse fsync on directories
            raise
    finally:
        os.close(fd)


def partial_is_usable(path, comm) -> bool:
    """Collective: can ``path + '.partial'`` be reopened for resuming (False after a crash
    that left it unreadable, e.g. killed while HDF5 metadata were being written)?"""
    partial = Path(path).with_name(Path(path).name + schema.PARTIAL_SUFFIX)
    ok = False
    if comm.Get_rank() == 0:
        try:
            with h5py.File(partial, "r", locking=False) as f:
                ok = bool(f.attrs.get(schema.ATTR_STAGE) is not None or len(f))
        except Exception:
            ok = False
    return bool(comm.bcast(ok, root=0))


class OutputFile(ABC):
    """A stage's output file, written by all ranks of ``comm``.

    Collective calls (every rank, same arguments): ``create_dataset``, ``set_attrs``,
    ``close``. Independent calls (each rank for its own data): ``write``, ``own``.
    """

    def __init__(self, path: Path, comm, mode: str):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + schema.PARTIAL_SUFFIX)
        self.comm = comm
        self.mode = mode

    @abstractmethod
    def create_dataset(self, name: str, shape, dtype, chunks=None, attrs=None) -> None:
        """Collective: allocate dataset ``name`` (e.g. ``L16/configs``)."""

    @abstractmethod
    def set_attrs(self, name: str, attrs: dict) -> None:
        """Collective: set attributes on the object ``name`` ("/" for the root)."""

    @abstractmethod
    def write(self, name: str, selection: tuple, data: np.ndarray) -> None:
        """Independent: write ``data`` into ``name[selection]``."""

    @abstractmethod
    def attrs(self, name: str) -> dict:
        """Attributes of ``name`` as this rank sees them."""

    @abstractmethod
    def read(self, name: str, selection=()) -> np.ndarray:
        """Read back ``name[selection]`` (this rank's own slices)."""

    def own(self, name: str, selection: tuple) -> None:
        """Declare that this rank writes ``name[selection]`` (needed by the VDS fallback)."""

    def put(self, name: str, selection: tuple, data: np.ndarray) -> None:
        """:meth:`own` then :meth:`write`: this rank's slice ``name[selection] = data``."""
        self.own(name, selection)
        self.write(name, selection, data)

    def has(self, name: str) -> bool:
        return name in self._h5

    def flush(self) -> None:
        """Collective: push data and metadata to the file (call before a checkpoint that
        declares the data written)."""
        with _io_errors(self.partial):
            self._h5.flush()

    def close(self, complete: bool = False) -> None:
        """Collective: close; with ``complete=True`` mark the file complete and rename it."""
        with _io_errors(self.path):
            if complete:
                self.set_attrs("/", {schema.ATTR_COMPLETE: True})
            self._close_files()
            self.comm.Barrier()
            if complete and self.comm.Get_rank() == 0:
                fsync_path(self.partial)  # data on disk before the name says "complete"
                os.replace(self.partial, self.path)
                fsync_path(self.path.parent, directory=True)
            self.comm.Barrier()

    @abstractmethod
    def _close_files(self) -> None: ...


class MpioFile(OutputFile):
    """One shared HDF5 file written through MPI-IO."""

    def __init__(self, path, comm, mode):
        super().__init__(path, comm, mode)
        with _io_errors(self.partial):
            if mode == "w" and comm.Get_rank() == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            comm.Barrier()
            self._h5 = h5py.File(self.partial, mode, driver="mpio", comm=comm)

    def create_dataset(self, name, shape, dtype, chunks=None, attrs=None):
        # Early allocation (the parallel-HDF5 default, made explicit): every chunk gets its
        # file space at creation, so later independent writes of disjoint slices change no
        # metadata and need no collectives; a job killed between flushes cannot leave a
        # chunk index half-updated.
        with _io_errors(self.partial):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            ds = self._h5.create_dataset(name, shape=tuple(shape), dtype=dtype, chunks=chunks,
                                         fillvalue=None, dcpl=dcpl)
            for k, v in (attrs or {}).items():
                ds.attrs[k] = v

    def set_attrs(self, name, attrs):
        obj = self._h5[name] if name != "/" else self._h5
        with _io_errors(self.partial):
            for k, v in attrs.items():
                obj.attrs[k] = v

    def write(self, name, selection, data):
        with _io_errors(self.partial):
            self._h5[name][selection] = data

    def attrs(self, name):
        obj = self._h5[name] if name != "/" else self._h5
        return dict(obj.attrs)

    def read(self, name, selection=()):
        return self._h5[name][selection]

    def _close_files(self):
        self._h5.close()


class VdsFile(OutputFile):
    """One HDF5 file per rank plus a master file of virtual datasets (no MPI-IO needed)."""

    def __init__(self, path, comm, mode):
        super().__init__(path, comm, mode)
        self.rank_dir = self.path.with_name(self.path.name + ".ranks")
        rank = comm.Get_rank()
        self.rank_path = self.rank_dir / f"rank{rank}.h5"
        with _io_errors(self.path):
            if mode == "w" and rank == 0:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(self.rank_dir, ignore_errors=True)
                self.rank_dir.mkdir()
                h5py.File(self.partial, "w").close()  # the run-in-progress marker
            comm.Barrier()
        with _io_errors(self.rank_path):
            self._h5 = h5py.File(self.rank_path, mode)
        self._layout: dict[str, tuple] = {}  # name -> (shape, dtype, attrs)
        self._root_attrs: dict = {}
        self._group_attrs: dict[str, dict] = {}
        self._owned: dict[str, list] = {}
        if mode == "r+":
            self._load_manifest()

    # the per-rank file keeps the manifest so a resumed run can rebuild the master
    def _load_manifest(self):
        for name, obj in _walk(self._h5):
            if isinstance(obj, h5py.Dataset):
                self._layout[name] = (obj.shape, obj.dtype, dict(obj.attrs))
                owned = obj.attrs.get("_owned")
                if owned is not None:
                    self._owned[name] = [tuple(tuple(r) for r in row) for row in
                                         np.asarray(owned).reshape(-1, len(obj.shape), 2)]
            elif name:
                self._group_attrs[name] = dict(obj.attrs)
        self._root_attrs = dict(self._h5.attrs)

    def create_dataset(self, name, shape, dtype, chunks=None, attrs=None):
        ds = self._h5.create_dataset(name, shape=tuple(shape), dtype=dtype, chunks=chunks)
        for k, v in (attrs or {}).items():
            ds.attrs[k] = v
        self._layout[name] = (tuple(shape), np.dtype(dtype), dict(attrs or {}))

    def set_attrs(self, name, attrs):
        obj = self._h5[name] if name != "/" else self._h5
        for k, v in attrs.items():
            obj.attrs[k] = v
        if name == "/":
            self._root_attrs.update(attrs)
        elif name in self._layout:
            self._layout[name][2].update(attrs)
        else:
            self._group_attrs.setdefault(name, {}).update(attrs)

    def own(self, name, selection):
        shape = self._layout[name][0]
        box = _box(selection, shape)
        boxes = self._owned.setdefault(name, [])
        if box not in boxes:
            boxes.append(box)
            self._h5[name].attrs["_owned"] = np.asarray(boxes, dtype=np.int64)

    def write(self, name, selection, data):
        with _io_errors(self.rank_path):
            self._h5[name][selection] = data

    def attrs(self, name):
        obj = self._h5[name] if name != "/" else self._h5
        return {k: v for k, v in obj.attrs.items() if k != "_owned"}

    def read(self, name, selection=()):
        return self._h5[name][selection]

    def _close_files(self):
        self._h5.close()
        owned = self.comm.gather(self._owned, root=0)
        if self.comm.Get_rank() == 0:
            self._write_master(owned)

    def _write_master(self, owned_by_rank):
        with h5py.File(self.partial, "w") as master:
            for k, v in self._root_attrs.items():
                master.attrs[k] = v
            master.attrs[schema.ATTR_WRITER] = "vds"
            for gname, gattrs in self._group_attrs.items():
                g = master.require_group(gname)
                for k, v in gattrs.items():
                    g.attrs[k] = v
            for name, (shape, dtype, attrs) in self._layout.items():
                layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
                for r, owned in enumerate(owned_by_rank):
                    rel = os.path.join(self.rank_dir.name, f"rank{r}.h5")
                    for box in owned.get(name, []):
                        sel = tuple(slice(a, b) for a, b in box)
                        src = h5py.VirtualSource(rel, name, shape=shape, dtype=dtype)
                        layout[sel] = src[sel]
                parent = name.rsplit("/", 1)[0] if "/" in name else ""
                if parent:
                    master.require_group(parent)
                ds = master.create_virtual_dataset(name, layout, fillvalue=None)
                for k, v in attrs.items():
                    if k != "_owned":
                        ds.attrs[k] = v


def _box(selection, shape) -> tuple:
    """Normalise a tuple of ints/slices to ((start, stop), ...) over every axis."""
    if not isinstance(selection, tuple):
        selection = (selection,)
    out = []
    for axis, n in enumerate(shape):
        s = selection[axis] if axis < len(selection) else slice(None)
        if isinstance(s, slice):
            a, b, step = s.indices(n)
            if step != 1:
                raise ValueError("strided selections cannot be owned")
            out.append((a, b))
        else:
            i = int(s) % n
            out.append((i, i + 1))
    return tuple(out)


def _walk(h5):
    items = [("", h5)]
    h5.visititems(lambda n, o: items.append((n, o)))
    return items
