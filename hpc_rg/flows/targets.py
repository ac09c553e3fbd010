"""Target distributions for flow-based super-resolution with exact likelihoods.

A :class:`Target` is an unnormalised density ``p~(x) = exp(-S(x))`` over batched lattice
configurations ``x`` of shape ``(B, L_1, ..., L_d)`` (batch first, periodic). Flows,
independence Metropolis-Hastings (:mod:`hpc_rg.flows.mh`) and the reverse-KL loss only need
``log_prob_unnormalised(x) = -S(x)``, shape ``(B,)``, differentiable with autograd.

Implementations
---------------
* :class:`Phi4Target`: real scalar phi^4 theory in the Bauer et al. (2024) parametrisation
  (:func:`hpc_rg.models.phi4.action`); :meth:`Phi4Target.from_bachtis` builds it from the
  Bachtis et al. (2023) couplings through :func:`hpc_rg.models.phi4.bachtis_to_bauer`.
* :class:`IsingRelaxation`: the continuous relaxation of the Ising model (Zhang et al.,
  used by Li & Wang's NeuralRG and Shiina et al. 2021, eqs. 1-3)::

      pi_s(s) ∝ exp(s^T W s / 2),          W = beta J A   (A: nn adjacency of the torus)
      p(x|s)   = N(x; M s, M),              M = W + alpha I  (positive definite)
      pi_x(x)  ∝ exp(-x^T M^{-1} x / 2) prod_i cosh(x_i)                    (Shiina eq. 2)
      p(s|x)   = prod_i 1 / (1 + exp(-2 s_i x_i))                           (Shiina eq. 3)

  Derivation (why it is exact): ``p(x|s) pi_s(s) ∝ exp(-x^T M^{-1} x/2 + s^T x
  - s^T M s/2 + s^T W s/2)`` and ``s^T (M - W) s = alpha N`` is constant for spins, so the
  joint is ``∝ exp(-x^T M^{-1} x/2) prod_i exp(s_i x_i)``; summing over ``s`` gives eq. 2,
  dividing gives eq. 3. Every matrix here is circulant on the torus: ``M`` and its powers
  are applied by FFT with eigenvalues ``beta J 2 sum_mu cos(2 pi k_mu / L) + alpha``; no
  dense ``N x N`` matrix is ever formed.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from hpc_rg.models import phi4 as _phi4
from hpc_rg.models.lattice import forward_bond_sum, lattice_dims

__all__ = ["Target", "Phi4Target", "IsingRelaxation"]


def _axes(x: torch.Tensor):
    return tuple(range(1, x.dim()))


class Target:
    """Interface of an unnormalised target density over batched lattice configurations.

    Attributes
    ----------
    name : str
    dims : int
        Number of lattice dimensions d; inputs have shape ``(B, L_1, ..., L_d)``.
    shape : tuple of int or None
        Lattice shape ``(L_1, ..., L_d)`` if the target is tied to one lattice (else None).
    """

    name: str = "target"
    dims: int = 0
    shape: Optional[tuple] = None

    def log_prob_unnormalised(self, x: torch.Tensor) -> torch.Tensor:
        """``-S(x)``, shape ``(B,)``, float64, differentiable in ``x``."""
        raise NotImplementedError

    def action(self, x: torch.Tensor) -> torch.Tensor:
        """``S(x) = -log_prob_unnormalised(x)``, shape ``(B,)``."""
        return -self.log_prob_unnormalised(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_prob_unnormalised(x)

    def _check(self, x: torch.Tensor) -> None:
        d = lattice_dims(x)
        if d != self.dims:
            raise ValueError(f"{self.name}: expected {self.dims} lattice dimensions, got shape {tuple(x.shape)}")
        if self.shape is not None and tuple(x.shape[1:]) != tuple(self.shape):
            raise ValueError(f"{self.name}: expected lattice shape {self.shape}, got {tuple(x.shape[1:])}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dims={self.dims}, shape={self.shape})"


# ----------------------------------------------------------------------------------------
# phi^4
# ----------------------------------------------------------------------------------------

class Phi4Target(Target):
    """phi^4 theory, Bauer et al. (2024) eq. (3)::

        S(phi) = sum_x [(1 - 2 lam) phi_x^2 + lam phi_x^4 - 2 kappa sum_mu phi_x phi_{x+mu}]

    The target lives on the Bauer field ``phi``. Any lattice size is accepted unless ``L`` is
    given (then inputs must have shape ``(B, L, ..., L)``).

    Parameters
    ----------
    kappa, lam : float
        Hopping parameter and quartic coupling.
    dims : int
    L : int, optional

    Attributes
    ----------
    scale : float
        ``Phi_Bachtis = scale * phi`` (1.0 unless built by :meth:`from_bachtis`).
    """

    def __init__(self, kappa: float, lam: float, dims: int = 2, L: Optional[int] = None):
        self.kappa = float(kappa)
        self.lam = float(lam)
        self.dims = int(dims)
        self.shape = None if L is None else (int(L),) * self.dims
        self.scale = 1.0
        self.bachtis = None
        self.name = f"phi4(kappa={self.kappa:g}, lam={self.lam:g}, d={self.dims})"

    @classmethod
    def from_bachtis(cls, kappa_L: float, mu2_L: float, lam_L: float, dims: int = 2,
                     L: Optional[int] = None) -> "Phi4Target":
        """Target for the Bachtis et al. (2023) couplings ``(kappa_L, mu2_L, lam_L)``.

        The returned target still lives on the **Bauer field** ``phi``: with ``(kappa, lam,
        scale) = bachtis_to_bauer(kappa_L, mu2_L, lam_L, dims)``,
        ``log_prob_unnormalised(phi) = -S_Bachtis(scale * phi) = -S_Bauer(phi)``.
        Map samples with :meth:`to_bachtis_field` (``Phi = scale * phi``) and back with
        :meth:`from_bachtis_field`. Densities over ``Phi`` and ``phi`` differ by the
        constant Jacobian ``N log(scale)``, which only shifts ``log Z``.
        """
        kappa, lam, scale = _phi4.bachtis_to_bauer(kappa_L, mu2_L, lam_L, dims)
        t = cls(kappa, lam, dims=dims, L=L)
        t.scale = float(scale)
        t.bachtis = (float(kappa_L), float(mu2_L), float(lam_L))
        t.name = (f"phi4_bachtis(kappa_L={kappa_L:g}, mu2_L={mu2_L:g}, lam_L={lam_L:g}, d={dims}; "
                  f"Bauer field, scale={scale:.6g})")
        return t

    def log_prob_unnormalised(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return -_phi4.action(x, self.kappa, self.lam)

    def to_bachtis_field(self, phi: torch.Tensor) -> torch.Tensor:
        """``Phi = scale * phi``."""
        return phi * self.scale

    def from_bachtis_field(self, Phi: torch.Tensor) -> torch.Tensor:
        """``phi = Phi / scale``."""
        return Phi / self.scale


# ----------------------------------------------------------------------------------------
# continuous relaxation of the Ising model
# ----------------------------------------------------------------------------------------

class IsingRelaxation(Target):
    """Continuous relaxation of the ferromagnetic (or antiferromagnetic) Ising model.

    ``pi_x(x) ∝ exp(-x^T M^{-1} x / 2) prod_i 2 cosh(x_i)`` with ``M = beta J A + alpha I``
    (Shiina et al. 2021 eq. 2; see the module docstring for the derivation).

    Parameters
    ----------
    L : int or sequence of int
        Linear size (or the lattice shape); every side >= 2.
    dims : int
        Lattice dimension d (ignored when ``L`` is a sequence).
    beta : float
        Inverse temperature.
    J : float
        Coupling, ``E(s) = -J sum_<ij> s_i s_j`` (each nearest-neighbour bond once; on an
        ``L = 2`` side the two bonds between the same pair both count, as in
        :func:`hpc_rg.models.lattice.forward_bond_sum`).
    alpha : float, optional
        Diagonal shift; must make ``M`` positive definite. Default:
        ``alpha = -lambda_min(beta J A) + margin`` (``= 2 d beta |J| + margin`` for even L),
        i.e. the smallest eigenvalue of ``M`` equals ``margin``. Any valid alpha gives an
        exact relaxation; it changes only the shape of ``pi_x`` (larger alpha separates the
        two spin values more: mean ``~ alpha s``, width ``~ sqrt(alpha)``).
    margin : float
        Smallest eigenvalue of ``M`` for the default alpha (0.1).

    Notes
    -----
    ``log_prob_unnormalised`` includes the factor 2 of ``2 cosh``, so
    ``log Z_x = log Z_Ising + log_z_offset`` exactly, with
    ``log_z_offset = N/2 log(2 pi) + 1/2 log det M + alpha N / 2``
    (:meth:`log_z_ising`). Computations run in float64.
    """

    def __init__(self, L: Union[int, Sequence[int]], dims: int = 2, beta: float = 0.44, J: float = 1.0,
                 alpha: Optional[float] = None, margin: float = 0.1):
        if isinstance(L, int):
            shape = (int(L),) * int(dims)
        else:
            shape = tuple(int(n) for n in L)
        if len(shape) < 1 or min(shape) < 2:
            raise ValueError(f"IsingRelaxation needs every side >= 2, got shape {shape}")
        self.shape = shape
        self.dims = len(shape)
        self.beta = float(beta)
        self.J = float(J)
        self.n_sites = math.prod(shape)
        eig_w = self._eig_grid(alpha=0.0, full=True)
        lam_min = float(eig_w.min())
        if alpha is None:
            if margin <= 0:
                raise ValueError("margin must be positive")
            alpha = -lam_min + float(margin)
        self.alpha = float(alpha)
        if lam_min + self.alpha <= 0:
            raise ValueError(f"alpha={self.alpha} does not make beta J A + alpha I positive definite "
                             f"(need alpha > {-lam_min})")
        self._eig_cache = {}
        self.name = f"ising_relaxation(L={shape}, beta={self.beta:g}, J={self.J:g}, alpha={self.alpha:.6g})"

    # ---- spectrum --------------------------------------------------------------------
    def _eig_grid(self, alpha: float, full: bool, device="cpu") -> torch.Tensor:
        """Eigenvalues of ``beta J A + alpha I`` on the FFT grid (rfft grid unless ``full``)."""
        d = len(self.shape)
        out = None
        for ax, n in enumerate(self.shape):
            m = n // 2 + 1 if (ax == d - 1 and not full) else n
            k = torch.arange(m, dtype=torch.float64, device=device)
            c = 2.0 * torch.cos(2.0 * math.pi * k / n)
            view = [1] * d
            view[ax] = m
            c = c.view(view)
            out = c if out is None else out + c
        return self.beta * self.J * out + alpha

    def eigenvalues(self, device="cpu", full: bool = False) -> torch.Tensor:
        """Eigenvalues of ``M`` on the (r)FFT grid of the lattice axes, float64."""
        if full:
            return self._eig_grid(self.alpha, True, device)
        key = str(device)
        if key not in self._eig_cache:
            self._eig_cache[key] = self._eig_grid(self.alpha, False, device)
        return self._eig_cache[key]

    def log_det_m(self) -> float:
        """``log det M``."""
        return float(torch.log(self.eigenvalues(full=True)).sum())

    def apply_m(self, x: torch.Tensor, power: float = 1.0) -> torch.Tensor:
        """``M^power x`` by FFT over the lattice axes; ``x`` of shape ``(B, *shape)``.

        Returns float64 (differentiable). ``power = -1`` is ``M^{-1}``, ``0.5`` the
        symmetric square root.
        """
        self._check(x)
        x64 = x.to(torch.float64)
        axes = list(range(1, x.dim()))
        ev = self.eigenvalues(x.device)
        fx = torch.fft.rfftn(x64, dim=axes)
        return torch.fft.irfftn(fx * ev.pow(power), s=self.shape, dim=axes)

    # ---- densities -------------------------------------------------------------------
    def log_prob_unnormalised(self, x: torch.Tensor) -> torch.Tensor:
        """``-x^T M^{-1} x / 2 + sum_i log(2 cosh x_i)``, shape (B,), float64."""
        x64 = x.to(torch.float64)
        quad = (x64 * self.apply_m(x64, -1.0)).sum(dim=_axes(x64))
        log2cosh = F.softplus(2.0 * x64) - x64  # = log(e^x + e^-x), stable
        return -0.5 * quad + log2cosh.sum(dim=_axes(x64))

    def log_z_offset(self) -> float:
        """``log Z_x - log Z_Ising = N/2 log(2 pi) + 1/2 log det M + alpha N / 2``."""
        n = self.n_sites
        return 0.5 * n * math.log(2.0 * math.pi) + 0.5 * self.log_det_m() + 0.5 * self.alpha * n

    def log_z_ising(self, log_z_x: float) -> float:
        """Convert an estimate of ``log Z_x`` (normalisation of ``log_prob_unnormalised``)
        into ``log Z`` of the Ising model, ``Z = sum_s exp(-beta E(s))``."""
        return float(log_z_x) - self.log_z_offset()

    # ---- conditional samplers ---------------------------------------------------------
    @staticmethod
    def prob_up(x: torch.Tensor) -> torch.Tensor:
        """``P(s_i = +1 | x) = sigmoid(2 x_i)`` (Shiina eq. 3), elementwise."""
        return torch.sigmoid(2.0 * x)

    def spins_from_x(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Exact draw of ``s ~ p(s|x)``: independent sites, ``P(s_i = +1) = sigmoid(2 x_i)``.

        Returns a tensor of +-1 with ``x``'s shape and (floating) dtype.
        """
        self._check(x)
        u = torch.rand(x.shape, generator=generator, dtype=torch.float64, device=x.device)
        up = u < self.prob_up(x.detach().to(torch.float64))
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return (up.to(dtype) * 2.0 - 1.0)

    def x_from_spins(self, s: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Exact draw of ``x ~ p(x|s) = N(M s, M)``: ``x = M s + M^{1/2} eps`` (FFT), float64."""
        self._check(s)
        s64 = s.to(torch.float64)
        eps = torch.randn(s.shape, generator=generator, dtype=torch.float64, device=s.device)
        return self.apply_m(s64, 1.0) + self.apply_m(eps, 0.5)

    # ---- spin observables ------------------------------------------------------------
    def bond_sum(self, s: torch.Tensor) -> torch.Tensor:
        """``sum_<ij> s_i s_j`` per configuration, shape (B,), float64 (works for real x too)."""
        s64 = s.to(torch.float64)
        return (s64 * forward_bond_sum(s64)).sum(dim=_axes(s64))

    def energy(self, s: torch.Tensor) -> torch.Tensor:
        """Ising energy per site ``E(s)/N = -J sum_<ij> s_i s_j / N``, shape (B,), float64."""
        self._check(s)
        return -self.J * self.bond_sum(s) / self.n_sites

    def energy_given_x(self, x: torch.Tensor) -> torch.Tensor:
        """``E[E(s)/N | x] = -J sum_<ij> tanh(x_i) tanh(x_j) / N`` (improved estimator; the
        sites of a bond are distinct for L >= 2 and independent given x)."""
        self._check(x)
        return -self.J * self.bond_sum(torch.tanh(x.to(torch.float64))) / self.n_sites

    def spin_log_weight(self, s: torch.Tensor) -> torch.Tensor:
        """``log pi~_s(s) = s^T W s / 2 = -beta E(s)``, shape (B,)."""
        return self.beta * self.J * self.bond_sum(s)
