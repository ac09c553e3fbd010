"""Is each disorder sample of an Edwards–Anderson ensemble in equilibrium? (pure NumPy)

Three tests per disorder sample d, from the series the sample stage stores (kept
configurations k = 0 .. S-1 after ``sample.thermalize`` sweeps):

1. **Logarithmic binning** (Bhatt & Young 1988; Katzgraber, Palassini & Young 2001): at
   every temperature the means of the last two logarithmic bins of the stored run,
   ``[S/4, S/2)`` and ``[S/2, S)``, agree within errors for the energy per site e, the
   link overlap q_l and the squared overlap q². Each bin is cut into ``n_b`` equal time
   blocks (``n_b = min(BLOCKS, S/4)``) of the replica- (or pair-) averaged series; a bin's
   error is ``std(block means) / sqrt(n_b)``. The test passes when
   ``|mean_last - mean_prev| <= t_limit * sqrt(err_last² + err_prev²)``, where ``t_limit``
   is the Student-t quantile with ``n_b - 1`` degrees of freedom (the Welch lower bound)
   whose two-sided tail equals the Gaussian tail beyond ``sigma`` standard deviations:
   ``P(false alarm) = erfc(sigma / sqrt 2)`` per test (6.3e-5 for sigma = 4), however few
   blocks there are.
2. **Round trips**: the parallel-tempering round trips (lowest -> highest -> lowest
   temperature) of the sample's replicas, summed, are at least ``min_round_trips``.
3. **Gaussian couplings only**, the identity ``e = -(d/T)(1 - q_l)`` (integration by parts
   over J ~ N(0, 1); Katzgraber et al. 2001), which holds for the disorder average, not
   per sample: at each temperature the mean over samples of the residual
   ``r_d = e_d + (d/T)(1 - q_l,d)`` (last-bin means) must vanish within
   ``t_limit(D - 1) * std_d(r) / sqrt(D)``. Starting from random configurations e
   approaches its equilibrium value from above and q_l from below, so r > 0 until the
   ensemble has relaxed. A failure at a temperature fails every sample (the ensemble is not
   in equilibrium there); with one disorder sample the test cannot be made and passes.

A sample is *equilibrated* when every test passes at every temperature.

Notes
-----
Why the criterion is honest: a false alarm needs a deviation beyond ``sigma`` standard
errors, so with sigma = 4 and 3 observables × 16 temperatures fewer than 0.3 % of
equilibrated samples are flagged. The errors assume time blocks longer than the
autocorrelation time; when they are shorter the errors are underestimated and the test
errs towards *not equilibrated*. What the test cannot see: a sample trapped in one valley
for the whole stored run looks stationary; the round-trip requirement is the guard
against that (each round trip passes the high temperatures, where the replica
decorrelates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BLOCKS", "MIN_SAMPLES", "DRIFT_OBSERVABLES", "t_limit", "drift_test",
           "SampleDiagnostics", "sample_diagnostics", "half_drift", "Certificate", "certify",
           "ENSEMBLE_WARN_SIGMA"]

BLOCKS = 16  #: time blocks per logarithmic bin (fewer when the bin is shorter)
MIN_SAMPLES = 8  #: stored configurations per chain the binning test needs (2 blocks per bin)
DRIFT_OBSERVABLES = ("energy", "link_overlap", "overlap2")
#: Gaussian-equivalent level of the disorder-averaged half-split warning (a warning, so more
#: sensitive than the per-sample tests' ``sample.equilibration.sigma``)
ENSEMBLE_WARN_SIGMA = 3.0
_LABELS = {"energy": "energy", "link_overlap": "q_l", "overlap2": "q^2"}


# ----------------------------------------------------------------------------- Student t
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    bt = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                  + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return bt * _betacf(a, b, x) / a
    return 1.0 - bt * _betacf(b, a, 1.0 - x) / b


def _t_tail(t: float, nu: float) -> float:
    """Two-sided tail P(|T| > t) of Student's t with ``nu`` degrees of freedom."""
    if math.isinf(nu):
        return math.erfc(t / math.sqrt(2.0))
    return _betai(nu / 2.0, 0.5, nu / (nu + t * t))


def t_limit(sigma: float, nu: float) -> float:
    """The |t| whose two-sided Student-t tail (``nu`` degrees of freedom) equals the
    Gaussian tail beyond ``sigma``: ``P(|T_nu| > t_limit) = erfc(sigma / sqrt 2)``.
    ``inf`` when ``nu < 1`` (no error estimate)."""
    if nu < 1:
        return math.inf
    p = math.erfc(float(sigma) / math.sqrt(2.0))
    lo, hi = 0.0, 1.0
    while _t_tail(hi, nu) > p:
        hi *= 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_tail(mid, nu) > p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return hi


# ----------------------------------------------------------------------------- binning test
def _bin_blocks(x: np.ndarray, start: int, stop: int, n_blocks: int):
    """Mean and error of ``x[..., start:stop]`` from ``n_blocks`` equal time blocks (the
    earliest ``len % n_blocks`` samples of the bin are dropped)."""
    size = (stop - start) // n_blocks
    seg = x[..., stop - size * n_blocks:stop]
    blocks = seg.reshape(seg.shape[:-1] + (n_blocks, size)).mean(axis=-1)
    return blocks.mean(axis=-1), blocks.std(axis=-1, ddof=1) / math.sqrt(n_blocks)


def drift_test(series, sigma: float):
    """Logarithmic-binning test of the series (time along the last axis, length S).

    Parameters
    ----------
    series : float array, shape (..., S)
        One value per kept configuration (already averaged over replicas or pairs).
    sigma : float
        Gaussian-equivalent threshold (see :func:`t_limit`).

    Returns
    -------
    drift : float64 array, shape (...)
        ``mean[S/2, S) - mean[S/4, S/2)``.
    z : float64 array, shape (...)
        ``drift / sqrt(err_last² + err_prev²)`` (0 when both are exactly constant and equal,
        ``±inf`` when constant and different).
    limit : float
        ``|z| <= limit`` passes. With ``S < MIN_SAMPLES`` there are too few samples for
        the test: ``drift`` and ``z`` are NaN and every test fails.
    """
    x = np.asarray(series, dtype=np.float64)
    S = x.shape[-1]
    if S < MIN_SAMPLES:
        nan = np.full(x.shape[:-1], np.nan)
        return nan, nan.copy(), 0.0
    n_blocks = min(BLOCKS, S // 2 - S // 4)
    m_prev, e_prev = _bin_blocks(x, S // 4, S // 2, n_blocks)
    m_last, e_last = _bin_blocks(x, S // 2, S, n_blocks)
    drift = m_last - m_prev
    err = np.sqrt(e_prev ** 2 + e_last ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(err > 0, drift / np.where(err > 0, err, 1.0),
                     np.where(drift == 0, 0.0, np.sign(drift) * np.inf))
    return drift, z, t_limit(sigma, n_blocks - 1)


# ----------------------------------------------------------------------------- per sample
@dataclass
class SampleDiagnostics:
    """Per-sample results of the binning test and the identity residual.

    Attributes
    ----------
    d_indices : int64 (D,)
    drift, z : dict of observable -> float64 (D, T)
        :func:`drift_test` of e, q_l and q² per sample and temperature.
    limit : float
        The |z| bound of the binning tests.
    identity_residual : float64 (D, T)
        ``e + (d/T)(1 - q_l)`` of the last-bin means (meaningful for Gaussian couplings).
    half_drift : float64 (D,)
        :func:`half_drift` of q²: the sample's relative change of q² from the first to the
        second half of the kept configurations, averaged over its colder temperatures.
    """

    d_indices: np.ndarray
    drift: dict
    z: dict
    limit: float
    identity_residual: np.ndarray
    half_drift: np.ndarray

    @staticmethod
    def concatenate(parts: list) -> "SampleDiagnostics":
        """Join the diagnostics of disjoint sets of samples, ordered by sample id."""
        d = np.concatenate([p.d_indices for p in parts]).astype(np.int64)
        order = np.argsort(d, kind="stable")
        cat = lambda arrs: np.concatenate(arrs)[order]  # noqa: E731
        return SampleDiagnostics(
            d[order], {k: cat([p.drift[k] for p in parts]) for k in DRIFT_OBSERVABLES},
            {k: cat([p.z[k] for p in parts]) for k in DRIFT_OBSERVABLES},
            max([p.limit for p in parts] or [0.0]),
            cat([p.identity_residual for p in parts]), cat([p.half_drift for p in parts]))


def half_drift(q2, temperatures) -> np.ndarray:
    """Relative drift of q² per sample between the halves of the kept configurations.

    ``q2`` (D, T, S) replica-pair-averaged q² per kept configuration. For every sample,
    ``(m2 - m1) / ((m1 + m2) / 2)`` with m1, m2 the means of q² over the first and the second
    half, averaged over the colder half of the temperatures (T <= the median; where slow
    equilibration shows). One number per sample, so the samples, being independent, give a
    disorder-averaged test of whether [q²] still grows (:func:`certify`). NaN when S < 4.
    """
    x = np.asarray(q2, dtype=np.float64)
    T = np.asarray(temperatures, dtype=np.float64)
    S = x.shape[-1]
    if S < 4:
        return np.full(x.shape[0], np.nan)
    m1, m2 = x[..., :S // 2].mean(axis=-1), x[..., S - S // 2:].mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(m1 + m2 > 0, (m2 - m1) / ((m1 + m2) / 2), 0.0)
    return rel[:, T <= np.median(T)].mean(axis=1)


def sample_diagnostics(d_indices, energy, overlap, link_overlap, temperatures, dims: int,
                       sigma: float) -> SampleDiagnostics:
    """Binning tests and identity residuals of some disorder samples.

    Parameters
    ----------
    d_indices : int array (D,)
    energy : float array (D, T, S, R)
        Energy per site of replica r at temperature t, kept configuration s.
    overlap, link_overlap : float arrays (D, T, S, P)
        q and q_l of replica pair p.
    temperatures : float array (T,)
    dims : int
        Lattice dimension d.
    sigma : float
    """
    e = np.asarray(energy, dtype=np.float64).mean(axis=-1)  # (D, T, S)
    q = np.asarray(overlap, dtype=np.float64)
    ql = np.asarray(link_overlap, dtype=np.float64).mean(axis=-1)
    series = {"energy": e, "link_overlap": ql, "overlap2": (q * q).mean(axis=-1)}
    drift, z, limit = {}, {}, 0.0
    for name in DRIFT_OBSERVABLES:
        drift[name], z[name], limit = drift_test(series[name], sigma)
    S = e.shape[-1]
    T = np.asarray(temperatures, dtype=np.float64)
    resid = e[..., S // 2:].mean(axis=-1) + dims / T * (1.0 - ql[..., S // 2:].mean(axis=-1))
    return SampleDiagnostics(np.asarray(d_indices, dtype=np.int64), drift, z, limit, resid,
                             half_drift(series["overlap2"], T))


# ----------------------------------------------------------------------------- certificate
@dataclass
class Certificate:
    """Which disorder samples are equilibrated, and why the others are not.

    Attributes
    ----------
    diagnostics : SampleDiagnostics
        Every sample, ordered by id.
    temperatures : float64 (T,)
    round_trips : int64 (D,)
        Round trips summed over the sample's replicas; -1 without parallel tempering.
    min_round_trips : int
    identity_z, identity_limit : float64 (T,), float
        Gaussian couplings: the disorder-averaged identity test (NaN / inf otherwise).
    passed : bool (D, T)
        Every binning test of sample d passed at temperature t (and the identity there).
    equilibrated : bool (D,)
    ensemble_drift, ensemble_drift_z, ensemble_drift_limit : float
        Disorder average of :func:`half_drift` (relative growth of q² from the first to the
        second half, colder temperatures), its z over the samples and the warning limit
        (:data:`ENSEMBLE_WARN_SIGMA`-equivalent). A warning, not part of ``passed``: it
        catches an ensemble whose [q²] still grows while each sample's own test is too noisy
        to see it (NaN: fewer than 2 samples).
    """

    diagnostics: SampleDiagnostics
    temperatures: np.ndarray
    round_trips: np.ndarray
    min_round_trips: int
    identity_z: np.ndarray
    identity_limit: float
    passed: np.ndarray
    equilibrated: np.ndarray
    ensemble_drift: float = float("nan")
    ensemble_drift_z: float = float("nan")
    ensemble_drift_limit: float = float("inf")

    @property
    def ensemble_drifting(self) -> bool:
        """[q²] still grows (or shrinks) beyond the warning limit."""
        return bool(abs(self.ensemble_drift_z) > self.ensemble_drift_limit)

    def reason(self, i: int) -> str:
        """Why sample number ``i`` (row of the arrays) is not equilibrated ("" if it is)."""
        dg, why = self.diagnostics, []
        for t, T in enumerate(self.temperatures):
            for name in DRIFT_OBSERVABLES:
                z = dg.z[name][i, t]
                if not abs(z) <= dg.limit:
                    why.append(f"{_LABELS[name]} drift at T={T:.4g}: " + (
                        f"too few samples (< {MIN_SAMPLES})" if np.isnan(z)
                        else f"{z:+.1f} sigma (limit {dg.limit:.2f})"))
            if abs(self.identity_z[t]) > self.identity_limit:  # NaN: not tested
                why.append(f"ensemble fails e = -(d/T)(1-q_l) at T={T:.4g}")
        if self.min_round_trips > 0 and self.round_trips[i] < self.min_round_trips:
            why.append("no parallel tempering, no round trips" if self.round_trips[i] < 0
                       else f"{self.round_trips[i]} round trips < {self.min_round_trips}")
        return "; ".join(why)

    def summary(self, L: int, max_ids: int = 8) -> str:
        """One line: how many samples are equilibrated; the ids of the others, and why."""
        d_ids = self.diagnostics.d_indices
        n, ok = len(d_ids), int(self.equilibrated.sum())
        line = f"L={L}: {ok}/{n} disorder samples equilibrated at all temperatures"
        bad = np.flatnonzero(~self.equilibrated)
        if len(bad):
            ids = ", ".join(str(d_ids[i]) for i in bad[:max_ids])
            more = ", ..." if len(bad) > max_ids else ""
            first = self.reason(int(bad[0])).split("; ")
            extra = f"; +{len(first) - 2} more" if len(first) > 2 else ""
            line += (f"; {len(bad)} not: ids {ids}{more} (id {d_ids[bad[0]]}: "
                     f"{'; '.join(first[:2])}{extra})")
        return line


def certify(diagnostics: SampleDiagnostics, temperatures, round_trips, gaussian: bool,
            sigma: float, min_round_trips: int) -> Certificate:
    """Combine the per-sample diagnostics (every sample) into the certificate.

    Parameters
    ----------
    diagnostics : SampleDiagnostics
        Of every disorder sample, ordered by id.
    temperatures : float array (T,)
    round_trips : int array (D,)
        Per sample, summed over its replicas; negative when not measured (no tempering).
    gaussian : bool
        Gaussian couplings: apply the identity test.
    sigma : float
    min_round_trips : int
        0 disables the round-trip test.
    """
    dg = diagnostics
    T = np.asarray(temperatures, dtype=np.float64)
    D = len(dg.d_indices)
    passed = np.ones((D, len(T)), dtype=bool)
    for name in DRIFT_OBSERVABLES:
        passed &= np.abs(dg.z[name]) <= dg.limit  # NaN (too few samples) fails
    iz, ilim = np.full(len(T), np.nan), math.inf
    if gaussian and D >= 2:
        r = dg.identity_residual
        err = r.std(axis=0, ddof=1) / math.sqrt(D)
        with np.errstate(divide="ignore", invalid="ignore"):
            iz = np.where(err > 0, r.mean(axis=0) / np.where(err > 0, err, 1.0), 0.0)
        ilim = t_limit(sigma, D - 1)
        passed &= (np.abs(iz) <= ilim)[None, :]
    rt = np.asarray(round_trips, dtype=np.int64)
    rt_ok = rt >= min_round_trips if min_round_trips > 0 else np.ones(D, dtype=bool)
    hd = np.asarray(dg.half_drift, dtype=np.float64)
    hd = hd[np.isfinite(hd)]
    ed, ez, elim = float("nan"), float("nan"), math.inf
    if len(hd) >= 2:
        ed = float(hd.mean())
        err = float(hd.std(ddof=1)) / math.sqrt(len(hd))
        ez = ed / err if err > 0 else (0.0 if ed == 0 else math.copysign(math.inf, ed))
        elim = t_limit(ENSEMBLE_WARN_SIGMA, len(hd) - 1)
    return Certificate(dg, T, rt, int(min_round_trips), iz, ilim, passed,
                       passed.all(axis=1) & rt_ok, ed, ez, elim)
