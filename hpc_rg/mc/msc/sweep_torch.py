"""Multi-spin-coded checkerboard sweep in torch (int64 bitwise ops; CPU or CUDA): the reference.

For each site x of the colour being updated and every lane: the z = 2d satisfied-bond bits
``~(s_x ^ s_y ^ J_xy)`` are summed by a bit-sliced counter into n_sat (3 bit planes), the
lane's class n = n_sat selects its threshold p_n (:func:`~hpc_rg.mc.msc.layout.thresholds`),
and the spin flips when the lane's uniform u < p_n, decided digit by digit, most significant
first, against the random words ``R_j`` of :mod:`hpc_rg.mc.msc.rng`::

    flip = OR_n (class_n & always_n);  undecided = ~flip
    for j = 1 .. 32:  P = OR_n (class_n & P_{n,j})
                      flip |= undecided & ~R_j & P;  undecided &= ~(R_j ^ P)

(lanes still undecided after 32 digits have u = p truncated: no flip). The loop stops when no
lane is undecided; the R_j are a pure function of (seed, word, site, counter, j), so where it
stops does not change the result. Colour of a site: (sum of global coordinates) mod 2;
colour 0 then colour 1, random counter ``2 * sweep + colour``.

The compiled CPU kernel (:mod:`hpc_rg.mc.msc.compiled`) is bit-identical.
"""

from __future__ import annotations

import functools
import math

import torch

from hpc_rg.mc.msc import rng

__all__ = ["update_colour", "sweep", "Ghosts"]

Ghosts = tuple  #: (spins below (W, *L[1:]), spins above (W, *L[1:]), J_0 below (W, *L[1:]) or None)


@functools.lru_cache(maxsize=64)
def _plan(shape: tuple, colour: int, parity0: int, ghost: bool, device: str):
    """Index tensors of one colour: sites, neighbours and bonds in the (extended) flat layout.

    Returns (local (M,), x (M,), nbr (2d, M), bond (2d, M)): ``local`` indexes the slab's
    sites (for site ids), ``x`` and ``nbr`` the spins array (with ghost planes 0 and n0 + 1
    when ``ghost``), ``bond`` the flattened coupling planes ``(d, *ext)``.
    """
    d = len(shape)
    ext = ((shape[0] + 2,) + shape[1:]) if ghost else shape
    grids = torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij")
    coords = torch.stack([g.reshape(-1) for g in grids])  # (d, N)
    sel = ((coords.sum(0) + parity0) % 2) == colour
    c = coords[:, sel]
    strides = [math.prod(shape[k + 1:]) for k in range(d)]
    estrides = [math.prod(ext[k + 1:]) for k in range(d)]
    local = sum(c[k] * strides[k] for k in range(d))
    if ghost:
        c = c.clone()
        c[0] += 1
    flat = lambda cc: sum(cc[k] * estrides[k] for k in range(d))  # noqa: E731
    x = flat(c)
    Ne = math.prod(ext)
    nbr, bond = [], []
    for mu in range(d):
        for step in (1, -1):
            y = c.clone()
            y[mu] += step
            if not (ghost and mu == 0):
                y[mu] %= ext[mu]
            fy = flat(y)
            nbr.append(fy)
            bond.append(mu * Ne + (x if step == 1 else fy))
    dev = torch.device(device)
    return (local.to(dev), x.to(dev), torch.stack(nbr).to(dev), torch.stack(bond).to(dev))


def _count(bits: list) -> list:
    """Bit-sliced count of the 0/1 lanes of ``bits``: planes [c0, c1, c2] of n = Σ bits."""
    planes = [torch.zeros_like(bits[0]) for _ in range(3)]
    for a in bits:
        carry = a
        for i in range(3):
            planes[i], carry = planes[i] ^ carry, planes[i] & carry
    return planes


def _class_masks(planes: list, z: int) -> list:
    """Lane masks of n_sat = n for n = 0..z from the count planes."""
    out = []
    for n in range(z + 1):
        m = None
        for i in range(3):
            p = planes[i] if (n >> i) & 1 else ~planes[i]
            m = p if m is None else m & p
        out.append(m)
    return out


def _extend(spins, J, ghosts):
    """Spins (W, n0 + 2, ...) and couplings (W, d, n0 + 2, ...) with the ghost planes attached."""
    below, above, j_below = ghosts
    s = torch.cat([below.unsqueeze(1), spins, above.unsqueeze(1)], 1)
    if J is None:
        return s, None
    W, d = J.shape[0], J.shape[1]
    jb = torch.zeros((W, d, 1) + J.shape[3:], dtype=J.dtype, device=J.device)
    if j_below is not None:
        jb[:, 0, 0] = j_below
    Je = torch.cat([jb, J, torch.zeros_like(jb)], 2)
    return s, Je


def update_colour(spins, J, thresholds, seed, word_ids, site_ids, counter, colour,
                  parity0=0, ghosts=None):
    """Update the sites of one colour of ``spins`` in place; returns ``spins``.

    Parameters
    ----------
    spins : int64 Tensor (W, *L), d = len(L) in 1..3, even sides (a slab: any first side)
    J : int64 Tensor (W, d, *L) or None
        Coupling bit planes (None: Ising ferromagnet).
    thresholds : int64 Tensor (W, 2d + 1, 33)
        From :func:`hpc_rg.mc.msc.layout.thresholds` (it carries the rule and the βs).
    seed : int
    word_ids : int64 Tensor (W,)
        Global ids of the words (for the random stream).
    site_ids : int64 Tensor (*L)
        Global site ids of the (slab's) sites, e.g. row-major in the full lattice.
    counter : int
        ``2 * sweep + colour``.
    colour : {0, 1}
    parity0 : int
        Parity of the global coordinates of the slab's first site (x0 mod 2 for a slab
        starting at plane x0).
    ghosts : (below, above, J_below) or None
        None: periodic along every axis. Otherwise the spin planes ``(W, *L[1:])`` just below
        and above the slab along axis 0 and the couplings ``J[:, 0]`` of the plane below
        (None for the ferromagnet).
    """
    W, shape = spins.shape[0], tuple(spins.shape[1:])
    z = 2 * len(shape)
    local, x, nbr, bond = _plan(shape, int(colour), int(parity0) % 2, ghosts is not None,
                                str(spins.device))
    s_all, J_all = (spins, J) if ghosts is None else _extend(spins, J, ghosts)
    s_flat = s_all.reshape(W, -1)
    sx = s_flat[:, x]
    sat = []
    for k in range(z):
        u = sx ^ s_flat[:, nbr[k]]
        if J_all is not None:
            u = u ^ J_all.reshape(W, -1)[:, bond[k]]
        sat.append(~u)
    masks = _class_masks(_count(sat), z)
    thr = thresholds.to(spins.device)
    flip = torch.zeros_like(sx)
    active = []
    for n in range(z + 1):
        always = thr[:, n, 0:1]
        flip |= masks[n] & always
        if bool((always != -1).any()):
            active.append(n)
    und = ~flip
    keys = rng.mix64(rng.word_keys(seed, word_ids).to(spins.device).view(W, 1)
                     ^ rng.site_keys(site_ids.reshape(-1)[local], counter).view(1, -1))
    for j in range(1, 33):
        if not bool(und.any()):
            break
        R = rng.digit_word(keys, j)
        P = torch.zeros_like(sx)
        for n in active:
            P |= masks[n] & thr[:, n, j:j + 1]
        flip |= und & ~R & P
        und &= ~(R ^ P)
    new = sx ^ flip
    if ghosts is None:
        s_flat[:, x] = new
    else:
        spins.reshape(W, -1)[:, local] = new
    return spins


def sweep(spins, J, thresholds, seed, word_ids, site_ids, sweep_index, parity0=0, n_sweeps=1):
    """Checkerboard sweeps ``sweep_index .. sweep_index + n_sweeps - 1`` (colour 0, then 1) of a
    periodic lattice, in place; see :func:`update_colour`."""
    for k in range(int(sweep_index), int(sweep_index) + int(n_sweeps)):
        for colour in (0, 1):
            update_colour(spins, J, thresholds, seed, word_ids, site_ids, 2 * k + colour, colour,
                          parity0)
    return spins
