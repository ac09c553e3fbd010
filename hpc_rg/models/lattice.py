"""Periodic hypercubic lattice helpers shared by the models.

Conventions
-----------
A batch of configurations is a tensor of shape ``(B, L_1, ..., L_d)``: axis 0 is the
batch (chain) axis, axes 1..d are the lattice axes. Unit vector ``e_mu`` points along
lattice axis ``mu + 1`` (``mu = 0..d-1``). All lattice axes are periodic.

Halo mode: a slab of a domain-decomposed lattice arrives with one ghost layer on each side
of the FIRST lattice axis, shape ``(B, Lx + 2, L_2, ..., L_d)``; the ghost layers hold the
neighbouring slabs' boundary planes (filled by the halo exchange). Functions that take
``halo=True`` return results for the interior ``(B, Lx, L_2, ..., L_d)`` only, take
neighbours along axis 1 from the ghost layers and treat the other axes as periodic. They
add terms in exactly the same order as the periodic version so the results are
bit-identical to those of the undecomposed lattice.
"""

from __future__ import annotations

import torch

__all__ = [
    "lattice_dims",
    "shift",
    "neighbour_sum",
    "forward_bond_sum",
    "forward_bond_products",
    "parity",
    "checkerboard_mask",
    "global_site_ids",
    "per_chain",
    "interior",
]


def lattice_dims(x: torch.Tensor) -> int:
    """Number of lattice dimensions d of a batched configuration (``x.ndim - 1``)."""
    if x.dim() < 2:
        raise ValueError(f"expected a batched configuration (B, L, ...), got shape {tuple(x.shape)}")
    return x.dim() - 1


def shift(x: torch.Tensor, mu: int, step: int) -> torch.Tensor:
    """Periodic neighbour field: ``out[x] = x[x + step * e_mu]`` on a batched tensor.

    Parameters
    ----------
    x : Tensor, shape (B, L_1, ..., L_d) (or any leading axes; the last d are lattice)
    mu : int
        Lattice direction 0..d-1, counted from the FIRST lattice axis (axis ``x.ndim-d``
        where d is inferred as ``x.ndim - 1``).
    step : +1 or -1
    """
    return torch.roll(x, shifts=-step, dims=mu + 1)


def interior(x: torch.Tensor, halo: bool) -> torch.Tensor:
    """The interior view of a (possibly) halo-padded batched tensor (axis 1 trimmed)."""
    return x[:, 1:-1] if halo else x


def _acc_shifted(out: torch.Tensor, x: torch.Tensor, dim: int, step: int, first: bool) -> None:
    """``out (+)= x[.. x + step e ..]`` along ``dim`` (periodic), via two slice copies/adds.

    Cheaper than ``out += torch.roll(x, -step, dim)`` (no temporary, one pass less).
    """
    n = x.shape[dim]
    op = torch.Tensor.copy_ if first else torch.Tensor.add_
    if n == 1:
        op(out, x)
        return
    if step == 1:
        op(out.narrow(dim, 0, n - 1), x.narrow(dim, 1, n - 1))
        op(out.narrow(dim, n - 1, 1), x.narrow(dim, 0, 1))
    else:
        op(out.narrow(dim, 1, n - 1), x.narrow(dim, 0, n - 1))
        op(out.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1))


def neighbour_sum(x: torch.Tensor, halo: bool = False) -> torch.Tensor:
    """Sum of the 2d nearest neighbours, ``sum_mu (x_{x+e_mu} + x_{x-e_mu})``.

    Parameters
    ----------
    x : Tensor, shape (B, L_1, ..., L_d), or (B, L_1 + 2, ..., L_d) when ``halo``
    halo : bool
        Neighbours along the first lattice axis come from the ghost layers.

    Returns
    -------
    Tensor, shape (B, L_1, ..., L_d), dtype of ``x``

    Notes
    -----
    Summation order (fixed, shared by both modes): ``x+e_0, x-e_0, x+e_1, x-e_1, ...``,
    so halo-mode results are bit-identical to the periodic ones.
    """
    d = lattice_dims(x)
    if halo:
        out = x[:, 2:] + x[:, :-2]
        xi = x[:, 1:-1]
    else:
        out = torch.empty_like(x)
        _acc_shifted(out, x, 1, +1, first=True)
        _acc_shifted(out, x, 1, -1, first=False)
        xi = x
    for mu in range(1, d):
        _acc_shifted(out, xi, mu + 1, +1, first=False)
        _acc_shifted(out, xi, mu + 1, -1, first=False)
    return out


def forward_bond_sum(x: torch.Tensor) -> torch.Tensor:
    """Per-site sum of forward neighbours ``sum_mu x_{x+e_mu}`` (periodic), shape of ``x``.

    ``(x * forward_bond_sum(x)).sum()`` counts every nearest-neighbour bond exactly once.
    """
    d = lattice_dims(x)
    out = torch.roll(x, -1, 1)
    for mu in range(1, d):
        out = out + torch.roll(x, -1, mu + 1)
    return out


def forward_bond_products(x: torch.Tensor) -> list:
    """Forward bond products ``x_x * x_{x+e_mu}`` of the interior sites, one per ``mu``.

    Parameters
    ----------
    x : Tensor, shape (B, Lx + 2, L_2, ..., L_d)
        A slab with one ghost layer on each side of the first lattice axis (halo mode; for
        an undecomposed lattice the ghost layers are its periodic images).

    Returns
    -------
    list of d Tensors, each (B, Lx, L_2, ..., L_d), dtype of ``x``
    """
    s = x[:, 1:-1]
    out = [s * x[:, 2:]]
    for mu in range(1, x.dim() - 1):
        out.append(s * torch.roll(s, -1, mu + 1))
    return out


def parity(local_shape, origin=0, device="cpu") -> torch.Tensor:
    """Checkerboard colour ``(sum_mu x_mu) mod 2`` from GLOBAL coordinates.

    Parameters
    ----------
    local_shape : tuple of int
        Lattice shape of the local block ``(Lx, L_2, ..., L_d)`` (no batch axis).
    origin : int or tuple of int
        Global coordinate of the block's first site; an int is the offset along the first
        lattice axis (a slab's start), a tuple gives all axes.

    Returns
    -------
    Tensor, shape local_shape, dtype int64, values 0 or 1
    """
    local_shape = tuple(int(n) for n in local_shape)
    if isinstance(origin, int):
        origin = (origin,) + (0,) * (len(local_shape) - 1)
    total = torch.zeros(local_shape, dtype=torch.int64, device=device)
    for ax, (n, o) in enumerate(zip(local_shape, origin)):
        coord = torch.arange(o, o + n, dtype=torch.int64, device=device)
        shape = [1] * len(local_shape)
        shape[ax] = n
        total = total + coord.view(shape)
    return total % 2


def checkerboard_mask(local_shape, colour: int, origin=0, device="cpu") -> torch.Tensor:
    """Boolean mask of the sites of one checkerboard colour (global parity == colour).

    Shape ``local_shape``; broadcast it against the batch axis. For a periodic lattice
    to be bipartite every GLOBAL side length must be even; callers check that.
    """
    return parity(local_shape, origin, device) == int(colour)


def global_site_ids(global_shape, start: int = 0, stop: int | None = None, device="cpu") -> torch.Tensor:
    """Row-major global linear site indices of a slab ``[start, stop)`` of the first axis.

    Parameters
    ----------
    global_shape : tuple of int
        Full lattice shape ``(L_1, ..., L_d)``.
    start, stop : int
        Slab bounds along the first lattice axis (default: the whole lattice).

    Returns
    -------
    LongTensor, shape (stop - start, L_2, ..., L_d)
        ``id = ((x_1 * L_2) + x_2) * L_3 + ...`` with ``x_1`` global.
    """
    global_shape = tuple(int(n) for n in global_shape)
    stop = global_shape[0] if stop is None else int(stop)
    plane = 1
    for n in global_shape[1:]:
        plane *= n
    ids = torch.arange(int(start) * plane, stop * plane, dtype=torch.int64, device=device)
    return ids.view((stop - int(start),) + global_shape[1:])


def per_chain(p, ref: torch.Tensor, lattice_ndim: int | None = None):
    """Broadcast a per-chain parameter over the lattice axes.

    Parameters
    ----------
    p : float, or Tensor / array_like of shape () or (B,)
    ref : Tensor, shape (B, ...)
        Reference for device/dtype and for the number of trailing axes.
    lattice_ndim : int, optional
        Number of axes to append (default ``ref.ndim - 1``).

    Returns
    -------
    float or Tensor of shape (B, 1, ..., 1) (dtype of ``ref`` if floating)
    """
    if not torch.is_tensor(p):
        if isinstance(p, (int, float)):
            return float(p)
        p = torch.as_tensor(p)
    n = ref.dim() - 1 if lattice_ndim is None else lattice_ndim
    dtype = ref.dtype if ref.is_floating_point() else torch.float32
    p = p.to(device=ref.device, dtype=dtype)
    if p.dim() == 0:
        return p
    return p.reshape((-1,) + (1,) * n)
