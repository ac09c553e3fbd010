"""Halo (ghost-layer) exchange for lattices split into slabs along the first lattice axis.

A replica group of S ranks shares each configuration: slab rank r owns the planes
``[r*Lx, (r+1)*Lx)`` of the first lattice axis (axis 1 of a batched ``(B, Lx, L_2, ...)``
tensor), ``Lx = L / S``. Before a local update or measurement that needs nearest
neighbours along that axis, every rank pads its slab with one ghost plane on each side::

    padded[:, 0]      = last plane of the slab below   (rank r-1, periodic)
    padded[:, 1:-1]   = own slab
    padded[:, Lx + 1] = first plane of the slab above  (rank r+1, periodic)

which is exactly the halo layout the models' ``halo=True`` functions take
(:mod:`hpc_rg.models.lattice`). With one rank the ghosts are the periodic wrap of the
rank's own slab, so the same code path serves the undecomposed lattice.

Communication is point-to-point and non-blocking (``Isend``/``Irecv``) on contiguous host
buffers; CUDA tensors are staged through host memory. Messages are tagged by direction,
so two ranks that are each other's left and right neighbour (S = 2) exchange correctly.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["exchange_halo", "start_halo_exchange", "HaloExchange", "strip_halo"]

TAG_UP = 7101  #: message carries the sender's LAST plane to rank + 1 (its low ghost)
TAG_DOWN = 7102  #: message carries the sender's FIRST plane to rank - 1 (its high ghost)


def _host_plane(x: torch.Tensor, index: int) -> np.ndarray:
    """Plane ``x[:, index]`` as a contiguous host numpy array (bool sent as uint8)."""
    plane = x[:, index]
    if plane.dtype == torch.bool:
        plane = plane.to(torch.uint8)
    return np.ascontiguousarray(plane.detach().cpu().numpy())


class HaloExchange:
    """An exchange in flight; :meth:`wait` completes it and returns the padded tensor.

    Created by :func:`start_halo_exchange`. Between start and wait the caller may compute
    on the interior ``padded[:, 1:-1]`` (already filled), overlapping communication.

    Attributes
    ----------
    padded : Tensor, shape (B, Lx + 2, L_2, ..., L_d)
        Interior filled at start; ghost planes valid only after :meth:`wait`.
    """

    def __init__(self, x: torch.Tensor, comm):
        if x.dim() < 2:
            raise ValueError(f"halo exchange needs a batched slab (B, Lx, ...), got shape "
                             f"{tuple(x.shape)}")
        self.comm = comm
        B, Lx = x.shape[0], x.shape[1]
        self.padded = torch.empty((B, Lx + 2) + tuple(x.shape[2:]), dtype=x.dtype,
                                  device=x.device)
        self.padded[:, 1:-1] = x
        size = 1 if comm is None else comm.Get_size()
        self._requests = []
        self._recv = None
        if size == 1:
            self.padded[:, 0] = x[:, -1]
            self.padded[:, -1] = x[:, 0]
            return
        rank = comm.Get_rank()
        left, right = (rank - 1) % size, (rank + 1) % size
        send_first = _host_plane(x, 0)   # -> left neighbour's high ghost
        send_last = _host_plane(x, -1)   # -> right neighbour's low ghost
        recv_low = np.empty_like(send_last)
        recv_high = np.empty_like(send_first)
        self._recv = (recv_low, recv_high)
        self._keep = (send_first, send_last)  # buffers must live until the sends complete
        self._requests = [
            comm.Irecv(recv_low, source=left, tag=TAG_UP),
            comm.Irecv(recv_high, source=right, tag=TAG_DOWN),
            comm.Isend(send_last, dest=right, tag=TAG_UP),
            comm.Isend(send_first, dest=left, tag=TAG_DOWN),
        ]

    def wait(self) -> torch.Tensor:
        """Complete the exchange; returns :attr:`padded` with both ghost planes filled."""
        if self._requests:
            from mpi4py import MPI
            MPI.Request.Waitall(self._requests)
            self._requests = []
            recv_low, recv_high = self._recv
            dev, dt = self.padded.device, self.padded.dtype
            self.padded[:, 0] = torch.from_numpy(recv_low).to(device=dev, dtype=dt)
            self.padded[:, -1] = torch.from_numpy(recv_high).to(device=dev, dtype=dt)
            self._recv = self._keep = None
        return self.padded


def start_halo_exchange(x: torch.Tensor, comm) -> HaloExchange:
    """Post the non-blocking exchange of the boundary planes of slab ``x``.

    Parameters
    ----------
    x : Tensor, shape (B, Lx, L_2, ..., L_d)
        This rank's slab (any dtype, CPU or CUDA).
    comm : mpi4py.MPI.Comm or None
        The slab communicator; rank order = slab order along axis 1. ``None`` or a
        one-rank communicator wraps periodically without MPI.

    Returns
    -------
    HaloExchange
        Call ``.wait()`` for the padded tensor of shape (B, Lx + 2, L_2, ..., L_d).
    """
    return HaloExchange(x, comm)


def exchange_halo(x: torch.Tensor, comm) -> torch.Tensor:
    """Slab ``x`` padded with one ghost plane from each neighbour along axis 1 (blocking).

    Parameters
    ----------
    x : Tensor, shape (B, Lx, L_2, ..., L_d)
    comm : mpi4py.MPI.Comm or None
        Slab communicator (see :func:`start_halo_exchange`).

    Returns
    -------
    Tensor, shape (B, Lx + 2, L_2, ..., L_d), same dtype and device as ``x``
        ``[:, 0]`` is the last plane of the slab below, ``[:, -1]`` the first plane of
        the slab above (periodic in the slab rank).

    Notes
    -----
    Collective over ``comm`` in the sense that every rank of it must call it (each rank
    talks to its two neighbours only). Cost: 2 planes of ``B * prod(L_2..L_d)`` elements
    sent and received per rank.
    """
    return HaloExchange(x, comm).wait()


def strip_halo(padded: torch.Tensor) -> torch.Tensor:
    """Interior view ``padded[:, 1:-1]`` of a halo-padded tensor."""
    return padded[:, 1:-1]
