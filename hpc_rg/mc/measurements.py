"""What the Monte Carlo ensemble measures on its chains: energies, magnetisations, φ⁴ field
moments, replica overlaps and the stored configurations.

Every full-lattice quantity is reduced the same way: per-site densities are summed over all
lattice axes but the first (per plane, :func:`_plane_sums`), the planes of the slab ranks are
gathered in global order and summed (:meth:`Measurements._slab_sum`), so results are
bit-identical for any number of slabs.
"""

from __future__ import annotations

import numpy as np
import torch

from hpc_rg.mc.msc import observables as mobs
from hpc_rg.models.energy import energy_density
from hpc_rg.models.lattice import forward_bond_products
from hpc_rg.parallel.halo import exchange_halo

__all__ = ["Measurements"]


class Measurements:
    """The observables of :class:`hpc_rg.mc.ensemble.Ensemble`, which holds the state they
    read: ``x`` (B, *local_shape), ``slab``/``n_slabs``, ``spec``, ``temp_index``, the
    per-chain couplings (``_energy_couplings``) and the φ⁴ field scale ``_scale`` -- or, for
    multi-spin-coded chains, ``_msc`` (:class:`hpc_rg.mc.msc.chains.MscChains`, then ``x`` is
    None), whose observables are exact bit counts equal to the float path's numbers."""
    def _padded64(self) -> torch.Tensor:
        """Configuration as float64 with one ghost plane each side of axis 1."""
        return exchange_halo(self.x, self.slab if self.n_slabs > 1 else None).to(torch.float64)

    def _densities(self, names) -> np.ndarray:
        """Per-plane sums of per-site densities, shape (len(names), B, Lx), float64.

        Names: ``energy`` (the Hamiltonian density; phi^4: the action density),
        ``spin`` (x), ``spin2`` (x^2). Local (no collective except the halo exchange).
        """
        p = self._padded64()
        s = p[:, 1:-1]
        bonds = forward_bond_products(p) if "energy" in names else None
        out = []
        for name in names:
            if name == "spin":
                dens = s
            elif name == "spin2":
                dens = s * s
            else:
                dens = energy_density(self.model, s, bonds, **self._energy_couplings())
            out.append(_plane_sums(dens))
        return torch.stack(out).cpu().numpy() if out else np.zeros((0, self.B, self.local_shape[0]))

    def _slab_sum(self, planes: np.ndarray) -> np.ndarray:
        """Collective over the slab: full-lattice totals from per-plane sums.

        ``planes`` has shape (..., Lx); the planes of all slab ranks are gathered into
        (..., L) in global order and summed along the last axis, so the result is
        bit-identical for any number of slabs.
        """
        a = np.ascontiguousarray(planes, dtype=np.float64)
        if self.n_slabs > 1:
            buf = np.empty((self.n_slabs,) + a.shape)
            self.slab.Allgather(a, buf)
            a = np.ascontiguousarray(np.concatenate(list(buf), axis=-1))
        return a.sum(axis=-1)

    def measure(self) -> dict:
        """Per-chain observables of the full lattice (collective over the slab).

        Returns
        -------
        dict of str -> float64 array, shape (B,)
            ``energy``: energy per site (units of J; phi^4: action per site);
            ``magnetization``: sum of spins per site, signed (phi^4: ``phi_mean``).
            phi^4 also: ``phi_mean`` = (1/N) sum phi, ``phi2_mean`` = (1/N) sum phi^2,
            ``action`` = total action S (dimensionless).
        """
        N = float(self.n_sites)
        if self._msc is not None:
            e, m1 = self._msc_totals()
            return {"energy": e / N, "magnetization": m1 / N}
        if self.spec.continuous:
            e, m1, m2 = self._slab_sum(self._densities(("energy", "spin", "spin2")))
            pm = m1 / N * self._scale
            return {"energy": e / N, "magnetization": pm, "phi_mean": pm,
                    "phi2_mean": m2 / N * self._scale ** 2, "action": e}
        e, m1 = self._slab_sum(self._densities(("energy", "spin")))
        return {"energy": e / N, "magnetization": m1 / N}

    def energies(self) -> np.ndarray:
        """Total energy of each local chain (phi^4: total action), shape (B,), float64.
        Collective over the slab."""
        if self._msc is not None:
            return self._msc_totals(with_spins=False)[0]
        return self._slab_sum(self._densities(("energy",)))[0]

    def _msc_totals(self, with_spins: bool = True) -> np.ndarray:
        """Multi-spin-coded chains: total energy and (``with_spins``) total magnetisation,
        ``(2 or 1, B)`` float64, from exact bit counts (collective over the slab)."""
        counts = [self._msc.unsatisfied()]
        if with_spins:
            counts.append(mobs.down_spins(self._msc.bits(bonds=False)))
        tot = self._slab_sum(np.stack(counts).astype(np.float64)[..., None])
        N = float(self.n_sites)
        out = [self._msc_energy(tot[0], summed=True)]
        if with_spins:
            out.append(N - 2.0 * tot[1])
        return np.stack(out)

    def _msc_energy(self, unsat, summed: bool = False) -> np.ndarray:
        """Total energies ``(B,)`` from the unsatisfied-bond counts of the slab (``summed``:
        already summed over the slab ranks; else collective over the slab)."""
        if not summed and self.n_slabs > 1:
            unsat = self._slab_sum(np.asarray(unsat, dtype=np.float64)[..., None])
        unsat = np.asarray(unsat, dtype=np.float64)  # one slab: the sum is the count itself
        scale = 1.0 if self.spec.disordered else abs(float(self.cfg.model.J))
        return -scale * (self.dims * float(self.n_sites) - 2.0 * unsat)

    def pair_observables(self):
        """Replica overlaps at every temperature (Edwards-Anderson; collective over the slab).

        Returns
        -------
        d_indices : int64 array, shape (D_local,)
            Disorder samples of this group.
        values : dict of str -> float64 array, shape (D_local, T, P)
            ``overlap`` ``q = (1/N) sum_x s^a_x s^b_x`` and ``link_overlap``
            ``q_l = (1/(dN)) sum_x sum_mu s^a_x s^a_{x+mu} s^b_x s^b_{x+mu}`` of the chains
            of replicas a < b (P = R(R-1)/2 pairs, lexicographic) currently at each
            temperature. Empty dict for clean models.
        """
        if not self.spec.disordered:
            return self.d_indices.copy(), {}
        R, T, Dl = self.R, self.T, len(self.d_indices)
        pairs = [(a, b) for a in range(R) for b in range(a + 1, R)]
        who = np.argsort(self.temp_index.reshape(Dl, R, T), axis=-1)  # member at temp t
        idx = (np.arange(Dl)[:, None, None] * R + np.arange(R)[None, :, None]) * T + who
        N = float(self.n_sites)
        if self._msc is not None:
            bits = self._msc.bits()
            diff = np.stack([mobs.pair_differences(bits, idx[:, a, :].reshape(-1),
                                                   idx[:, b, :].reshape(-1)) for a, b in pairs], 1) \
                if pairs else np.zeros((2, 0, Dl * T), dtype=np.int64)
            tot = self._slab_sum(diff.astype(np.float64)[..., None])  # (2, P, Dl*T)
            q = np.moveaxis((N - 2.0 * tot[0]).reshape(len(pairs), Dl, T), 0, -1) / N
            ql = np.moveaxis((self.dims * N - 2.0 * tot[1]).reshape(len(pairs), Dl, T), 0, -1) \
                / (N * self.dims)
            return self.d_indices.copy(), {"overlap": q, "link_overlap": ql}
        p = self._padded64()
        s = p[:, 1:-1]
        bonds = torch.stack(forward_bond_products(p), dim=1)  # (B, d, *local)
        planes = []
        for a, b in pairs:
            ia = torch.as_tensor(idx[:, a, :].reshape(-1), device=s.device)
            ib = torch.as_tensor(idx[:, b, :].reshape(-1), device=s.device)
            q = _plane_sums(s[ia] * s[ib])
            ql = _plane_sums((bonds[ia] * bonds[ib]).sum(dim=1))
            planes.append(torch.stack([q, ql]))
        Lx = self.local_shape[0]
        arr = torch.stack(planes, dim=1).cpu().numpy() if planes else np.zeros((2, 0, 0, Lx))
        tot = self._slab_sum(arr)  # (2, P, Dl*T)
        q = np.moveaxis(tot[0].reshape(len(pairs), Dl, T), 0, -1) / N
        ql = np.moveaxis(tot[1].reshape(len(pairs), Dl, T), 0, -1) / (N * self.dims)
        return self.d_indices.copy(), {"overlap": q, "link_overlap": ql}

    def configs(self) -> np.ndarray:
        """This rank's slab of every local chain, shape (B, *local_shape).

        int8 +-1 spins, or float32 fields (phi^4, in the deck's parametrisation).
        """
        if self._msc is not None:
            return self._msc.spins_pm(torch.int8).cpu().numpy()
        if self.spec.continuous:
            scale = torch.as_tensor(self._scale, dtype=self.x.dtype, device=self.x.device)
            return (self.x * scale.reshape((-1,) + (1,) * self.dims)).to(torch.float32).cpu().numpy()
        return self.x.to(torch.int8).cpu().numpy()


def _plane_sums(x: torch.Tensor) -> torch.Tensor:
    """Sum over all lattice axes but the first: (B, Lx, ...) -> (B, Lx), float64.

    Reduces one trailing axis at a time so every plane is summed the same way whatever
    the slab thickness.
    """
    x = x.to(torch.float64)
    while x.dim() > 2:
        x = x.sum(dim=-1)
    return x
