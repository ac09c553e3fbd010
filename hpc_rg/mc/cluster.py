"""Cluster updates: Swendsen–Wang and Wolff for the Ising ferromagnet, embedded Wolff for φ⁴.

All updates act on a batch of independent chains on a periodic hypercubic lattice in
any dimension d ≥ 1 (d = 1, 2, 3 are tested): configurations have shape ``(B, L_1, ..., L_d)``.
Randomness comes only from the ``generator`` passed in, so a run is reproducible from its
seed (see :func:`hpc_rg.rng.torch_generator`): either one ``torch.Generator`` for the whole
batch or a sequence of B per-chain generators. With per-chain generators chain b draws
exactly the numbers a batch of one would draw from ``generator[b]``, so the batched update
is bit-identical to updating the chains one at a time (only the draws are per chain; all
arithmetic is batched). Everything is batched torch code and runs unchanged on CUDA
tensors (pass generators on the same device).

Algorithm (shared by every update here)
---------------------------------------
1. **Bond activation** (:func:`fk_bonds`). For each site x and direction μ the bond
   (x, x+μ) is activated with probability ``p = max(0, 1 - exp(-2 K a_x a_{x+μ}))`` using one
   uniform random number per bond. For Ising ``a = s`` (±1) and ``K = βJ``, so aligned
   neighbours bond with ``1 - exp(-2βJ)``; for φ⁴ ``a = φ`` and ``K = 2κ`` (see
   :func:`phi4_wolff_update`).
2. **Connected-component labelling** (:func:`label_clusters`) of the active-bond graph,
   data-parallel over all sites of all chains, by *min-label hooking with pointer jumping*:
   every site holds a parent pointer ``P[x] <= x`` into its own component (initially
   ``P[x] = x``). One iteration (a) hooks across every active bond (x, y):
   ``P[P[x]] <- min(P[P[x]], P[x], P[y])`` and symmetrically (``scatter_reduce`` with
   ``amin``), then (b) compresses paths, ``P <- P[P]`` until nothing changes. Iterations
   repeat until no active bond joins two different labels (bonds already inside one
   star are dropped after each iteration, so later iterations touch only a few
   bonds); the fixed point is ``P[x] = min{y in cluster(x)}``.
   Work per iteration is O(d N) for N = B·∏L sites; the number of iterations is
   O(log N) in practice (4-8 at the 2D critical point for L = 256) and at worst
   O(cluster diameter). Memory is O(d N).
3. **Flip.** Swendsen–Wang flips each cluster independently with probability 1/2 (one
   random bit per root). Wolff picks one uniformly random seed site per chain and flips
   the cluster containing it: given the FK bond configuration, the component containing the
   seed is distributed exactly as the cluster grown by Wolff's algorithm (bonds outside the
   cluster never influence it), so the update *is* the Wolff single-cluster update. Its cost
   is one full labelling, i.e. the same as one SW sweep, independent of the cluster size.

Notes
-----
Fortuin–Kasteleyn / Swendsen–Wang (PRL 58, 86 (1987)); Wolff (PRL 62, 361 (1989));
embedded Ising dynamics for φ⁴: Brower & Tamayo (PRL 62, 1087 (1989)).
The Hamiltonian convention is ``H = -J Σ_x Σ_μ s_x s_{x+μ}`` (one bond per site and
direction), so on an L = 2 periodic axis the pair (x, x+μ) carries two bonds, exactly as
in the energy computed with ``torch.roll``. Only ferromagnetic couplings (βJ ≥ 0, κ ≥ 0) and
zero external field are supported.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch

from hpc_rg.rng import Generators, chain_rand, chain_randint

Scalar = Union[float, torch.Tensor]

__all__ = [
    "fk_bonds",
    "label_clusters",
    "swendsen_wang_update",
    "wolff_update",
    "phi4_swendsen_wang_update",
    "phi4_wolff_update",
]


def _per_chain(x: Scalar, ref: torch.Tensor, name: str) -> torch.Tensor:
    """Broadcast a float or (B,) tensor to shape (B, 1, ..., 1) float64 on ref's device."""
    B = ref.shape[0]
    t = torch.as_tensor(x, dtype=torch.float64, device=ref.device)
    if t.ndim == 0:
        t = t.expand(B)
    if t.shape != (B,):
        raise ValueError(f"{name} must be a float or a tensor of shape ({B},), got shape {tuple(t.shape)}")
    return t.reshape((B,) + (1,) * (ref.ndim - 1))


def _check_config(x: torch.Tensor, what: str) -> None:
    if x.ndim < 2:
        raise ValueError(f"{what} must have shape (B, L_1, ..., L_d) with d >= 1, got shape {tuple(x.shape)}")


def fk_bonds(values: torch.Tensor, coupling: Scalar, generator: Generators) -> List[torch.Tensor]:
    """Activate Fortuin–Kasteleyn bonds for an (embedded) Ising ferromagnet.

    Parameters
    ----------
    values : torch.Tensor, shape (B, L_1, ..., L_d)
        Spins ±1 (any dtype) or real fields φ; the sign is the Ising variable.
    coupling : float or torch.Tensor of shape (B,)
        Dimensionless coupling K ≥ 0 per chain (βJ for Ising, 2κ for φ⁴).
    generator : torch.Generator or sequence of B torch.Generator
        Source of the d·B·N uniform numbers (shape (d, B, L_1, ..., L_d); a per-chain
        generator draws its chain's (d, 1, L_1, ..., L_d) slice); on ``values.device``.

    Returns
    -------
    list of torch.Tensor, d entries of shape (B, L_1, ..., L_d), dtype bool
        Entry μ is True where the bond (x, x+μ̂) (periodic) is active.

    Notes
    -----
    For the weight ``exp(Σ_{<xy>} K a_x a_y ε_x ε_y)`` in the signs ε = sign(a), the bond
    probability is ``p_xy = 1 - exp(-2 K |a_x||a_y|)`` if ε_x = ε_y and 0 otherwise, i.e.
    ``p = max(0, -expm1(-2 K a_x a_y))``.
    """
    _check_config(values, "values")
    K = _per_chain(coupling, values, "coupling")
    if bool((K < 0).any()):
        raise ValueError("cluster updates need a ferromagnetic coupling (beta*J >= 0, kappa >= 0)")
    d = values.ndim - 1
    u = chain_rand((d,) + tuple(values.shape), generator, dtype=torch.float64, device=values.device,
                   axis=1)
    bonds = []
    if values.is_floating_point():
        a = values.to(torch.float64)
        for mu in range(d):
            prod = a * torch.roll(a, shifts=-1, dims=1 + mu)
            # p < 0 (never accepted, u >= 0) for anti-aligned pairs
            bonds.append(u[mu] < -torch.expm1(-2.0 * K * prod))
    else:  # integer spins ±1: p depends on the chain only
        p = -torch.expm1(-2.0 * K)
        for mu in range(d):
            bonds.append((values == torch.roll(values, shifts=-1, dims=1 + mu)) & (u[mu] < p))
    return bonds


def label_clusters(bonds: Sequence[torch.Tensor], max_iter: int = 100_000) -> torch.Tensor:
    """Label the connected components of the active-bond graph on a periodic lattice.

    Parameters
    ----------
    bonds : sequence of d bool tensors of shape (B, L_1, ..., L_d)
        ``bonds[mu][b, x]`` connects site x with x+μ̂ (periodic) in chain b.
    max_iter : int
        Safety cap on hooking iterations (never reached in practice).

    Returns
    -------
    torch.Tensor, shape (B, L_1, ..., L_d), dtype int64
        For each site, the global flat index ``b·N + i`` (row-major) of the smallest site of
        its cluster. Chains never share labels.

    Notes
    -----
    Min-label hooking with full pointer jumping (see the module docstring): invariant
    ``P[x] <= x`` and P[x] in cluster(x); converges to the cluster minimum. O(d·B·N) work
    per iteration, O(log N) iterations typical, O(diameter) worst case.
    """
    if len(bonds) == 0:
        raise ValueError("label_clusters needs at least one bond direction")
    shape = tuple(bonds[0].shape)
    dev = bonds[0].device
    n = bonds[0].numel()
    site = torch.arange(n, dtype=torch.int64, device=dev)
    # Edge list (x, y) of active bonds, all directions concatenated.
    xs, ys = [], []
    for mu, b in enumerate(bonds):
        nb = torch.roll(site.view(shape), shifts=-1, dims=1 + mu).reshape(-1)
        idx = torch.nonzero(b.reshape(-1)).squeeze(1)
        xs.append(idx)
        ys.append(nb.index_select(0, idx))
    x = torch.cat(xs)
    y = torch.cat(ys)
    parent = site.clone()
    for _ in range(max_iter):
        if x.numel() == 0:
            return parent.view(shape)
        px = torch.gather(parent, 0, x)
        py = torch.gather(parent, 0, y)
        m = torch.minimum(px, py)
        # Hook both roots onto the smaller label (P[P[x]] <- min(P[P[x]], P[x], P[y])).
        parent.scatter_reduce_(0, px, m, reduce="amin")
        parent.scatter_reduce_(0, py, m, reduce="amin")
        while True:  # pointer jumping until every tree is a star
            jumped = torch.gather(parent, 0, parent)
            if torch.equal(jumped, parent):
                break
            parent = jumped
        # An edge whose ends share a root stays internal for good: drop it.
        live = torch.nonzero(torch.gather(parent, 0, x) != torch.gather(parent, 0, y)).squeeze(1)
        x, y = x.index_select(0, live), y.index_select(0, live)
    raise RuntimeError(f"label_clusters did not converge in {max_iter} iterations")


def _flip_swendsen_wang(x: torch.Tensor, labels: torch.Tensor, generator: Generators) -> torch.Tensor:
    # one bit per global label b*N + i: chain b draws its N bits (a batch of one's draw)
    B = x.shape[0]
    n = labels.numel() // max(B, 1)
    bits = chain_rand((B, n), generator, device=x.device).reshape(-1) < 0.5
    flip = torch.gather(bits, 0, labels.reshape(-1)).view(x.shape)
    return torch.where(flip, -x, x)


def _flip_wolff(x: torch.Tensor, labels: torch.Tensor, generator: Generators) -> Tuple[torch.Tensor, torch.Tensor]:
    B = x.shape[0]
    n = labels[0].numel()
    seeds = chain_randint(0, n, (B,), generator, device=x.device)  # one seed site per chain
    seeds = seeds + n * torch.arange(B, device=x.device)
    root = labels.reshape(-1)[seeds]  # (B,)
    flip = labels.reshape(B, -1) == root[:, None]
    size = flip.sum(dim=1)
    flip = flip.view(x.shape)
    return torch.where(flip, -x, x), size


def swendsen_wang_update(
    spins: torch.Tensor, beta: Scalar, generator: Generators, J: Scalar = 1.0
) -> torch.Tensor:
    """One Swendsen–Wang update of every chain of an Ising ferromagnet (h = 0).

    Parameters
    ----------
    spins : torch.Tensor, shape (B, L_1, ..., L_d), values ±1 (int or float dtype)
    beta : float or torch.Tensor of shape (B,)
        Inverse temperature per chain (units of 1/J).
    generator : torch.Generator or sequence of B torch.Generator
        On ``spins.device``; one per chain makes chain b's update depend only on
        ``generator[b]`` (bit-identical to updating it alone).
    J : float or torch.Tensor of shape (B,)
        Ferromagnetic coupling J > 0 in ``H = -J Σ_x Σ_μ s_x s_{x+μ}``.

    Returns
    -------
    torch.Tensor
        New configuration, same shape/dtype/device as ``spins`` (input not modified).

    Notes
    -----
    FK bonds between aligned neighbours with ``p = 1 - exp(-2βJ)``, then every cluster is
    flipped with probability 1/2. Satisfies detailed balance w.r.t. ``exp(-βH)``.
    """
    _check_config(spins, "spins")
    K = _per_chain(beta, spins, "beta") * _per_chain(J, spins, "J")
    labels = label_clusters(fk_bonds(spins, K.reshape(-1), generator))
    return _flip_swendsen_wang(spins, labels, generator)


def wolff_update(
    spins: torch.Tensor, beta: Scalar, generator: Generators, J: Scalar = 1.0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One Wolff single-cluster update per chain of an Ising ferromagnet (h = 0).

    Parameters
    ----------
    spins : torch.Tensor, shape (B, L_1, ..., L_d), values ±1
    beta : float or torch.Tensor of shape (B,)
        Inverse temperature per chain.
    generator : torch.Generator or sequence of B torch.Generator
        As for :func:`swendsen_wang_update`.
    J : float or torch.Tensor of shape (B,)
        Ferromagnetic coupling J > 0.

    Returns
    -------
    spins : torch.Tensor
        New configuration (same shape/dtype/device).
    cluster_size : torch.Tensor, shape (B,), int64
        Number of flipped sites per chain (⟨|C|⟩ is the improved susceptibility estimator;
        ``cluster_size / N`` is the work in sweeps-equivalents).

    Notes
    -----
    The cluster of a uniformly random seed in the FK bond graph (``p = 1 - exp(-2βJ)``) is
    flipped; this is distributed exactly as Wolff's grown cluster (see module docstring).
    """
    _check_config(spins, "spins")
    K = _per_chain(beta, spins, "beta") * _per_chain(J, spins, "J")
    labels = label_clusters(fk_bonds(spins, K.reshape(-1), generator))
    return _flip_wolff(spins, labels, generator)


def _phi4_coupling(phi: torch.Tensor, kappa: Scalar) -> torch.Tensor:
    return 2.0 * _per_chain(kappa, phi, "kappa").reshape(-1)


def phi4_wolff_update(
    phi: torch.Tensor, kappa: Scalar, generator: Generators
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Embedded-Ising Wolff update of the signs of a φ⁴ field (Brower–Tamayo).

    Parameters
    ----------
    phi : torch.Tensor, shape (B, L_1, ..., L_d), float
    kappa : float or torch.Tensor of shape (B,)
        Hopping parameter κ ≥ 0 of the action below (λ does not enter).
    generator : torch.Generator or sequence of B torch.Generator
        As for :func:`swendsen_wang_update`.

    Returns
    -------
    phi : torch.Tensor
        φ with φ → -φ on one cluster per chain.
    cluster_size : torch.Tensor, shape (B,), int64

    Notes
    -----
    Action (Bauer et al. 2024): ``S = Σ_x [(1-2λ)φ_x² + λφ_x⁴ - 2κ Σ_μ φ_x φ_{x+μ}]``.
    Writing φ_x = ε_x |φ_x|, only the hopping term depends on the signs:
    ``-S ⊃ Σ_{x,μ} J_{x,μ} ε_x ε_{x+μ}`` with ``J_{x,μ} = 2κ |φ_x||φ_{x+μ}|``, an Ising model
    with bond-dependent couplings and β = 1. Its FK bond probability is
    ``p = 1 - exp(-2 J) = 1 - exp(-4κ |φ_x||φ_{x+μ}|)`` for ε_x = ε_{x+μ} (0 otherwise).
    Flipping a cluster leaves |φ| and hence the on-site terms unchanged, so the update
    satisfies detailed balance for exp(-S). It is not ergodic alone (|φ| is frozen): combine
    it with HMC/Metropolis/Langevin.
    """
    _check_config(phi, "phi")
    labels = label_clusters(fk_bonds(phi, _phi4_coupling(phi, kappa), generator))
    return _flip_wolff(phi, labels, generator)


def phi4_swendsen_wang_update(phi: torch.Tensor, kappa: Scalar, generator: Generators) -> torch.Tensor:
    """Embedded-Ising Swendsen–Wang update of a φ⁴ field: flip each cluster with prob 1/2.

    Parameters and physics as in :func:`phi4_wolff_update`; returns the new φ only.
    """
    _check_config(phi, "phi")
    labels = label_clusters(fk_bonds(phi, _phi4_coupling(phi, kappa), generator))
    return _flip_swendsen_wang(phi, labels, generator)
