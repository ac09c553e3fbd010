"""What a super-resolved level is, and whether its exactness correction delivered.

Every super-resolved level group of ``upscaled.h5`` carries a certificate (attributes,
written by the upscale stage, read by ``analyze`` and the tools):

===================  =====================================================================
``sampler``          ``cnn`` | ``flow+independence_mh`` | ``flow+latent_hmc`` | ``flow``
                     (uncorrected flow samples)
``exact``            bool: the method samples the target distribution once its chain has
                     mixed (flow + MH / latent HMC); False for the CNN and uncorrected flows
``certified``        bool: exact and every grid point certified below
``certified_points`` int8 (T,): per grid point
``n_effective``      float64 (T,): effectively independent configurations (NaN: approximate
                     methods, for which it is not defined)
``certificate``      str: one line per grid point that is not certified, why, and what to
                     do ("" when all are)
``z_<obs>``,         float64 (T,): z-score and difference (SR − MC) against a Monte Carlo
``bias_<obs>``       ensemble of the same size in ``samples.h5`` (NaN where there is none);
                     ``reference`` names it
===================  =====================================================================

Independence Metropolis–Hastings (one or more chains per grid point, n rows each): a chain
is mixed when ``n >= TAU_RUNS * tau_int`` (a reliable integrated autocorrelation time
needs ~50 tau of data, Sokal 1997) and it has moved; its effectively independent
configurations are ``min(n / (2 tau_int), accepted moves + 1)``, summed over the chains,
and at least ``min_effective`` are required. Latent HMC: every row is an independent short
chain started at a flow proposal; a point is certified when the trajectories are accepted
at a rate ≥ ``MIN_HMC_ACCEPTANCE`` and at least ``MIN_HMC_MOVED`` of the rows moved
(``n_effective`` = the rows that moved). With a same-size Monte Carlo reference a point
whose main observables differ by more than ``Z_MAX`` standard errors is not certified.
Files written before certificates existed have none of these attributes:
:func:`read_certificate` then reports ``None`` (unknown), never "certified".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_EFFECTIVE", "TAU_RUNS", "Z_MAX", "Certificate", "certify_mh", "certify_hmc",
           "approximate", "compare_to_reference", "read_certificate", "status", "ADVICE"]

MIN_EFFECTIVE = 100  #: effectively independent configurations a certified point needs
TAU_RUNS = 50  #: chain length in units of tau_int for a trustworthy tau (Sokal)
Z_MAX = 4.0  #: |z| against a same-size Monte Carlo reference above which a point fails
MIN_HMC_ACCEPTANCE = 0.3
MIN_HMC_MOVED = 0.9
ADVICE = ("train the flow longer (train.flow.steps), use latent HMC (upscale.hmc.trajectories), "
          "or run more MH chains (upscale.mh_chains) over more configurations (upscale.samples)")


@dataclass
class Certificate:
    """Certificate of one level: ``sampler``, ``exact`` and per grid point arrays (T,)."""

    sampler: str
    exact: bool
    certified_points: np.ndarray
    n_effective: np.ndarray
    reasons: list

    @property
    def certified(self) -> bool:
        return bool(self.exact and self.certified_points.all())

    def text(self, L: int, grid_label: str, grid) -> str:
        """One line per uncertified point ("" when every point is certified)."""
        return "\n".join(f"L={L} {grid_label}={g:.5g}: {r}" for g, r, ok in
                         zip(grid, self.reasons, self.certified_points) if not ok)

    def attrs(self, L: int, grid_label: str, grid) -> dict:
        return {"sampler": self.sampler, "exact": bool(self.exact), "certified": self.certified,
                "certified_points": self.certified_points.astype(np.int8),
                "n_effective": np.asarray(self.n_effective, dtype=np.float64),
                "certificate": self.text(L, grid_label, grid)}


def approximate(sampler: str, n_points: int, why: str) -> Certificate:
    """An approximate method (CNN, uncorrected flow): never certified, ``why`` per point."""
    return Certificate(sampler, False, np.zeros(n_points, bool), np.full(n_points, np.nan),
                       [why] * n_points)


def certify_mh(tau, accepted, rows_per_chain, chains: int,
               min_effective: int = MIN_EFFECTIVE) -> Certificate:
    """Independence-MH certificate per grid point.

    Parameters
    ----------
    tau : float array (T,)
        Integrated autocorrelation time of the chain observable (averaged over the chains
        of the point, weighted by their lengths); NaN when a chain never changed.
    accepted : int array (T,)
        Accepted proposals per point (all chains).
    rows_per_chain : int
        Configurations per chain.
    chains : int
        MH chains per point.
    """
    tau, accepted = np.asarray(tau, float), np.asarray(accepted)
    T = len(tau)
    ok, n_eff, reasons = np.zeros(T, bool), np.zeros(T), []
    for t in range(T):
        n_total = rows_per_chain * chains
        if accepted[t] == 0 or not np.isfinite(tau[t]):
            n_eff[t] = min(chains, n_total)
            reasons.append(f"the MH chain never moved ({int(accepted[t])} of {n_total} proposals "
                           f"accepted): these are {chains} configuration(s), not an ensemble; "
                           f"{ADVICE}")
            continue
        n_eff[t] = min(n_total / (2.0 * max(tau[t], 0.5)), float(accepted[t] + chains))
        if rows_per_chain < TAU_RUNS * tau[t]:
            reasons.append(f"not mixed: tau_int = {tau[t]:.1f} is more than 1/{TAU_RUNS} of the "
                           f"chain length {rows_per_chain} ({int(accepted[t])} accepted of "
                           f"{n_total}); {ADVICE}")
        elif n_eff[t] < min_effective:
            reasons.append(f"only {n_eff[t]:.0f} effectively independent configurations "
                           f"(< {min_effective}); {ADVICE}")
        else:
            ok[t] = True
            reasons.append("")
    return Certificate("flow+independence_mh", True, ok, n_eff, reasons)


def certify_hmc(acceptance, moved, rows: int) -> Certificate:
    """Latent-HMC certificate: ``acceptance`` (T,) of the trajectories, ``moved`` (T,) rows
    whose trajectories were accepted at least once, ``rows`` per point."""
    acceptance, moved = np.asarray(acceptance, float), np.asarray(moved)
    T = len(acceptance)
    ok, reasons = np.zeros(T, bool), []
    for t in range(T):
        if not acceptance[t] >= MIN_HMC_ACCEPTANCE:
            reasons.append(f"latent HMC accepts {acceptance[t]:.0%} of the trajectories (< "
                           f"{MIN_HMC_ACCEPTANCE:.0%}): lower upscale.hmc.step_size")
        elif moved[t] < MIN_HMC_MOVED * rows:
            reasons.append(f"{rows - int(moved[t])} of {rows} rows never left their flow "
                           f"proposal: raise upscale.hmc.trajectories or lower the step size")
        else:
            ok[t] = True
            reasons.append("")
    return Certificate("flow+latent_hmc", True, ok, np.asarray(moved, float), reasons)


def compare_to_reference(cert: Certificate, sr: dict, mc: dict, mc_grid, sr_grid,
                         interpolate: bool = False) -> dict:
    """z-scores and biases of ``sr`` against the Monte Carlo ``mc``; fails points beyond Z_MAX.

    ``sr`` and ``mc``: observable name -> (mean (T,), error (T,)) on their own grids.
    Exact matches of the grids (relative 1e-9) are compared; with ``interpolate`` (CNN levels
    at their effective temperatures) the MC curve is interpolated linearly inside its grid.
    Returns the ``z_<obs>`` / ``bias_<obs>`` attributes; updates ``cert`` in place.
    """
    mc_grid, sr_grid = np.asarray(mc_grid, float), np.asarray(sr_grid, float)
    order = np.argsort(mc_grid)
    out, flagged = {}, set()
    for name in sr:
        if name not in mc:
            continue
        m_sr, e_sr = (np.asarray(a, float) for a in sr[name])
        m_mc, e_mc = (np.asarray(a, float)[order] for a in mc[name])
        g = mc_grid[order]
        ref_m, ref_e = np.full(len(sr_grid), np.nan), np.full(len(sr_grid), np.nan)
        for t, x in enumerate(sr_grid):
            if not np.isfinite(x):
                continue
            hit = np.nonzero(np.abs(g - x) <= 1e-9 * max(abs(x), 1e-300))[0]
            if len(hit):
                ref_m[t], ref_e[t] = m_mc[hit[0]], e_mc[hit[0]]
            elif interpolate and g[0] < x < g[-1]:
                k = int(np.searchsorted(g, x)) - 1
                u = (x - g[k]) / (g[k + 1] - g[k])
                ref_m[t] = (1 - u) * m_mc[k] + u * m_mc[k + 1]
                ref_e[t] = np.hypot((1 - u) * e_mc[k], u * e_mc[k + 1])
        bias = m_sr - ref_m
        z = bias / np.hypot(e_sr, ref_e)
        out[f"z_{name}"], out[f"bias_{name}"] = z, bias
        for t in np.nonzero(np.abs(z) > Z_MAX)[0]:
            if not cert.exact or t in flagged:
                continue
            flagged.add(t)
            what = f"disagrees with Monte Carlo of the same size: z({name}) = {z[t]:+.1f}"
            cert.reasons[t] = (f"{what}; {cert.reasons[t]}" if not cert.certified_points[t]
                               else f"{what}; {ADVICE}")
            cert.certified_points[t] = False
    return out


def read_certificate(group) -> dict | None:
    """The certificate attributes of an h5py level group (or of any mapping of its
    attributes) as plain data, or None for files written before certificates (unknown:
    never to be read as certified)."""
    a = getattr(group, "attrs", group)
    if "certified" not in a:
        return None
    def _s(v):
        return v.decode() if isinstance(v, bytes) else str(v)
    out = {"sampler": _s(a.get("sampler", "")), "exact": bool(a.get("exact", False)),
           "certified": bool(a["certified"]),
           "certified_points": np.asarray(a.get("certified_points", []), bool),
           "n_effective": np.asarray(a.get("n_effective", []), float),
           "certificate": _s(a.get("certificate", ""))}
    out.update({k: np.asarray(a[k], float) for k in a if k.startswith(("z_", "bias_"))})
    if "reference" in a:
        out["reference"] = _s(a["reference"])
    return out


def status(group) -> str:
    """What the ensemble of a size group (h5py group or mapping of its attributes) is, in
    one word: ``monte_carlo``, ``certified``, ``not_certified``, ``approximate`` or
    ``unknown`` (a super-resolved level written before certificates). The tools word it
    their own way from this."""
    if str(getattr(group, "attrs", group).get("source", "")) == "monte_carlo":
        return "monte_carlo"
    c = read_certificate(group)
    if c is None:
        return "unknown"
    if not c["exact"]:
        return "approximate"
    return "certified" if c["certified"] else "not_certified"
