"""Levels built today are the levels built before ``_Level`` and ``build_level`` shared one
coupling construction (``coupling_layers``): same seeded initial weights, same state_dict
key names (old model files load strictly), same forward and inverse pass. Reference:
``data/levels_v1.pt``, written by ``data/make_levels_v1.py`` with the code of commit
ae0f8be."""

from pathlib import Path

import pytest
import torch

from hpc_rg.flows.modelfile import build_level

REF = torch.load(Path(__file__).with_name("data") / "levels_v1.pt", weights_only=True)


@pytest.mark.parametrize("name", sorted(REF))
def test_level_matches_the_old_construction(name):
    ref = REF[name]
    torch.manual_seed(ref["seed"])
    level = build_level(ref["spec"])
    init = level.state_dict()
    assert list(init) == list(ref["init"])        # key names and order
    for k, v in ref["init"].items():
        assert torch.equal(init[k], v), k          # the same draws from the same seed
    level.load_state_dict(ref["state_dict"], strict=True)
    level = level.double()
    with torch.no_grad():
        fine, logdet = level.transform(ref["coarse"], ref["zeta"])
        coarse, log_q = level.log_prob(ref["fine"])
    assert torch.allclose(fine, ref["fine"], rtol=0, atol=1e-12)
    assert torch.allclose(logdet, ref["logdet"], rtol=0, atol=1e-10)
    assert torch.allclose(log_q, ref["log_q"], rtol=0, atol=1e-10)
    assert torch.allclose(coarse, ref["back"], rtol=0, atol=1e-10)


def test_reference_covers_every_construction():
    """The reference exercises both methods, both modes, 1-3 dims, BlockConv and the
    continuous flow, and its levels really differ from the identity."""
    specs = [r["spec"] for r in REF.values()]
    assert {s["method"] for s in specs} == {"flow_rg", "flow_checkerboard"}
    assert {s["conditional"] for s in specs} == {True, False}
    assert {s["dims"] for s in specs} == {1, 2, 3}
    assert any(s["linear_kernel"] > 0 and s["local_flow"] == "continuous" for s in specs)
    for r in REF.values():
        assert r["fine"].shape[1:] == tuple(2 * n for n in r["coarse"].shape[1:])
        assert r["logdet"].abs().max() > 1e-3


def test_linear_kernel_with_conditional_is_refused():
    spec = dict(REF["rg_conditional"]["spec"], linear_kernel=3)
    with pytest.raises(ValueError, match="unconditional mode"):
        build_level(spec)
