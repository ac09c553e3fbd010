"""Statistics of Monte Carlo time series: binning, jackknife, autocorrelation times.

All functions take NumPy arrays with the samples along ``axis`` (default 0); any other
axes are carried along (e.g. one column per temperature). Samples from independent chains
may be concatenated chain after chain along the sample axis: with a number of bins that
is a multiple of the number of chains (each chain's length divisible by it), every bin
lies inside one chain.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_means", "binning_error", "binning_analysis", "jackknife", "jackknife_sums",
           "autocorrelation", "integrated_autocorr_time"]


def bin_means(x, n_bins: int, axis: int = 0) -> np.ndarray:
    """Means of ``n_bins`` consecutive equal blocks along ``axis``.

    The trailing ``len % n_bins`` samples are dropped. Returns an array with ``axis``
    replaced by a bin axis of length ``n_bins`` (moved to position 0).
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = x.shape[0]
    n_bins = int(n_bins)
    if n_bins < 2 or n_bins > n:
        raise ValueError(f"need 2 <= n_bins <= n_samples, got n_bins={n_bins} for {n} samples")
    size = n // n_bins
    return x[: size * n_bins].reshape((n_bins, size) + x.shape[1:]).mean(axis=1)


def binning_error(x, n_bins: int = 32, axis: int = 0):
    """Mean and its standard error from ``n_bins`` block means.

    Parameters
    ----------
    x : array_like, samples along ``axis``
    n_bins : int
        Number of blocks; blocks should be much longer than the autocorrelation time.

    Returns
    -------
    (mean, err) : arrays with ``axis`` removed
        ``err = std(bin means, ddof=1) / sqrt(n_bins)``.
    """
    b = bin_means(x, n_bins, axis)
    return b.mean(axis=0), b.std(axis=0, ddof=1) / np.sqrt(n_bins)


def binning_analysis(x, axis: int = 0, min_bins: int = 16):
    """Error of the mean versus bin size (bin sizes 1, 2, 4, ...; at least ``min_bins`` bins).

    Returns
    -------
    (sizes, errs) : (ndarray of int, ndarray)
        A plateau in ``errs`` signals bins longer than the autocorrelation time;
        ``(errs/errs[0])**2 / 2`` estimates tau_int.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = x.shape[0]
    sizes, errs = [], []
    size = 1
    while n // size >= min_bins:
        nb = n // size
        errs.append(binning_error(x, nb)[1])
        sizes.append(size)
        size *= 2
    return np.array(sizes), np.array(errs)


def jackknife(f, *series, n_bins: int = 32, axis: int = 0):
    """Jackknife mean and error of ``f(<x1>, <x2>, ...)`` for per-sample series.

    Parameters
    ----------
    f : callable
        ``f(m1, m2, ...)`` of the series' means (NumPy arrays with the sample axis
        removed); may return a scalar or an array.
    *series : array_like
        Per-sample data, all with the same length along ``axis``.
    n_bins : int
        Number of jackknife blocks (dropping the remainder samples).

    Returns
    -------
    (value, err)
        ``value = f(full means)``; ``err = sqrt((n-1)/n * sum_i (f_i - f_bar)^2)`` with
        ``f_i`` computed from the means leaving out block ``i``.

    Notes
    -----
    Standard delete-one-block jackknife (Efron; see e.g. Young, "Everything you wanted to
    know about data analysis and fitting but were afraid to ask", arXiv:1210.3781). The
    full-sample value (on the retained samples) is returned without bias correction.
    """
    if not series:
        raise ValueError("jackknife needs at least one series")
    bins = [bin_means(s, n_bins, axis) for s in series]
    totals = [b.sum(axis=0) for b in bins]
    n = float(n_bins)
    value = np.asarray(f(*[t / n for t in totals]), dtype=np.float64)
    loo = np.stack([np.asarray(f(*[(t - b[i]) / (n - 1.0) for t, b in zip(totals, bins)]), dtype=np.float64)
                    for i in range(n_bins)])
    err = np.sqrt((n - 1.0) / n * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
    return value, err


def jackknife_sums(f, sums, counts):
    """Jackknife mean and error of ``f(<x1>, <x2>, ...)`` from per-block sums.

    The streaming form of :func:`jackknife`: the data were reduced to block sums (e.g. on
    several MPI ranks), blocks may have different sizes.

    Parameters
    ----------
    f : callable
        ``f(m1, m2, ...)`` of the means (arrays with the block axis removed).
    sums : sequence of arrays, each shape (n_blocks, ...)
        Sum of each per-sample series over the samples of each block.
    counts : array_like, shape (n_blocks,)
        Samples per block (all > 0; at least 2 blocks).

    Returns
    -------
    (value, err)
        ``value = f(sum / n)`` over all samples; ``err`` as in :func:`jackknife`, with
        block ``i`` left out: ``f((total - sum_i) / (n - count_i))``. Equal to
        :func:`jackknife` when all blocks have the same size.
    """
    c = np.asarray(counts, dtype=np.float64)
    nb = c.size
    if nb < 2 or np.any(c <= 0):
        raise ValueError(f"jackknife_sums: need >= 2 non-empty blocks, got counts {c.tolist()}")
    sums = [np.asarray(s, dtype=np.float64) for s in sums]
    totals = [s.sum(axis=0) for s in sums]
    n = c.sum()
    value = np.asarray(f(*[t / n for t in totals]), dtype=np.float64)
    loo = np.stack([np.asarray(f(*[(t - s[i]) / (n - c[i]) for t, s in zip(totals, sums)]),
                               dtype=np.float64) for i in range(nb)])
    with np.errstate(invalid="ignore"):
        err = np.sqrt((nb - 1.0) / nb * ((loo - loo.mean(axis=0)) ** 2).sum(axis=0))
    return value, err


def autocorrelation(x, axis: int = 0, average: bool = False) -> np.ndarray:
    """Normalised autocorrelation function ``rho(t) = C(t)/C(0)`` via FFT.

    Parameters
    ----------
    x : array_like, samples along ``axis``; other axes are independent series.
    average : bool
        Average ``C(t)`` over the other axes (e.g. independent chains of one observable)
        before normalising; returns a 1-d array.

    Returns
    -------
    ndarray, ``rho`` with the lag along axis 0 (length n)
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = x.shape[0]
    xc = x - x.mean(axis=0)
    nfft = 1 << (2 * n - 1).bit_length()
    fx = np.fft.rfft(xc, n=nfft, axis=0)
    c = np.fft.irfft(fx * np.conj(fx), n=nfft, axis=0)[:n]
    c /= (n - np.arange(n)).reshape((n,) + (1,) * (x.ndim - 1))
    if average and x.ndim > 1:
        c = c.reshape(n, -1).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c / c[0]


def integrated_autocorr_time(x, axis: int = 0, c: float = 6.0, average: bool = False):
    """Integrated autocorrelation time with Sokal's automatic window.

    Parameters
    ----------
    x : array_like, samples along ``axis``
    c : float
        Window factor: the window ``W`` is the smallest lag with ``W >= c * tau(W)``
        (Sokal recommends 4-10).
    average : bool
        Average the autocovariance over the other axes first (one tau for all).

    Returns
    -------
    (tau, err, window)
        ``tau = 1/2 + sum_{t=1}^{W} rho(t)`` (so ``var(mean) = 2 tau var(x) / n``),
        its statistical error ``tau * sqrt(2 (2W + 1) / n)`` (Madras & Sokal 1988), and
        ``W``. Arrays if ``x`` has several independent series. A constant series gives
        ``tau = 0.5``.

    Notes
    -----
    A. D. Sokal, "Monte Carlo methods in statistical mechanics: foundations and new
    algorithms" (Cargese lectures, 1996), sec. 3; Madras & Sokal, J. Stat. Phys. 50, 109
    (1988). Reliable when ``n >> 1000 tau``; the window may run off the series for
    short runs, then ``W = n - 1``.
    """
    rho = autocorrelation(x, axis=axis, average=average)
    n = rho.shape[0]
    rho2 = np.nan_to_num(rho.reshape(n, -1), nan=0.0)
    rho2[0] = 1.0
    taus = 0.5 + np.cumsum(rho2[1:], axis=0)  # tau(W) for W = 1..n-1
    taus = np.concatenate([np.full((1, rho2.shape[1]), 0.5), taus], axis=0)
    lags = np.arange(n).reshape(n, 1)
    ok = lags >= c * taus
    ok[-1] = True
    window = ok.argmax(axis=0)
    tau = taus[window, np.arange(rho2.shape[1])]
    err = tau * np.sqrt(2.0 * (2.0 * window + 1.0) / n)
    shape = rho.shape[1:]
    if shape == ():
        return float(tau[0]), float(err[0]), int(window[0])
    return tau.reshape(shape), err.reshape(shape), window.reshape(shape)
