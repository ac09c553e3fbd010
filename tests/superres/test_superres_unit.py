"""Unit tests of the super-resolution pieces: network, losses, model file, RNG, data split."""

import pickle

import numpy as np
import pytest
import torch

from hpc_rg.errors import InputFileError
from hpc_rg.superres import SuperResolver
from hpc_rg.io.ensemble import split_runs, take_share
from hpc_rg.superres.loss import gaussian_loss, nn_energy, spin_loss
from hpc_rg.superres.modelfile import load_model, save_model
from hpc_rg.rg.blocking import upsample
from hpc_rg.superres.network import NetworkBank, NetworkSpec, SuperResolutionCNN


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("field", ["spin", "phi4"])
def test_network_doubles_any_size(dims, field):
    net = SuperResolutionCNN(dims, depth=2, width=4, kernel=3, field=field, conditioned=False)
    for L in (4, 8):
        x = torch.randn((3,) + (L,) * dims)
        out = net(x)
        assert out.shape == (3, 2 if field == "phi4" else 1) + (2 * L,) * dims


def test_untrained_network_copies_the_coarse_configuration():
    """The skip path: zero convolution weights -> logits = upsampled input."""
    net = SuperResolutionCNN(2, depth=2, width=4, kernel=3, field="spin", conditioned=False)
    for p in net.body.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randint(0, 2, (2, 4, 4)).float() * 2 - 1
    assert torch.equal(net(x)[:, 0], upsample(x, 2))


def test_convolutions_are_periodic():
    """Shifting the input by one coarse site shifts the output by two fine sites."""
    torch.manual_seed(0)
    net = SuperResolutionCNN(2, depth=3, width=4, kernel=3, field="spin", conditioned=False)
    x = torch.randint(0, 2, (1, 8, 8)).float() * 2 - 1
    a = net(torch.roll(x, 1, dims=1))
    b = torch.roll(net(x), 2, dims=2)
    assert torch.allclose(a, b, atol=1e-5)


def test_bank_one_network_per_temperature_or_conditioned():
    spec = NetworkSpec(dims=2, depth=2, width=4, temperatures=(2.0, 2.5, 3.0))
    assert len(NetworkBank(spec).nets) == 3
    cond = NetworkBank(NetworkSpec(dims=2, depth=2, width=4, conditioned=True,
                                   temperatures=(2.0, 2.5, 3.0)))
    assert len(cond.nets) == 1
    x = torch.randn(3, 5, 4, 4)
    out = cond(x)
    assert out.shape == (3, 5, 1, 8, 8)
    # conditioning differs between temperatures for the same input
    assert not torch.allclose(cond.forward_one(0, x[0]), cond.forward_one(2, x[0]))


def test_spin_loss_is_cross_entropy_and_energy_term():
    target = torch.tensor([[[1.0, -1.0], [-1.0, 1.0]]])
    logit = torch.zeros(1, 1, 2, 2)
    assert spin_loss(logit, target, 2).item() == pytest.approx(np.log(2))
    # perfectly confident and right: BCE ~ 0, energy term ~ 0
    sure = (target * 30).unsqueeze(1)
    assert spin_loss(sure, target, 2, energy_weight=10.0).item() < 1e-10
    # energy: checkerboard on a 2x2 periodic lattice: every bond antiparallel -> e = +2
    assert nn_energy(target, 2).item() == pytest.approx(2.0)
    # p = 1/2 everywhere: <s> = 0, energy 0, term = gamma * (2 - 0)^2
    assert spin_loss(logit, target, 2, energy_weight=0.5).item() == pytest.approx(
        np.log(2) + 0.5 * 4.0)


def test_gaussian_loss_minimum_at_true_scale():
    torch.manual_seed(1)
    target = torch.randn(4000) * 0.7
    losses = {}
    for s in (0.5, 0.7, 1.0):
        out = torch.stack([torch.zeros(4000), torch.full((4000,), np.log(s))]).T.reshape(4000, 2)
        losses[s] = gaussian_loss(out.unsqueeze(-1), target.unsqueeze(-1)).item()
    assert losses[0.7] < losses[0.5] and losses[0.7] < losses[1.0]


def _bank():
    torch.manual_seed(3)
    return NetworkBank(NetworkSpec(dims=2, depth=2, width=4, temperatures=(2.0, 3.0)))


def test_model_file_round_trip(tmp_path):
    bank = _bank()
    save_model(tmp_path / "model.pt", bank, {"blocking": "majority", "train_L": 8,
                                             "flow": None, "history": [[0, 0.5, 0.4]]})
    loaded, meta = load_model(tmp_path / "model.pt")
    assert meta["blocking"] == "majority" and meta["spec"]["temperatures"] == [2.0, 3.0]
    for (k, a), (_, b) in zip(bank.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert not (tmp_path / "model.pt.partial").exists()


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_model_file_with_code_is_refused(tmp_path):
    """weights_only=True: a pickled callable is not executed, the file is rejected."""
    path = tmp_path / "evil.pt"
    torch.save({"format": "hpc_rg.superres", "version": 1, "meta": {"x": _Evil()},
                "state_dict": {}}, path)
    with pytest.raises(InputFileError, match="not a readable hpc_rg model file"):
        load_model(path)
    (tmp_path / "junk.pt").write_bytes(pickle.dumps({"a": 1}) + b"garbage")
    with pytest.raises(InputFileError):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(InputFileError, match="no such model file"):
        load_model(tmp_path / "missing.pt")


def test_upscale_output_independent_of_batching():
    """Per-configuration random streams: one batch of 6 == batches of 2 + 4 (ids kept)."""
    sr = SuperResolver(_bank(), {"blocking": "majority", "flow": None})
    x = torch.randint(0, 2, (6, 8, 8)).float() * 2 - 1
    ids = torch.arange(100, 106)
    whole = sr.step(x, 1, 1, seed=9, ids=ids)
    parts = torch.cat([sr.step(x[:2], 1, 1, seed=9, ids=ids[:2]),
                       sr.step(x[2:], 1, 1, seed=9, ids=ids[2:])])
    assert torch.equal(whole, parts)
    assert set(whole.unique().tolist()) <= {-1.0, 1.0}
    other = sr.step(x, 1, 1, seed=10, ids=ids)
    assert not torch.equal(whole, other)
    chain = sr.upscale(x, 0, levels=2, seed=9, ids=ids)
    assert [c.shape[-1] for c in chain] == [16, 32]


def test_bernoulli_output_frequencies_match_probabilities():
    """Sampled spins follow sigmoid(logit): fraction of +1 within 4 sigma."""
    bank = _bank()
    for p in bank.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        bank.nets[0].body[-1].bias.fill_(0.8)  # logit = 0.8 + skip * 0 (skip zeroed)
    sr = SuperResolver(bank, {"blocking": "majority", "flow": None})
    y = sr.step(torch.ones(64, 16, 16), 0, 1, seed=1, ids=torch.arange(64))
    frac = (y > 0).double().mean().item()
    p = 1 / (1 + np.exp(-0.8))
    n = y.numel()
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_time_split_and_shares():
    train, val = split_runs(N=20, samples_per_chain=10, validation_fraction=0.2)
    assert train == [(0, 8), (10, 18)] and val == [(8, 10), (18, 20)]
    shares = [take_share(train, r, 3) for r in range(3)]
    flat = [i for s in shares for a, b in s for i in range(a, b)]
    assert flat == list(range(0, 8)) + list(range(10, 18))
    with pytest.raises(ValueError):
        split_runs(10, 1, 0.5)


@pytest.mark.parametrize("dims,field", [(2, "spin"), (3, "spin"), (2, "phi4")])
def test_two_pass_output_is_autoregressive_over_sublattices(dims, field):
    """Teacher-forced output: sublattice A ignores the target, B sees the target's A values
    only — never its own (so the per-site loss is the exact likelihood)."""
    from hpc_rg.superres.network import sublattice_a
    torch.manual_seed(0)
    spec = NetworkSpec(dims=dims, depth=3, width=4, field=field, temperatures=(2.0, 3.0),
                       two_pass=True)
    bank = NetworkBank(spec)
    for p in bank.parameters():  # make every input channel matter
        torch.nn.init.normal_(p, std=0.5)
    L = 4
    x = torch.randint(0, 2, (2, 3) + (L,) * dims).float() * 2 - 1
    target = torch.randint(0, 2, (2, 3) + (2 * L,) * dims).float() * 2 - 1
    with pytest.raises(ValueError, match="teacher forcing"):
        bank(x)
    out = bank(x, target=target)
    a = sublattice_a((2 * L,) * dims, "cpu")
    flip_b = torch.where(a, target, -target)  # change only the B values
    flip_a = torch.where(a, -target, target)  # change only the A values
    torch.testing.assert_close(bank(x, target=flip_b), out, rtol=0, atol=0)
    changed = bank(x, target=flip_a)
    torch.testing.assert_close(changed[:, :, :, a], out[:, :, :, a], rtol=0, atol=0)
    assert (changed[:, :, 0][:, :, ~a] - out[:, :, 0][:, :, ~a]).abs().max() > 1e-3


def test_two_pass_sampling_draws_b_given_the_sampled_a():
    from hpc_rg.superres.network import sample_output, sublattice_a
    from hpc_rg.rng import CounterRNG, derive_seed
    torch.manual_seed(1)
    spec = NetworkSpec(dims=2, depth=3, width=4, temperatures=(2.0,), two_pass=True)
    bank = NetworkBank(spec)
    for p in bank.parameters():
        torch.nn.init.normal_(p, std=0.5)
    model = SuperResolver(bank, {"blocking": "majority"})
    x = torch.randint(0, 2, (5, 8, 8)).float() * 2 - 1
    ids = torch.arange(5)
    y = model.step(x, 0, 1, seed=4, ids=ids)
    sites = torch.arange(256).reshape(16, 16)
    u = CounterRNG(derive_seed(4, "upscale", 1), ids, sites, "cpu").uniform(0)
    a = sublattice_a((16, 16), "cpu")
    with torch.no_grad():
        y_a = sample_output(bank.forward_one(0, x), "spin", u)
        y_b = sample_output(bank.forward_one(0, x, known=y_a), "spin", u)
    torch.testing.assert_close(y, torch.where(a, y_a, y_b), rtol=0, atol=0)
    # the second pass matters: B differs from what pass 1 alone would have drawn
    assert (y[:, ~a] != y_a[:, ~a]).any()


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_consistent_sampling_gives_preimages(dims):
    from hpc_rg.rg.blocking import decimation, majority_rule
    from hpc_rg.superres.consistent import sample_consistent
    g = torch.Generator().manual_seed(dims)
    L = {1: 8, 2: 6, 3: 4}[dims]
    c = torch.randint(0, 2, (3,) + (L,) * dims, generator=g).float() * 2 - 1
    logit = torch.randn((3,) + (2 * L,) * dims, generator=g) * 2
    u = torch.rand((3,) + (2 * L,) * dims, generator=g)
    assert torch.equal(majority_rule(sample_consistent(logit, c, u, dims), dims), c)
    assert torch.equal(decimation(sample_consistent(logit, c, u, dims, "decimation"), dims), c)


def test_consistent_sampling_is_the_restricted_product_distribution():
    """One 2x2 block, coarse +1: pattern frequencies = prod Bernoulli restricted to the
    patterns whose majority (ties: first site) is +1, within 4 sigma."""
    import itertools
    from hpc_rg.superres.consistent import sample_consistent
    p = torch.tensor([0.3, 0.6, 0.45, 0.8])
    logit = torch.log(p / (1 - p)).reshape(1, 2, 2).expand(20000, 2, 2)
    u = torch.rand(20000, 2, 2, generator=torch.Generator().manual_seed(5))
    y = sample_consistent(logit, torch.ones(20000, 1, 1), u, 2).reshape(20000, 4)
    pats = [torch.tensor(s) for s in itertools.product((-1.0, 1.0), repeat=4)]
    w = []
    for s in pats:
        maj = s[0] if s.sum() == 0 else torch.sign(s.sum())
        w.append(float(torch.where(s > 0, p, 1 - p).prod()) if maj > 0 else 0.0)
    w = torch.tensor(w) / sum(w)
    for s, q in zip(pats, w):
        freq = float((y == s).all(1).double().mean())
        sigma = max(float((q * (1 - q) / 20000) ** 0.5), 1e-4)
        assert abs(freq - float(q)) < 4 * sigma, (s, freq, float(q))


def test_phi4_field_bound_stops_runaway():
    """A φ⁴ network fed a field far outside its training range: with the model's
    ``field_bound`` the output stays bounded (mean clamped, scale <= bound)."""
    torch.manual_seed(3)
    bank = NetworkBank(NetworkSpec(dims=2, depth=2, width=4, field="phi4", temperatures=(1.0,)))
    x = torch.full((2, 4, 4), 1e4)
    free = SuperResolver(bank, {"blocking": "sign_mean"}).step(x, 0, 1, seed=1, ids=torch.arange(2))
    assert free.abs().max() > 1e3
    bounded = SuperResolver(bank, {"blocking": "sign_mean", "field_bound": 3.0})
    y = bounded.step(x, 0, 1, seed=1, ids=torch.arange(2))
    assert torch.isfinite(y).all() and y.abs().max() <= 3.0 * (1 + 7)
