"""Real scalar phi^4 lattice field theory on the periodic hypercubic lattice.

Two parametrisations are in use in the papers this program reproduces:

* Bauer et al. (2024), eq. (3) ("hopping" form, used internally)::

      S(phi) = sum_x [ (1 - 2 lam) phi_x^2 + lam phi_x^4 - 2 kappa sum_mu phi_x phi_{x+e_mu} ]

* Bachtis et al. (2023), eq. (1), written there for d = 2 (``4 kappa_L = 2 d kappa_L``)::

      S(Phi) = -kappa_L sum_<ij> Phi_i Phi_j + (mu2_L + 2 d kappa_L)/2 sum_i Phi_i^2
               + lam_L/4 sum_i Phi_i^4

  with every nearest-neighbour bond counted once.

They describe the same theory with ``Phi = scale * phi`` (see :func:`bachtis_to_bauer`).
Couplings may be floats or tensors of shape (B,) (per chain).
"""

from __future__ import annotations

import math

import torch

from hpc_rg.models.lattice import forward_bond_sum, lattice_dims, neighbour_sum, per_chain

__all__ = [
    "action",
    "action_density",
    "bachtis_action",
    "force",
    "neighbour_sum",
    "site_action",
    "delta_action",
    "bachtis_to_bauer",
    "bauer_to_bachtis",
    "deck_couplings",
    "mean_field",
    "mean_phi2",
]


def _axes(x):
    return tuple(range(1, x.dim()))


def _p64(p, ref):
    """float, or a float64 tensor on ``ref``'s device (per-chain couplings)."""
    if isinstance(p, (int, float)):
        return float(p)
    return torch.as_tensor(p).to(device=ref.device, dtype=torch.float64)


def action(phi: torch.Tensor, kappa, lam) -> torch.Tensor:
    """Bauer action ``S = sum_x [(1-2 lam) phi^2 + lam phi^4 - 2 kappa sum_mu phi_x phi_{x+mu}]``.

    Parameters
    ----------
    phi : Tensor, shape (B, L_1, ..., L_d), floating
    kappa, lam : float or Tensor of shape (B,)
        Hopping parameter and quartic coupling (dimensionless).

    Returns
    -------
    Tensor, shape (B,), float64
    """
    lattice_dims(phi)
    p = phi.to(torch.float64)
    p2 = p * p
    s2 = p2.sum(dim=_axes(p))
    s4 = (p2 * p2).sum(dim=_axes(p))
    hop = (p * forward_bond_sum(p)).sum(dim=_axes(p))
    kappa, lam = _p64(kappa, p), _p64(lam, p)
    return (1.0 - 2.0 * lam) * s2 + lam * s4 - 2.0 * kappa * hop


def action_density(s: torch.Tensor, bonds: list, kappa: torch.Tensor,
                   lam: torch.Tensor) -> torch.Tensor:
    """Per-site Bauer action ``(1-2 lam) phi^2 + lam phi^4 - 2 kappa sum_mu phi_x phi_{x+mu}``.

    Parameters
    ----------
    s : Tensor, shape (B, *local), float64
        Fields ``phi``.
    bonds : list of d Tensors like ``s``
        Forward bond products :func:`~hpc_rg.models.lattice.forward_bond_products`.
    kappa, lam : Tensor, shape (B,)
        Each chain's couplings.

    Returns
    -------
    Tensor like ``s``, float64
    """
    kap = kappa.to(torch.float64).reshape((-1,) + (1,) * (s.dim() - 1))
    lam = lam.to(torch.float64).reshape((-1,) + (1,) * (s.dim() - 1))
    s2 = s * s
    return (1.0 - 2.0 * lam) * s2 + lam * s2 * s2 - 2.0 * kap * sum(bonds[1:], bonds[0])


def bachtis_action(Phi: torch.Tensor, kappa_L, mu2_L, lam_L) -> torch.Tensor:
    """Bachtis action ``-kappa_L sum_<ij> Phi_i Phi_j + (mu2_L + 2 d kappa_L)/2 sum Phi^2 + lam_L/4 sum Phi^4``.

    Shapes and dtypes as :func:`action`; ``d = Phi.ndim - 1``.
    """
    d = lattice_dims(Phi)
    p = Phi.to(torch.float64)
    p2 = p * p
    s2 = p2.sum(dim=_axes(p))
    s4 = (p2 * p2).sum(dim=_axes(p))
    hop = (p * forward_bond_sum(p)).sum(dim=_axes(p))
    kL, m2, lL = _p64(kappa_L, p), _p64(mu2_L, p), _p64(lam_L, p)
    return -kL * hop + 0.5 * (m2 + 2.0 * d * kL) * s2 + 0.25 * lL * s4


def site_action(phi: torch.Tensor, nn: torch.Tensor, kappa, lam) -> torch.Tensor:
    """The part of S that depends on ``phi_x`` with its neighbours fixed.

    ``s_x(phi) = (1 - 2 lam) phi^2 + lam phi^4 - 2 kappa phi * nn_x`` where ``nn_x`` is the
    sum of the 2d neighbours (:func:`neighbour_sum`). Shapes: (B, *L) elementwise;
    ``kappa, lam`` float or (B,).
    """
    kappa, lam = per_chain(kappa, phi), per_chain(lam, phi)
    p2 = phi * phi
    return (1.0 - 2.0 * lam) * p2 + lam * p2 * p2 - 2.0 * kappa * phi * nn


def delta_action(phi_old: torch.Tensor, phi_new: torch.Tensor, nn: torch.Tensor, kappa, lam) -> torch.Tensor:
    """Action change of single-site updates ``phi_old -> phi_new`` (neighbours fixed).

    Valid for any set of mutually non-adjacent sites (one checkerboard colour).

    Returns
    -------
    Tensor, shape (B, *L), dtype of ``phi_old``
    """
    kappa, lam = per_chain(kappa, phi_old), per_chain(lam, phi_old)
    o2, n2 = phi_old * phi_old, phi_new * phi_new
    return (1.0 - 2.0 * lam) * (n2 - o2) + lam * (n2 * n2 - o2 * o2) - 2.0 * kappa * (phi_new - phi_old) * nn


def force(phi: torch.Tensor, kappa, lam, halo: bool = False) -> torch.Tensor:
    """Force ``F_x = -dS/dphi_x = 2 kappa sum_{y nn x} phi_y - 2 (1 - 2 lam) phi_x - 4 lam phi_x^3``.

    Parameters
    ----------
    phi : Tensor, shape (B, L_1, ..., L_d), or (B, L_1 + 2, ..., L_d) when ``halo``
        (ghost layers along the first lattice axis, see :mod:`hpc_rg.models.lattice`).
    kappa, lam : float or Tensor of shape (B,)
    halo : bool

    Returns
    -------
    Tensor, shape (B, L_1, ..., L_d), dtype of ``phi``
    """
    nn = neighbour_sum(phi, halo=halo)
    p = phi[:, 1:-1] if halo else phi
    kappa, lam = per_chain(kappa, p), per_chain(lam, p)
    return 2.0 * kappa * nn - 2.0 * (1.0 - 2.0 * lam) * p - 4.0 * lam * p * p * p


def bachtis_to_bauer(kappa_L, mu2_L, lam_L, dims: int):
    """Convert Bachtis couplings to Bauer couplings.

    Parameters
    ----------
    kappa_L, mu2_L, lam_L : float
        Couplings of Bachtis et al. (2023) eq. (1) generalised to ``dims`` dimensions.
    dims : int

    Returns
    -------
    (kappa, lam, scale) : floats
        Bauer couplings and the field scale with ``Phi_Bachtis = scale * phi_Bauer``;
        ``S_Bachtis(scale * phi) = S_Bauer(phi)`` for every field.

    Notes
    -----
    Matching coefficients with ``t = scale**2``: ``kappa_L t = 2 kappa``,
    ``(mu2_L + 2 d kappa_L) t / 2 = 1 - 2 lam`` and ``lam_L t^2 / 4 = lam``, so
    ``t`` solves ``(lam_L/2) t^2 + a t - 1 = 0`` with ``a = (mu2_L + 2 d kappa_L)/2``;
    the positive root is taken. (For ``lam_L = 0`` this needs ``a > 0``.)
    """
    a = 0.5 * (float(mu2_L) + 2.0 * dims * float(kappa_L))
    lam_L = float(lam_L)
    if lam_L > 0:
        t = 2.0 / (a + math.sqrt(a * a + 2.0 * lam_L))  # = (-a + sqrt(a^2 + 2 lam_L)) / lam_L
    elif lam_L == 0 and a > 0:
        t = 1.0 / a
    else:
        raise ValueError(f"no real field rescaling for kappa_L={kappa_L}, mu2_L={mu2_L}, lam_L={lam_L}: "
                         "need lam_L > 0, or lam_L = 0 with mu2_L + 2 d kappa_L > 0")
    return 0.5 * float(kappa_L) * t, 0.25 * lam_L * t * t, math.sqrt(t)


def deck_couplings(model, point, dims: int) -> tuple[float, float, float]:
    """Bauer couplings and field scale of one grid point of a deck.

    Parameters
    ----------
    model : ModelConfig
        The ``model:`` section (``parametrization``; ``kappa`` and ``lam``).
    point : float
        The grid value: ``kappa`` (parametrization ``bauer``, at the deck's ``lam``) or
        ``mu2`` (``bachtis``, at the deck's ``kappa`` and ``lam``).
    dims : int

    Returns
    -------
    (kappa, lam, scale) : floats
        The Bauer couplings sampled and ``scale`` with ``Phi_deck = scale * phi_Bauer``
        (1.0 for ``bauer``; :func:`bachtis_to_bauer` for ``bachtis``).
    """
    if model.parametrization == "bachtis":
        kappa, lam, scale = bachtis_to_bauer(model.kappa, point, model.lam, dims)
    else:
        kappa, lam, scale = point, model.lam, 1.0
    return float(kappa), float(lam), float(scale)


def bauer_to_bachtis(kappa, lam, dims: int, scale=None, kappa_L=None):
    """Convert Bauer couplings to Bachtis couplings (inverse of :func:`bachtis_to_bauer`).

    The map has one free parameter, the field scale: give ``scale`` (``Phi = scale*phi``)
    or the desired ``kappa_L`` (default ``kappa_L = 1``, the choice of Bachtis et al.).

    Returns
    -------
    (kappa_L, mu2_L, lam_L, scale) : floats
    """
    if scale is not None and kappa_L is not None:
        raise ValueError("give either scale or kappa_L, not both")
    kappa, lam = float(kappa), float(lam)
    if scale is None:
        kappa_L = 1.0 if kappa_L is None else float(kappa_L)
        if kappa <= 0 or kappa_L <= 0:
            raise ValueError("kappa and kappa_L must be positive to fix the scale from kappa_L")
        scale = math.sqrt(2.0 * kappa / kappa_L)
    t = float(scale) ** 2
    kappa_L = 2.0 * kappa / t
    lam_L = 4.0 * lam / (t * t)
    mu2_L = 2.0 * (1.0 - 2.0 * lam) / t - 2.0 * dims * kappa_L
    return kappa_L, mu2_L, lam_L, float(scale)


def mean_field(phi: torch.Tensor) -> torch.Tensor:
    """Volume-averaged field ``(1/N) sum_x phi_x`` per configuration, shape (B,), float64."""
    return phi.to(torch.float64).mean(dim=_axes(phi))


def mean_phi2(phi: torch.Tensor) -> torch.Tensor:
    """Volume average ``(1/N) sum_x phi_x^2`` per configuration, shape (B,), float64."""
    p = phi.to(torch.float64)
    return (p * p).mean(dim=_axes(p))
