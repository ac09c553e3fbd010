"""Multi-spin-coded ±J kernel (hpc_rg.mc.msc): layout helpers, random words, exactness.

Physics checks run many independent chains side by side (the lanes) and compare per-lane
time averages with exact results within 4 sigma, sigma = spread of the lane averages over
sqrt(lanes) (lanes are independent chains, so this is honest whatever the autocorrelation).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpc_rg.analysis.exact import ising1d_energy, ising2d_energy
from hpc_rg.mc.msc import layout, rng
from hpc_rg.mc.msc import sweep_torch as st

LANES = 64


def random_words(*shape, gen):
    return torch.randint(-2 ** 63, 2 ** 63 - 1, shape, dtype=torch.int64, generator=gen)


# ----------------------------------------------------------------------------- helpers
def test_pack_unpack_roundtrip_and_lane_order():
    gen = torch.Generator().manual_seed(1)
    pm = 1 - 2 * torch.randint(0, 2, (128, 4, 6), generator=gen)
    words = layout.pack_spins(pm)
    assert words.shape == (2, 4, 6) and words.dtype == torch.int64
    assert torch.equal(layout.unpack_spins(words, torch.int64), pm)
    b, w = 37, 1  # system 64 w + b is bit b of word w; bit = 1 means s = -1
    assert torch.equal((words[w] >> b) & 1, (pm[64 * w + b] < 0).long())


def test_energy_and_overlap_against_plain_spins():
    gen = torch.Generator().manual_seed(2)
    d, L = 3, (4, 2, 6)
    pm = (1 - 2 * torch.randint(0, 2, (128,) + L, generator=gen)).double()
    pm2 = (1 - 2 * torch.randint(0, 2, (128,) + L, generator=gen)).double()
    Jpm = (1 - 2 * torch.randint(0, 2, (128, d) + L, generator=gen)).double()
    E = -sum((Jpm[:, mu] * pm * torch.roll(pm, -1, mu + 1)).sum((1, 2, 3)) for mu in range(d))
    got = layout.energy(layout.pack_spins(pm), layout.pack_couplings(Jpm))
    assert torch.equal(got.reshape(-1), E.long())
    E0 = -sum((pm * torch.roll(pm, -1, mu + 1)).sum((1, 2, 3)) for mu in range(d))
    assert torch.equal(layout.energy(layout.pack_spins(pm)).reshape(-1), E0.long())
    q = (pm * pm2).mean((1, 2, 3))
    assert torch.allclose(layout.overlap(layout.pack_spins(pm), layout.pack_spins(pm2)).reshape(-1), q)
    shared = Jpm[0]
    planes = layout.pack_couplings(shared, words=2)
    assert torch.equal(layout.unpack_couplings(planes), shared.float().expand(128, *shared.shape))


@pytest.mark.parametrize("rule", layout.RULES)
def test_threshold_digits_are_p_truncated(rule):
    d = 3
    beta = torch.linspace(0.0, 3.0, 128, dtype=torch.float64).reshape(2, 64)
    thr = layout.thresholds(beta, d, rule)
    assert thr.shape == (2, 2 * d + 1, 33)
    bits = (thr.unsqueeze(-1) >> torch.arange(64)) & 1  # (W, n, 33, 64)
    value = sum(bits[:, :, j].double() * 2.0 ** -j for j in range(1, 33))
    for n in range(2 * d + 1):
        dE = 2 * (2 * n - 2 * d)
        p = (torch.ones_like(beta) if dE <= 0 else torch.exp(-beta * dE)) if rule == "metropolis" \
            else 1 / (1 + torch.exp(beta * dE))
        always = p >= 1
        assert torch.equal(bits[:, n, 0].bool(), always)
        expect = torch.where(always, torch.zeros_like(p), torch.floor(p * 2.0 ** 32) / 2.0 ** 32)
        assert torch.equal(value[:, n], expect)


def test_random_words_follow_the_documented_formulas():
    seed, w, x, c, j = 12345, 7, 1001, 9, 3
    M = rng.M64
    mix = rng.mix64_int
    sk = mix(seed ^ rng.S_SEED)
    wk = mix(sk ^ mix((w * rng.GAMMA + rng.S_WORD) & M))
    ck = mix((((c + 1) * rng.GAMMA) & M) ^ rng.S_CTR)
    xk = mix(mix((x * rng.GAMMA + rng.S_SITE) & M) ^ ck)
    R = mix((mix(wk ^ xk) + j * rng.GAMMA) & M)
    key = rng.mix64(rng.word_keys(seed, torch.tensor([w])) ^ rng.site_keys(torch.tensor([x]), c))
    assert int(rng.digit_word(key, j)) == rng.signed64(R)


def test_random_words_are_balanced_and_uncorrelated_across_lanes():
    keys = rng.mix64(rng.word_keys(3, torch.arange(4)).view(4, 1)
                     ^ rng.site_keys(torch.arange(4096), 5).view(1, -1))
    R = torch.stack([rng.digit_word(keys, j) for j in (1, 2)])
    bits = ((R.unsqueeze(-1) >> torch.arange(64)) & 1).double()  # (2, 4, 4096, 64)
    n = bits[0, :, :, 0].numel()
    mean = bits.mean((1, 2))
    assert float((mean - 0.5).abs().max()) < 4.5 * 0.5 / math.sqrt(n)
    c = (bits[0] - 0.5).reshape(-1, 64)
    corr = (c.T @ c) / (0.25 * c.shape[0])
    off = corr[~torch.eye(64, dtype=torch.bool)]
    assert float(off.abs().max()) < 5.5 / math.sqrt(c.shape[0])


# ----------------------------------------------------------------------------- slabs
def test_slab_with_ghost_planes_equals_full_lattice():
    gen = torch.Generator().manual_seed(5)
    L, W, d = (6, 4, 4), 2, 3
    spins = random_words(W, *L, gen=gen)
    J = random_words(W, d, *L, gen=gen)
    beta = torch.rand(W, 64, generator=gen, dtype=torch.float64) * 2
    thr = layout.thresholds(beta, d, "heatbath")
    ids = torch.arange(math.prod(L)).reshape(L)
    wid = torch.tensor([10, 3])
    full = spins.clone()
    slabs = [spins[:, 0:2].clone(), spins[:, 2:6].clone()]
    starts = [0, 2]
    for sweep_index in range(3):
        for colour in (0, 1):
            cnt = 2 * sweep_index + colour
            st.update_colour(full, J, thr, 9, wid, ids, cnt, colour)
            whole = torch.cat(slabs, 1)
            for k, (x0, slab) in enumerate(zip(starts, slabs)):
                n0 = slab.shape[1]
                ghosts = (whole[:, (x0 - 1) % 6], whole[:, (x0 + n0) % 6], J[:, 0, (x0 - 1) % 6])
                st.update_colour(slab, J[:, :, x0:x0 + n0], thr, 9, wid, ids[x0:x0 + n0], cnt,
                                 colour, parity0=x0, ghosts=ghosts)
            assert torch.equal(torch.cat(slabs, 1), full)


# ----------------------------------------------------------------------------- exactness
def _run(spins, J, thr, seed, n_sweeps, burn, every, measure):
    """Sweeps (torch reference); returns the stacked measurements after ``burn`` sweeps."""
    W = spins.shape[0]
    ids = torch.arange(spins[0].numel()).reshape(spins.shape[1:])
    wid = torch.arange(W)
    out = []
    for s in range(burn + n_sweeps):
        st.sweep(spins, J, thr, seed, wid, ids, s)
        if s >= burn and (s - burn) % every == 0:
            out.append(measure(spins))
    return torch.stack(out)


def _lane_mean_sigma(x):
    """Mean over lanes of per-lane time averages ``x (T, lanes)`` and its standard error."""
    m = x.double().mean(0)
    return float(m.mean()), float(m.std() / math.sqrt(m.numel()))


def _pm_j_4x4_exact(Jpm: np.ndarray, betas):
    """Exact energies <E> and P(|q|) of the 4 x 4 periodic ±J model by enumeration."""
    L = 4
    states = np.arange(1 << 16)
    s = 1 - 2 * ((states[:, None] >> np.arange(16)) & 1).reshape(-1, L, L)
    E = -sum((Jpm[mu] * s * np.roll(s, -1, mu + 1)).sum((1, 2)) for mu in range(2)).astype(float)
    out = []
    for b in betas:
        w = np.exp(-b * (E - E.min()))
        w /= w.sum()
        f = w.copy()  # xor-autocorrelation of w: P(t = a ^ b) = sum_a w_a w_{a^t}
        h = 1
        while h < len(f):
            f = f.reshape(-1, 2, h)
            f = np.stack([f[:, 0] + f[:, 1], f[:, 0] - f[:, 1]], 1).reshape(-1)
            h *= 2
        g = f * f
        h = 1
        while h < len(g):
            g = g.reshape(-1, 2, h)
            g = np.stack([g[:, 0] + g[:, 1], g[:, 0] - g[:, 1]], 1).reshape(-1)
            h *= 2
        g /= len(g)
        flips = np.array([bin(t).count("1") for t in states])
        absq = np.abs(1 - 2 * flips / 16)
        pq = np.array([g[absq == v].sum() for v in np.arange(0, 9) / 8])
        out.append(((w * E).sum(), pq))
    return out


@pytest.mark.parametrize("rule", layout.RULES)
def test_pm_j_4x4_energy_and_overlap_distribution_exact(rule):
    L, d, W = 4, 2, 4  # 256 chains per replica; replica B = words W..2W-1
    betas = (0.4, 0.7, 1.0, 1.3)
    gen = torch.Generator().manual_seed(11)
    Jpm = 1 - 2 * torch.randint(0, 2, (d, L, L), generator=gen)
    J = layout.pack_couplings(Jpm, words=2 * W)
    beta = torch.tensor(betas, dtype=torch.float64).repeat(16).expand(2 * W, 64)  # lane b: betas[b % 4]
    thr = layout.thresholds(beta, d, rule)
    spins = random_words(2 * W, L, L, gen=gen)
    absq_values = torch.arange(9, dtype=torch.float64) / 8

    def measure(s):
        E = layout.energy(s, J)  # (2W, 64)
        q = layout.overlap(s[:W], s[W:]).abs()  # (W, 64)
        hist = (q.unsqueeze(-1) == absq_values).double()  # (W, 64, 9)
        return torch.cat([E.double().reshape(2, W, 64).permute(1, 2, 0), hist], -1)

    data = _run(spins, J, thr, seed=4, n_sweeps=500, burn=100, every=2, measure=measure)
    exact = _pm_j_4x4_exact(Jpm.numpy(), betas)
    for k, (E_ex, pq_ex) in enumerate(exact):
        lanes = data[:, :, k::4]  # (T, W, 16, 11): the lanes at betas[k]
        for r in range(2):
            m, s = _lane_mean_sigma(lanes[..., r].reshape(len(lanes), -1))
            assert abs(m - E_ex) < 4 * s, (rule, betas[k], r, m, E_ex, s)
        for v in range(9):
            m, s = _lane_mean_sigma(lanes[..., 2 + v].reshape(len(lanes), -1))
            s = max(s, 1e-3)  # bins that are ~never hit have no spread to estimate
            assert abs(m - pq_ex[v]) < 4 * s, (rule, betas[k], v, m, pq_ex[v], s)


@pytest.mark.parametrize("rule", layout.RULES)
def test_ising_2d_energy_matches_kaufman(rule):
    L, W = 8, 2
    temps = (2.0, 2.27, 2.6, 3.5)
    beta = (1 / torch.tensor(temps, dtype=torch.float64)).repeat(16).expand(W, 64)
    thr = layout.thresholds(beta, 2, rule)
    spins = torch.zeros(W, L, L, dtype=torch.int64)  # all up: an ordered start
    data = _run(spins, None, thr, seed=8, n_sweeps=600, burn=150, every=2,
                measure=lambda s: layout.energy(s).double() / L ** 2)
    for k, T in enumerate(temps):
        m, s = _lane_mean_sigma(data[:, :, k::4].reshape(len(data), -1))
        assert abs(m - ising2d_energy(L, T)) < 4 * s, (rule, T, m, ising2d_energy(L, T), s)


def test_ising_1d_energy_matches_transfer_matrix():
    """Heat bath only: checkerboard Metropolis in 1D flips every ΔE = 0 spin, so domain walls
    move deterministically and the chain does not mix (a property of the rule, not the kernel)."""
    N, W = 16, 2
    temps = (0.7, 1.5)
    beta = (1 / torch.tensor(temps, dtype=torch.float64)).repeat(32).expand(W, 64)
    thr = layout.thresholds(beta, 1, "heatbath")
    spins = torch.zeros(W, N, dtype=torch.int64)
    data = _run(spins, None, thr, seed=2, n_sweeps=500, burn=100, every=2,
                measure=lambda s: layout.energy(s).double() / N)
    for k, T in enumerate(temps):
        m, s = _lane_mean_sigma(data[:, :, k::2].reshape(len(data), -1))
        assert abs(m - ising1d_energy(N, T)) < 4 * s, (T, m, ising1d_energy(N, T), s)


# ----------------------------------------------------------------------------- compiled kernel
def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            return flag in fh.read().split()
    except OSError:
        return False


def _isas():
    """Instruction sets this CPU can run (the kernel is built for each; skipped without g++)."""
    from hpc_rg.mc.msc import compiled as mc
    out = ["SCALAR"] + (["AVX2"] if _cpu_has("avx2") else []) \
        + (["AVX512"] if _cpu_has("avx512f") and _cpu_has("avx512dq") else [])
    try:
        for isa in out:
            mc.load_library(isa)
    except mc.KernelUnavailable as exc:
        pytest.skip(f"compiled MSC kernel unavailable: {exc}")
    return out


CASES = [((8,), "metropolis", "per-lane"), ((6, 4), "heatbath", "per-lane"),
         ((4, 4, 6), "metropolis", "per-lane"), ((4, 6, 2), "heatbath", "none"),
         ((8, 8), "metropolis", "broadcast"), ((4, 4, 4), "heatbath", "broadcast")]


@pytest.mark.parametrize("shape,rule,couplings", CASES)
def test_compiled_sweep_is_bit_identical_to_torch(shape, rule, couplings):
    from hpc_rg.mc.msc import compiled as mc
    isas = _isas()
    gen = torch.Generator().manual_seed(sum(shape) * 7 + len(rule))
    d = len(shape)
    for W in (1, 5, 9):  # not multiples of the vector width: padding words
        spins = random_words(W, *shape, gen=gen)
        J = {"per-lane": lambda: random_words(W, d, *shape, gen=gen),
             "broadcast": lambda: layout.pack_couplings(
                 1 - 2 * torch.randint(0, 2, (d,) + shape, generator=gen), words=W),
             "none": lambda: None}[couplings]()
        beta = torch.rand(W, 64, generator=gen, dtype=torch.float64) * 1.5
        beta[:, ::7] = 0.0  # beta = 0 lanes: p = 1 (Metropolis), 1/2 (heat bath)
        thr = layout.thresholds(beta, d, rule)
        ids = torch.arange(math.prod(shape)).reshape(shape) * 3 + 11
        wid = torch.arange(W) + 40
        ref = spins.clone()
        outs = {isa: spins.clone() for isa in isas}
        for k in range(3):
            st.sweep(ref, J, thr, 77, wid, ids, k)
            for isa, s in outs.items():
                mc.sweep(s, J, thr, 77, wid, ids, k, isa=isa)
        for isa, s in outs.items():
            assert torch.equal(s, ref), (isa, shape, rule, couplings, W)


def test_compiled_slab_update_is_bit_identical_to_full_lattice():
    from hpc_rg.mc.msc import compiled as mc
    isas = _isas()
    gen = torch.Generator().manual_seed(21)
    L, W, d = (6, 4, 4), 3, 3
    spins = random_words(W, *L, gen=gen)
    J = random_words(W, d, *L, gen=gen)
    thr = layout.thresholds(torch.rand(W, 64, generator=gen, dtype=torch.float64), d, "metropolis")
    ids = torch.arange(math.prod(L)).reshape(L)
    wid = torch.arange(W)
    for isa in isas:
        full = spins.clone()
        slabs, starts = [spins[:, 0:3].clone(), spins[:, 3:6].clone()], [0, 3]
        for sweep_index in range(2):
            st.sweep(full, J, thr, 9, wid, ids, sweep_index)
            for colour in (0, 1):
                whole = torch.cat(slabs, 1)
                for x0, slab in zip(starts, slabs):
                    n0 = slab.shape[1]
                    ghosts = (whole[:, (x0 - 1) % 6], whole[:, (x0 + n0) % 6], J[:, 0, (x0 - 1) % 6])
                    mc.update_colour(slab, J[:, :, x0:x0 + n0].contiguous(), thr, 9, wid,
                                     ids[x0:x0 + n0], 2 * sweep_index + colour, colour, parity0=x0,
                                     ghosts=ghosts, isa=isa)
        assert torch.equal(torch.cat(slabs, 1), full), isa


def test_compiled_multi_sweep_call_equals_single_sweeps():
    from hpc_rg.mc.msc import compiled as mc
    _isas()
    gen = torch.Generator().manual_seed(3)
    L, W, d = (4, 6, 4), 6, 3
    spins = random_words(W, *L, gen=gen)
    J = random_words(W, d, *L, gen=gen)
    thr = layout.thresholds(torch.rand(W, 64, generator=gen, dtype=torch.float64), d, "metropolis")
    ids, wid = torch.arange(math.prod(L)).reshape(L), torch.arange(W)
    ref, got = spins.clone(), spins.clone()
    st.sweep(ref, J, thr, 1, wid, ids, 5, n_sweeps=4)
    mc.sweep(got, J, thr, 1, wid, ids, 5, n_sweeps=4)
    assert torch.equal(got, ref)
    J[0, 0, 0, 0, 0] ^= 1  # couplings changed in place: the kernel must not reuse a stale copy
    st.sweep(ref, J, thr, 1, wid, ids, 9)
    mc.sweep(got, J, thr, 1, wid, ids, 9)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("shape", [(8,), (2,), (6, 4), (4, 4, 6), (2, 2, 2),  # even: in the update
                                   (5,), (3, 4), (4, 5, 2), (4, 4, 3)])  # odd sides: a pass
def test_compiled_sweep_counts_the_unsatisfied_bonds_it_leaves(shape):
    """``unsat=`` counts the bonds of the state after the call: inside the last colour-1 update
    when every side is even (each bond has one colour-1 end), in a pass of its own otherwise;
    either way the count of layout.unsatisfied, and the spins those of a call without it."""
    from hpc_rg.mc.msc import compiled as mc
    isas = _isas()
    gen = torch.Generator().manual_seed(sum(shape) * 13 + len(shape))
    d = len(shape)
    for W, J_kind, n in ((1, "per-lane", 1), (5, "none", 3), (9, "per-lane", 2)):
        spins = random_words(W, *shape, gen=gen)
        J = random_words(W, d, *shape, gen=gen) if J_kind == "per-lane" else None
        beta = torch.rand(W, 64, generator=gen, dtype=torch.float64) * 1.5
        thr = layout.thresholds(beta, d, "metropolis")
        ids, wid = torch.arange(math.prod(shape)).reshape(shape), torch.arange(W) + 3
        for isa in isas:
            ref, got = spins.clone(), spins.clone()
            mc.sweep(ref, J, thr, 5, wid, ids, 2, n_sweeps=n, isa=isa)
            unsat = torch.full((W, 64), -1, dtype=torch.int64)
            mc.sweep(got, J, thr, 5, wid, ids, 2, n_sweeps=n, unsat=unsat, isa=isa)
            assert torch.equal(got, ref), (isa, W)
            assert torch.equal(unsat, layout.unsatisfied(ref, J)), (isa, W)
            inner = mc.to_inner(spins, isa)  # the word-inner state, updated in place
            unsat.fill_(-1)
            mc.sweep(spins, J, thr, 5, wid, ids, 2, n_sweeps=n, unsat=unsat, inner=inner, isa=isa)
            assert torch.equal(mc.from_inner(inner, W, shape), ref)
            assert torch.equal(unsat, layout.unsatisfied(ref, J)), (isa, W, "inner")


def _reference_thresholds(beta_lanes, idle, d, rule):
    """layout.thresholds of per-lane betas (W, 64), idle lanes (bit set in ``idle``) always flip."""
    thr = layout.thresholds(beta_lanes, d, rule)
    thr[:, :, 0] |= torch.as_tensor(idle.view(np.int64))[:, None]
    return thr


@pytest.mark.parametrize("rule,d", [("metropolis", 3), ("heatbath", 2), ("metropolis", 1)])
def test_set_thresholds_equals_layout_thresholds(rule, d):
    """compiled.set_thresholds (bit transposes from per-value rows) against the reference
    packing, for all words, a subset of words, and only the columns that differ by value."""
    from hpc_rg.mc.msc import chains as ch
    from hpc_rg.mc.msc import compiled as mc
    isas = _isas()
    rs = np.random.default_rng(7 + d)
    W, K = 7, (2 * d + 1) * 33
    table = np.concatenate([rs.random(9) * 2.0, [0.0]])  # V = 10 values; 0 among them
    bits = layout.threshold_bits(torch.as_tensor(table), d, rule).reshape(len(table), K).numpy()
    rows = ch._pack_rows(bits)
    idle = rs.integers(0, 2 ** 63, W, dtype=np.int64).view(np.uint64) & np.uint64(0xF0F0F0F0F0F0F0F0)
    vcols = np.flatnonzero((bits != bits[:1]).any(0))
    for isa in isas:
        which = rs.integers(0, len(table), 64 * W).astype(np.int64)
        thr = torch.full((W, 2 * d + 1, 33), 12345, dtype=torch.int64)
        mc.set_thresholds(thr, rows, which, None, idle, isa=isa)
        ref = _reference_thresholds(torch.as_tensor(table[which]).view(W, 64), idle, d, rule)
        assert torch.equal(thr, ref), isa
        for step in range(4):  # lanes change value: some words, some columns rewritten
            words = np.sort(rs.choice(W, size=3, replace=False))
            for w in words:
                lanes = 64 * w + rs.choice(64, size=20, replace=False)
                which[lanes] = rs.integers(0, len(table), 20)
            if step % 2:
                mc.set_thresholds(thr, ch._pack_rows(bits[:, vcols]), which, words, idle, vcols, isa=isa)
            elif step == 0:
                mc.set_thresholds(thr, rows, which, words, idle, isa=isa)
            else:  # without idle the rewritten words lose their idle bits: put them back here
                mc.set_thresholds(thr, rows, which, words, None, isa=isa)
                thr[torch.as_tensor(words), :, 0] |= torch.as_tensor(idle[words].view(np.int64))[:, None]
            ref = _reference_thresholds(torch.as_tensor(table[which]).view(W, 64), idle, d, rule)
            assert torch.equal(thr, ref), (isa, step)
        with pytest.raises(ValueError):
            mc.set_thresholds(thr, rows, np.full(64 * W, len(table), dtype=np.int64), isa=isa)


@pytest.mark.parametrize("T,rule", [(1, "metropolis"), (2, "heatbath"), (5, "metropolis"), (5, "heatbath")])
def test_chains_follow_their_temperature_labels(T, rule):
    """MscChains.set_temperatures (compiled and torch) after random label permutations equals
    the thresholds of every lane's beta (idle lanes beta = 0, always flip); set_beta agrees."""
    from hpc_rg.mc.msc.chains import MscChains
    _isas()
    rs = np.random.default_rng(T)
    n_ladders = 23
    chain_ids = np.sort(rs.choice(np.arange(40, 40 + 5 * 64), size=n_ladders * T, replace=False))
    spins = torch.ones((len(chain_ids), 4, 4), dtype=torch.int8)
    betas = np.sort(rs.random(T))[::-1] + 0.2
    made = {impl: MscChains(chain_ids, spins, None, None, rule, 3, (4, 4), 0,
                            implementation=impl) for impl in ("compiled", "torch")}
    m = made["compiled"]
    idle = m._idle.numpy().view(np.uint64)
    labels = np.tile(np.arange(T), n_ladders)
    for step in range(6):
        if step == 4:
            betas = betas * 1.1  # another table: every word rebuilt
        for impl, chains in made.items():
            chains.set_temperatures(betas, labels)
            lane_beta = torch.zeros(m.W * 64, dtype=torch.float64)
            lane_beta[m.rows] = torch.as_tensor(betas[labels])
            ref = _reference_thresholds(lane_beta.view(m.W, 64), idle, 2, rule)
            assert torch.equal(chains.thresholds, ref), (impl, step)
        other = MscChains(chain_ids, spins, None, None, rule, 3, (4, 4), 0)
        other.set_beta(betas[labels])
        assert torch.equal(other.thresholds, m.thresholds)
        labels = np.concatenate([rs.permutation(T) for _ in range(n_ladders)])
        if step == 2:  # a few lanes only
            labels = np.tile(np.arange(T), n_ladders)
            if T > 1:
                labels[[0, 1]] = labels[[1, 0]]
    with pytest.raises(ValueError):
        m.set_temperatures(betas, np.full(len(chain_ids), T))
