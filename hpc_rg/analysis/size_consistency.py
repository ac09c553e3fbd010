"""Equilibrium across sizes: a Monte Carlo ensemble must not be less correlated than a
smaller one.

The full (not connected) susceptibility

* Edwards-Anderson: ``chi_SG = N [<q^2>]``, the sum over the torus of the non-negative
  correlation ``[<s_0 s_r>^2]``;
* Ising and φ⁴: ``chi_full = N <m^2>`` (φ⁴: ``m`` the spatial mean of φ), the sum of the
  non-negative (Griffiths) correlation ``<s_0 s_r>``;

is non-decreasing in L at every temperature in equilibrium: above the critical point it
grows towards its infinite-volume limit, at and below it grows like L^(2-eta) or L^d. A
run still coarsening from a random start has correlations shorter than equilibrium, and a
larger lattice takes longer (the spin-glass correlation length grows only like t^(1/z)
with z ≈ 6.9 T_c/T), so an ensemble that is far from equilibrium typically shows a
*smaller* susceptibility than a smaller, equilibrated size. The per-sample certificate
(:mod:`.equilibration`), which compares the halves of one run, cannot see an aging that is
slow on the scale of the run (measured: a 64³ ±J run passed 15/16 samples with chi_SG
10-45 % below the equilibrated 32³ reference, docs/validation.md); this check can.

:func:`check_sizes` compares every pair of neighbouring sizes ``L_s < L_l`` of the same
model at the temperatures (φ⁴: couplings) of the larger size inside the grid of the
smaller one (its curve linearly interpolated, the interpolated error ``w e_1 + (1 - w)
e_2`` an upper bound), ``z = (chi_l - chi_s) / sqrt(e_l^2 + e_s^2)`` (independent
ensembles), and flags every temperature where ``z < -limit`` (one-sided; default 4, as
there are many temperatures). A shortfall spread over all temperatures is tested once per
pair: the mean over the common temperatures of ``ln chi_l - ln chi_s``, with a jackknife
error on each side (the leave-one-block-out replicas of all temperatures together, so the
correlation between temperatures, which share disorder samples and tempering, is kept),
flagged when its z-score is below ``-combined_limit`` (default 3: one test per pair).
Measured (docs/validation.md): the 64³ run above gives z = -3.9 against the 32³
reference; equilibrated 8³, 16³, 32³ runs give +15 and +4.7.
A pass is not a certificate: it only says that nothing contradicts equilibrium.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io import schema
from ..models.spec import spec_for
from . import observables as obs
from .summary import _bins
from .versus_mc import match_rows

__all__ = ["SizeCurve", "SizePair", "size_curve", "check_sizes", "DEFAULT_LIMIT",
           "DEFAULT_COMBINED_LIMIT", "OBSERVABLE_NAME"]

#: one-sided z limit, per temperature, below which a larger size is flagged
DEFAULT_LIMIT = 4.0
#: one-sided z limit of the mean log ratio over the temperatures (one test per pair)
DEFAULT_COMBINED_LIMIT = 3.0
#: what is compared, per model family (disordered?)
OBSERVABLE_NAME = {True: "chi_SG", False: "chi_full"}


@dataclass
class SizeCurve:
    """One Monte Carlo size: the full susceptibility per grid point, jackknife errors.

    ``grid``, ``chi``, ``err``: (T,); ``replicas`` (n_blocks, T): the jackknife
    leave-one-block-out estimates. ``samples``: disorder samples used (EA; 0 for clean
    models). ``path``: the file it came from.
    """

    L: int
    model: str
    grid: np.ndarray
    chi: np.ndarray
    err: np.ndarray
    replicas: np.ndarray
    samples: int = 0
    path: str = ""

    @property
    def observable(self) -> str:
        return OBSERVABLE_NAME[spec_for(self.model).disordered]


@dataclass
class SizePair:
    """Larger size ``large`` against smaller ``small`` at the larger one's grid points
    ``T`` (n,) inside the smaller one's grid; ``z`` (n,) as in the module docstring;
    ``log_ratio`` +- ``log_ratio_err``: the mean over those grid points of
    ``ln chi_l - ln chi_s`` (jackknife on each side, the sides independent), and
    ``log_ratio_z`` its z-score: the test with power against a shortfall that is small at
    each temperature but shared by all."""

    small: SizeCurve
    large: SizeCurve
    T: np.ndarray
    chi_small: np.ndarray
    err_small: np.ndarray
    chi_large: np.ndarray
    err_large: np.ndarray
    z: np.ndarray
    limit: float
    combined_limit: float
    log_ratio: float = float("nan")
    log_ratio_err: float = float("nan")
    log_ratio_z: float = float("nan")

    @property
    def failed(self) -> np.ndarray:
        """(n,) bool: the larger size's susceptibility is significantly below the smaller's."""
        return np.isfinite(self.z) & (self.z < -self.limit)

    @property
    def combined_failed(self) -> bool:
        """The mean log ratio over the common grid points is significantly negative."""
        return bool(np.isfinite(self.log_ratio_z) and self.log_ratio_z < -self.combined_limit)

    @property
    def passed(self) -> bool:
        return not (bool(self.failed.any()) or self.combined_failed)

    @property
    def min_z(self) -> float:
        z = self.z[np.isfinite(self.z)]
        return float(z.min()) if z.size else float("nan")

    def summary(self) -> str:
        """One line: what was compared and the verdict."""
        name, n = self.large.observable, len(self.T)
        head = (f"L={self.large.L} against L={self.small.L}: {name} at {n} common "
                f"temperature(s)")
        if not n:
            return head + (": nothing to compare (no grid point of the larger size inside "
                           "the smaller one's grid)")
        mean = (f"mean ln(chi_{self.large.L}/chi_{self.small.L}) = {self.log_ratio:+.3f}"
                f"({self.log_ratio_err:.3f}), z = {self.log_ratio_z:+.1f}")
        if self.passed:
            return head + (f": consistent (smallest z = {self.min_z:+.1f}, limit "
                           f"-{self.limit:g}; {mean}, limit -{self.combined_limit:g})")
        bad = np.flatnonzero(self.failed)
        worst = ""
        if bad.size:
            i = int(bad[np.argmin(self.z[bad])])
            worst = (f"; {len(bad)} of {n} temperatures below -{self.limit:g}, smallest z = "
                     f"{self.z[i]:+.1f} at T={self.T[i]:.4g}: {self.chi_large[i]:.4g}"
                     f"({self.err_large[i]:.2g}) vs {self.chi_small[i]:.4g}"
                     f"({self.err_small[i]:.2g})")
        return (head + f": L={self.large.L} is BELOW L={self.small.L} ({mean}, limit "
                f"-{self.combined_limit:g}{worst}): in "
                f"equilibrium it cannot be; the larger ensemble is probably not equilibrated "
                f"(or the smaller one is not)")


def size_curve(group, ids=None, path: str = "") -> SizeCurve:
    """The susceptibility of one Monte Carlo size group (reads only the scalar datasets).

    ``ids``: EA disorder samples to use (default all; pass the certified ones of
    :func:`hpc_rg.io.equilibrated.usable_disorder_samples`). Jackknife blocks: one per
    disorder sample (EA; thermal averages per sample first) or, for clean models, equal
    blocks of consecutive configurations, the same windows at every grid point (a multiple
    of the chain count, as in the sample stage's table), so that the leave-one-out
    replicas carry the correlations between grid points.
    """
    a = group.attrs
    model, L, dims = str(a["model"]), int(a["L"]), int(a["dims"])
    N = L ** dims
    spec = spec_for(model)
    grid_name = schema.COUPLINGS if spec.continuous else schema.TEMPERATURES
    grid = np.asarray(group[grid_name][...], dtype=np.float64)
    used = 0
    if spec.disordered:
        q = group[schema.OVERLAP]  # (D, T, S, P)
        sel = np.arange(q.shape[0]) if ids is None else np.asarray(ids, dtype=np.int64)
        used = len(sel)
        block_means = np.stack([np.mean(np.asarray(q[int(d)], dtype=np.float64) ** 2,
                                        axis=(1, 2)) for d in sel])  # (D, T)
    else:
        m = np.asarray(group[schema.PHI_MEAN if spec.continuous else schema.MAGNETIZATION][...],
                       dtype=np.float64)  # (T, n)
        nb = _bins(m.shape[1], int(a.get(schema.GROUP_ATTR_CHAINS, 1)))
        per = m.shape[1] // nb
        block_means = (m[:, :nb * per] ** 2).reshape(len(grid), nb, per).mean(axis=2).T
    n = block_means.shape[0]
    total = block_means.sum(axis=0)
    chi = N * total / n
    replicas = (N * (total[None, :] - block_means) / (n - 1) if n > 1
                else np.full_like(block_means, np.nan))
    return SizeCurve(L=L, model=model, grid=grid, chi=chi, err=_jackknife_error(replicas),
                     replicas=replicas, samples=used, path=path)


def _jackknife_error(replicas: np.ndarray) -> np.ndarray:
    """Jackknife error over axis 0 of leave-one-out replicas."""
    n = replicas.shape[0]
    if n < 2:
        return np.full(replicas.shape[1:], np.nan)
    return np.sqrt((n - 1) / n * ((replicas - replicas.mean(axis=0)) ** 2).sum(axis=0))


def check_sizes(curves, limit: float = DEFAULT_LIMIT,
                combined_limit: float = DEFAULT_COMBINED_LIMIT) -> list[SizePair]:
    """Every pair of neighbouring sizes (sorted by L, per model) of ``curves``, compared
    as in the module docstring. Curves of the same size: the first is used."""
    by_model: dict[str, dict[int, SizeCurve]] = {}
    for c in curves:
        by_model.setdefault(c.model, {}).setdefault(int(c.L), c)
    pairs = []
    for sizes in by_model.values():
        ordered = [sizes[L] for L in sorted(sizes)]
        for small, large in zip(ordered, ordered[1:]):
            pairs.append(_compare(small, large, float(limit), float(combined_limit)))
    return pairs


def _compare(small: SizeCurve, large: SizeCurve, limit: float, combined_limit: float,
             ) -> SizePair:
    matched, _ = match_rows(small.grid, large.grid, large.grid, "nominal")
    rows = np.array([p[0] for p in matched], dtype=np.int64)
    i0 = np.array([p[3][0] for p in matched], dtype=np.int64)
    i1 = np.array([p[3][1] for p in matched], dtype=np.int64)
    w = np.array([p[3][2] for p in matched], dtype=np.float64)
    chi_s = w * small.chi[i0] + (1 - w) * small.chi[i1]
    err_s = w * small.err[i0] + (1 - w) * small.err[i1]  # an upper bound
    chi_l, err_l = large.chi[rows], large.err[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (chi_l - chi_s) / np.hypot(err_l, err_s)
    pair = SizePair(small=small, large=large, T=large.grid[rows], chi_small=chi_s,
                    err_small=err_s, chi_large=chi_l, err_large=err_l, z=z, limit=limit,
                    combined_limit=combined_limit)
    if len(rows) and np.all(chi_s > 0) and np.all(chi_l > 0):
        rep_s = w * small.replicas[:, i0] + (1 - w) * small.replicas[:, i1]  # (n_s, n)
        rep_l = large.replicas[:, rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            f_s = np.log(rep_s).mean(axis=1)
            f_l = np.log(rep_l).mean(axis=1)
        pair.log_ratio = float(np.log(chi_l).mean() - np.log(chi_s).mean())
        pair.log_ratio_err = float(np.hypot(_jackknife_error(f_s[:, None])[0],
                                            _jackknife_error(f_l[:, None])[0]))
        if pair.log_ratio_err > 0:
            pair.log_ratio_z = pair.log_ratio / pair.log_ratio_err
    return pair
