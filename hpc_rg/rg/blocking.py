"""Real-space blocking transforms with rescaling factor b = 2, and their inverse shape.

Conventions
-----------
* Shapes: a configuration is a tensor ``(*lead, L_1, ..., L_d)``; the LAST ``dims`` axes
  are the periodic lattice, anything before them is a batch (any shape, possibly empty).
  Every ``L_k`` must be even (and >= 2). A blocked configuration has shape
  ``(*lead, L_1/2, ..., L_d/2)``; :func:`upsample` maps back to ``(*lead, L_1, ..., L_d)``.
* Blocks: coarse site ``(i, j, ...)`` is the block of the ``2^d`` fine sites
  ``(2i..2i+1, 2j..2j+1, ...)``. Its *first site* is the one with the smallest
  coordinates, ``x[..., 2i, 2j, ...]`` (the upper-left spin of Efthymiou et al. 2019).
  Blocks do not wrap around the periodic boundary: they tile the lattice from site 0.
* Dtypes: spins are +-1 in any integer or floating dtype (int8, float32, float64, ...);
  results keep the input dtype. :func:`sign_mean` needs floating input.
* Devices: pure tensor code, the same on CPU and CUDA; generators must live on the
  device of the input.

Transforms (names accepted by :func:`block`, see :data:`BLOCKINGS`)
--------------------------------------------------------------------
``"majority"``         sign of the block sum, ties (sum 0) -> the block's first site.
``"majority_random"``  sign of the block sum, ties -> a fair +-1 coin.
``"decimation"``       the block's first site (1D Ising decimation of Efthymiou et al.).
``"sign_mean"``        phi^4 transform of Bachtis et al.: mean of the positive (negative)
                       entries if the block sum is positive (negative), 0.0 if it is 0.
``"overlap"``          majority rule (first-site ties) on the replica overlap
                       ``rho = s * t`` (Edwards-Anderson spin glass, Bachtis et al.);
                       input ``(*lead, 2, L_1, ..., L_d)`` with the replica axis
                       right before the lattice axes.

Random ties draw one coin for EVERY coarse site (the coin is used only where the block is
tied), so the amount of randomness consumed depends only on the shape. With one
generator per sample (see :func:`hpc_rg.rng.chain_rand`) a sample's result does not
depend on which other samples share its batch.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple, Union

import torch

from hpc_rg.rng import chain_rand

__all__ = [
    "BLOCKINGS",
    "majority_rule",
    "decimation",
    "sign_mean",
    "overlap",
    "overlap_majority",
    "block",
    "block_repeatedly",
    "upsample",
    "consistency",
]

BLOCKINGS: Tuple[str, ...] = ("majority", "majority_random", "decimation", "sign_mean",
                              "overlap")
"""Names accepted by :func:`block` and :func:`consistency`."""

TIES: Tuple[str, ...] = ("first", "random")
"""Tie rules accepted by :func:`majority_rule`."""

Generators = Union[torch.Generator, Sequence[torch.Generator]]


# ------------------------------------------------------------------------------ helpers
def _check_dims(x: torch.Tensor, dims: int, extra: int = 0, what: str = "x") -> None:
    """Raise ValueError unless ``dims`` is a positive int and ``x`` has dims+extra axes."""
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValueError(f"dims must be a positive int (number of lattice axes), got {dims!r}")
    if x.dim() < dims + extra:
        need = f"{dims} lattice axes" + (f" plus {extra} replica axis" if extra else "")
        raise ValueError(f"{what} has shape {tuple(x.shape)} ({x.dim()} axes) but dims={dims} "
                         f"needs at least {need}")


def _check_lattice(x: torch.Tensor, dims: int, what: str = "x") -> None:
    """Raise ValueError unless the last ``dims`` axes of ``x`` have even sizes >= 2."""
    _check_dims(x, dims, what=what)
    for k in range(-dims, 0):
        n = x.shape[k]
        if n < 2 or n % 2:
            raise ValueError(f"{what} has shape {tuple(x.shape)}: lattice axis {x.dim() + k} "
                             f"has size {n}, but blocking with b=2 needs even lattice sizes "
                             f">= 2 (the last dims={dims} axes are the lattice)")


def _split(x: torch.Tensor, dims: int) -> Tuple[torch.Tensor, Tuple[int, ...]]:
    """View ``(*lead, L_1, ..)`` as ``(*lead, L_1/2, 2, .., L_d/2, 2)``; also the 2-axes."""
    lead = x.dim() - dims
    shape = list(x.shape[:lead])
    for n in x.shape[lead:]:
        shape += [n // 2, 2]
    axes = tuple(lead + 2 * k + 1 for k in range(dims))
    return x.reshape(shape), axes


def _first_site(x: torch.Tensor, dims: int) -> torch.Tensor:
    """The first site of every block, ``x[..., ::2, ..., ::2]`` (a strided view)."""
    return x[(Ellipsis,) + (slice(None, None, 2),) * dims]


def _block_sum(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Block sums ``(*lead, L_1/2, ..)``; integer inputs are summed in int64 (exact)."""
    view, axes = _split(x, dims)
    if x.dtype.is_floating_point:
        return view.sum(dim=axes)
    return view.sum(dim=axes, dtype=torch.int64)


def _coins(shape: Sequence[int], lead: int, generator: Generators,
           device: torch.device) -> torch.Tensor:
    """Fair +-1 coins (bool, True = +1) of ``shape``; one generator or one per sample."""
    shape = tuple(shape)
    batch = math.prod(shape[:lead])
    if not isinstance(generator, torch.Generator):
        generator = list(generator)
        if len(generator) != batch:
            raise ValueError(f"got {len(generator)} generators for {batch} samples (leading "
                             f"shape {shape[:lead]}); pass one torch.Generator or one per "
                             f"sample (flattened leading axes)")
    u = chain_rand((batch,) + shape[lead:], generator, dtype=torch.float32, device=device)
    return (u < 0.5).reshape(shape)


# --------------------------------------------------------------------------- transforms
def majority_rule(spins: torch.Tensor, dims: int, ties: str = "first",
                  generator: Optional[Generators] = None) -> torch.Tensor:
    """Majority-rule block spin: the sign of each ``2^dims`` block sum.

    Parameters
    ----------
    spins : Tensor, shape (*lead, L_1, ..., L_d), values +-1, any integer/floating dtype
    dims : int
        Number of lattice axes d (the last d axes of ``spins``); every L_k even.
    ties : {"first", "random"}
        Rule for tied blocks (sum 0, possible since the block size is even). ``"first"``:
        the block's first site ``spins[..., 2i, 2j, ...]`` (deterministic, Efthymiou et
        al. 2019). ``"random"``: a fair +-1 coin drawn from ``generator``.
    generator : torch.Generator or sequence of torch.Generator, optional
        Required for ``ties="random"`` (ignored for ``"first"``): one generator, or one
        per sample of the flattened leading axes, on the device of ``spins``. One coin
        (a float32 uniform < 1/2) is drawn per coarse site, tied or not.

    Returns
    -------
    Tensor, shape (*lead, L_1/2, ..., L_d/2), dtype of ``spins``, values +-1

    Notes
    -----
    Spins must be +-1; other values are not checked (0/1 encodings give wrong results).
    """
    if ties not in TIES:
        raise ValueError(f"majority_rule: ties must be one of {TIES}, got {ties!r}")
    if ties == "random" and generator is None:
        raise ValueError("majority_rule: ties='random' needs a generator (a torch.Generator "
                         "or one per sample); pass generator=... or use ties='first'")
    _check_lattice(spins, dims, "spins")
    total = _block_sum(spins, dims)
    out = torch.sign(total).to(spins.dtype)
    if ties == "first":
        tie_value = _first_site(spins, dims)
    else:
        coin = _coins(out.shape, spins.dim() - dims, generator, spins.device)
        tie_value = torch.where(coin, 1, -1).to(spins.dtype)
    return torch.where(total == 0, tie_value, out)


def decimation(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Decimation: keep the first site of each block, ``x[..., ::2, ..., ::2]``.

    Parameters
    ----------
    x : Tensor, shape (*lead, L_1, ..., L_d), any dtype, every L_k even
    dims : int
        Number of lattice axes d.

    Returns
    -------
    Tensor, shape (*lead, L_1/2, ..., L_d/2), dtype of ``x``; a new contiguous tensor
    (not a view of ``x``).
    """
    _check_lattice(x, dims)
    return _first_site(x, dims).clone(memory_format=torch.contiguous_format)


def sign_mean(phi: torch.Tensor, dims: int) -> torch.Tensor:
    """phi^4 block transform of Bachtis et al.: signed mean over each block.

    Parameters
    ----------
    phi : Tensor, shape (*lead, L_1, ..., L_d), floating dtype, every L_k even
    dims : int
        Number of lattice axes d.

    Returns
    -------
    Tensor, shape (*lead, L_1/2, ..., L_d/2), dtype of ``phi`` (same units as phi)

    Notes
    -----
    With ``P`` (``N``) the sum of the positive (negative) entries of a block and ``n_+``
    (``n_-``) their number: ``P / n_+`` if ``P + N > 0``, ``N / n_-`` if ``P + N < 0``,
    and 0.0 if ``P == -N`` (block sum exactly zero). Comparing ``P`` with ``-N`` makes
    the branch independent of the summation order. Zero entries count in neither mean.
    """
    if not phi.dtype.is_floating_point:
        raise TypeError(f"sign_mean needs a floating tensor (the phi^4 field), got {phi.dtype}")
    _check_lattice(phi, dims, "phi")
    view, axes = _split(phi, dims)
    pos, neg = view.clamp(min=0), view.clamp(max=0)
    p_sum, n_sum = pos.sum(dim=axes), neg.sum(dim=axes)
    p_cnt = (view > 0).sum(dim=axes).clamp_(min=1).to(phi.dtype)
    n_cnt = (view < 0).sum(dim=axes).clamp_(min=1).to(phi.dtype)
    out = torch.where(p_sum > -n_sum, p_sum / p_cnt, n_sum / n_cnt)
    return torch.where(p_sum == -n_sum, torch.zeros_like(out), out)


def overlap(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Site overlap ``rho_i = s_i t_i`` of two replicas.

    Parameters
    ----------
    s, t : Tensor, same shape (*lead, L_1, ..., L_d), +-1 spins (same dtype)

    Returns
    -------
    Tensor, same shape, values +-1 (dtype: torch's promotion of the two, i.e. the input
    dtype when they agree)
    """
    if s.shape != t.shape:
        raise ValueError(f"overlap needs two replicas of the same shape, got {tuple(s.shape)} "
                         f"and {tuple(t.shape)}")
    return s * t


def overlap_majority(s: torch.Tensor, t: torch.Tensor, dims: int, ties: str = "first",
                     generator: Optional[Generators] = None) -> torch.Tensor:
    """Majority rule on the overlap: ``majority_rule(overlap(s, t), dims, ties, generator)``.

    Shapes ``(*lead, L_1, ..)`` -> ``(*lead, L_1/2, ..)``; see :func:`majority_rule`.
    """
    return majority_rule(overlap(s, t), dims, ties=ties, generator=generator)


def _replicas(x: torch.Tensor, dims: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split ``(*lead, 2, L_1, ..)`` into the two replicas ``(*lead, L_1, ..)``."""
    _check_dims(x, dims, extra=1)
    if x.shape[-dims - 1] != 2:
        raise ValueError(f"blocking 'overlap' needs a replica axis of size 2 right before the "
                         f"{dims} lattice axes, got shape {tuple(x.shape)} (axis "
                         f"{x.dim() - dims - 1} has size {x.shape[-dims - 1]})")
    return x.select(-dims - 1, 0), x.select(-dims - 1, 1)


def block(x: torch.Tensor, how: str, dims: int,
          generator: Optional[Generators] = None) -> torch.Tensor:
    """Apply the blocking named ``how`` (one of :data:`BLOCKINGS`).

    Parameters
    ----------
    x : Tensor
        ``(*lead, L_1, ..., L_d)``; for ``how="overlap"`` ``(*lead, 2, L_1, ..., L_d)``
        with the two replicas on the axis right before the lattice axes.
    how : str
        ``"majority"`` (first-site ties), ``"majority_random"`` (random ties, needs
        ``generator``), ``"decimation"``, ``"sign_mean"`` or ``"overlap"`` (majority
        rule with first-site ties on the overlap of the two replicas).
    dims : int
        Number of lattice axes d.
    generator : torch.Generator or sequence of them, optional
        Used by ``"majority_random"`` only (ignored otherwise).

    Returns
    -------
    Tensor, shape (*lead, L_1/2, ..., L_d/2) (the replica axis is dropped for "overlap")
    """
    if how == "majority":
        return majority_rule(x, dims, ties="first")
    if how == "majority_random":
        return majority_rule(x, dims, ties="random", generator=generator)
    if how == "decimation":
        return decimation(x, dims)
    if how == "sign_mean":
        return sign_mean(x, dims)
    if how == "overlap":
        s, t = _replicas(x, dims)
        return overlap_majority(s, t, dims, ties="first")
    raise ValueError(f"unknown blocking {how!r}; choose one of {BLOCKINGS}")


def block_repeatedly(x: torch.Tensor, how: str, dims: int, times: int,
                     generator_for: Optional[Callable[[int], Generators]] = None) -> torch.Tensor:
    """:func:`block` applied ``times`` times (shape (*lead, L_1/2^times, ...));
    ``generator_for(j)`` gives round j's generator (used by ``"majority_random"`` only)."""
    for j in range(times):
        x = block(x, how, dims, generator=generator_for(j) if generator_for else None)
    return x


def upsample(x: torch.Tensor, dims: int) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling: each site becomes a ``2^dims`` block of copies.

    Parameters
    ----------
    x : Tensor, shape (*lead, L_1, ..., L_d), any dtype
    dims : int
        Number of lattice axes d.

    Returns
    -------
    Tensor, shape (*lead, 2 L_1, ..., 2 L_d), dtype of ``x``. ``block(upsample(x))``
    is ``x`` for majority, decimation and sign_mean.
    """
    _check_dims(x, dims)
    for k in range(-dims, 0):
        x = x.repeat_interleave(2, dim=k)
    return x


def consistency(coarse: torch.Tensor, fine: torch.Tensor, how: str, dims: int,
                atol: float = 0.0) -> torch.Tensor:
    """Fraction of coarse sites that the blocking of ``fine`` reproduces, per sample.

    Checks super-resolved configurations: ``MR(SR(s)) = s`` (Efthymiou et al., Eq. 3).

    Parameters
    ----------
    coarse : Tensor, shape (*lead, L_1, ..., L_d)
    fine : Tensor, shape (*lead, 2 L_1, ..., 2 L_d) (``(*lead, 2, 2 L_1, ...)`` for
        ``how="overlap"``)
    how : str
        One of :data:`BLOCKINGS`. For ``"majority_random"`` a tied block of ``fine`` is
        consistent with either +-1 coarse value (both have probability 1/2, and the
        first-site value is one of them); untied blocks must match the majority sign.
    dims : int
        Number of lattice axes d.
    atol : float
        A site agrees when ``|block(fine) - coarse| <= atol`` (default 0: exact; useful
        for floating ``sign_mean`` outputs).

    Returns
    -------
    Tensor, shape lead, float64, values in [0, 1]
    """
    if how == "majority_random":
        _check_lattice(fine, dims, "fine")
        total = _block_sum(fine, dims)
        _check_coarse(coarse, total, dims)
        ok = torch.where(total == 0, coarse.abs() == 1, torch.sign(total) == coarse)
    else:
        blocked = block(fine, how, dims)
        _check_coarse(coarse, blocked, dims)
        if atol > 0:
            ok = (blocked - coarse).abs() <= atol
        else:
            ok = blocked == coarse
    return ok.flatten(start_dim=ok.dim() - dims).to(torch.float64).mean(dim=-1)


def _check_coarse(coarse: torch.Tensor, blocked: torch.Tensor, dims: int) -> None:
    """Raise ValueError unless ``coarse`` has the shape of the blocked fine configuration."""
    if coarse.shape != blocked.shape:
        raise ValueError(f"consistency: coarse has shape {tuple(coarse.shape)} but blocking "
                         f"fine gives {tuple(blocked.shape)} (dims={dims}); coarse lattice "
                         f"sizes must be half the fine ones with the same leading axes")
