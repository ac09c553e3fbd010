"""Which disorder samples the later stages read (hpc_rg.io.equilibrated), on hand-made
samples.h5 groups: the certified ones, all of them when told so or without a certificate,
a one-line error when none passed; and the readers of hpc_rg.io.ensemble / io.outputs
read exactly the selected samples."""

import logging
from itertools import combinations

import h5py
import numpy as np
import pytest

from hpc_rg.errors import ConfigError
from hpc_rg.io import schema
from hpc_rg.io.equilibrated import file_runs, only_passed_of, usable_disorder_samples

D, T, S, R, L = 5, 2, 3, 4, 4


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    """The warning lines the ``hpc_rg`` logger emits during the test."""
    h = _Lines()
    logger = logging.getLogger("hpc_rg")
    logger.addHandler(h)
    yield h.lines
    logger.removeHandler(h)


def _ea_group(path, equilibrated=None, model="edwards_anderson"):
    """An EA Monte Carlo size group /L4 (D disorder samples, R replicas, 3D); the
    certificate dataset only when ``equilibrated`` is given."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        g = f.create_group("L4")
        g.attrs.update(model=model, dims=3, L=L, source="monte_carlo")
        x = rng.choice(np.array([-1, 1], np.int8), size=(D, T, S, R, L, L, L))
        g["configs"] = x
        pairs = list(combinations(range(R), 2))
        g["overlap"] = np.stack([(x[:, :, :, a] * x[:, :, :, b]).mean(axis=(3, 4, 5))
                                 for a, b in pairs], axis=-1)
        g["link_overlap"] = rng.normal(size=(D, T, S, len(pairs)))
        g["energy"] = rng.normal(size=(D, T, S, R))
        g["temperatures"] = [0.8, 1.2]
        if equilibrated is not None:
            g[schema.EQUILIBRATED] = np.asarray(equilibrated, dtype=bool)
    return path


def test_mixed_certificate_gives_exactly_the_passing_ids(tmp_path, warnings_logged):
    path = _ea_group(tmp_path / "samples.h5", [True, False, True, True, False])
    with h5py.File(path, "r") as f:
        sel = usable_disorder_samples(f["L4"], only_passed=True, stage="train")
    np.testing.assert_array_equal(sel.ids, [0, 2, 3])
    np.testing.assert_array_equal(sel.excluded, [1, 4])
    assert sel.equilibrated_only and sel.total == D
    warnings = warnings_logged
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("[train] ") and "3/5" in warnings[0]
    assert "excluded ids 1, 4" in warnings[0]
    attrs = sel.attrs()
    np.testing.assert_array_equal(attrs[schema.ATTR_DISORDER_SAMPLES_USED], [0, 2, 3])
    assert attrs[schema.ATTR_EQUILIBRATED_ONLY] is True


def test_all_pass_is_silent_and_warn_false_is_silent(tmp_path, warnings_logged):
    path = _ea_group(tmp_path / "samples.h5", [True] * D)
    with h5py.File(path, "r") as f:
        sel = usable_disorder_samples(f["L4"], only_passed=True)
        np.testing.assert_array_equal(sel.ids, np.arange(D))
        assert sel.equilibrated_only
    path = _ea_group(tmp_path / "mixed.h5", [True, False, True, True, False])
    with h5py.File(path, "r") as f:
        usable_disorder_samples(f["L4"], only_passed=True, warn=False)  # a non-root rank
    assert not warnings_logged


def test_only_passed_false_uses_every_sample(tmp_path, warnings_logged):
    path = _ea_group(tmp_path / "samples.h5", [False, False, True, False, False])
    with h5py.File(path, "r") as f:
        sel = usable_disorder_samples(f["L4"], only_passed=False)
    np.testing.assert_array_equal(sel.ids, np.arange(D))
    assert not sel.equilibrated_only and not warnings_logged
    assert sel.attrs()[schema.ATTR_EQUILIBRATED_ONLY] is False


def test_none_passed_is_a_one_line_collective_error(tmp_path):
    path = _ea_group(tmp_path / "samples.h5", [False] * D)
    with h5py.File(path, "r") as f, pytest.raises(ConfigError) as e:
        usable_disorder_samples(f["L4"], only_passed=True)
    msg = str(e.value)
    assert "\n" not in msg and e.value.collective
    assert msg.startswith(f"{path}: no disorder sample passed the equilibration certificate "
                          f"at L=4 (0/5")
    assert "sample.equilibration.only_passed: false" in msg
    with h5py.File(path, "r") as f:  # told to use them anyway
        np.testing.assert_array_equal(usable_disorder_samples(f["L4"], False).ids, np.arange(D))


def test_file_without_certificate_is_used_whole_with_one_warning(tmp_path, warnings_logged):
    path = _ea_group(tmp_path / "old.h5")
    with h5py.File(path, "r") as f:
        sel = usable_disorder_samples(f["L4"], only_passed=True, stage="analyze")
    np.testing.assert_array_equal(sel.ids, np.arange(D))
    assert not sel.equilibrated_only
    assert len(warnings_logged) == 1 and "no equilibration certificate" in warnings_logged[0]


def test_clean_models_have_no_disorder_selection(tmp_path):
    with h5py.File(tmp_path / "ising.h5", "w") as f:
        g = f.create_group("L4")
        g.attrs.update(model="ising", dims=2, L=4, source="monte_carlo")
        g["configs"] = np.ones((2, 6, 4, 4), np.int8)
        sel = usable_disorder_samples(g, only_passed=True)
        assert sel.ids is None and sel.attrs() == {}


def test_only_passed_of_a_stored_deck():
    assert only_passed_of({}) is True
    assert only_passed_of({"sample": {"equilibration": {"sigma": 4.0}}}) is True
    assert only_passed_of({"sample": {"equilibration": {"only_passed": False}}}) is False


def test_file_runs_map_selected_samples_to_file_indices():
    ids = np.array([1, 3, 4])
    # per_d = 6: selected sample j occupies [6 j, 6 j + 6) before, [6 ids[j], ...) after
    assert file_runs([(0, 18)], ids, 6) == [(6, 12), (18, 30)]
    assert file_runs([(4, 8)], ids, 6) == [(10, 12), (18, 20)]
    assert file_runs([(0, 3), (3, 6)], ids, 6) == [(6, 12)]
    assert file_runs([(2, 5)], None, 6) == [(2, 5)]


def test_readers_read_only_the_selected_samples(tmp_path):
    from hpc_rg.io import ensemble, outputs
    path = _ea_group(tmp_path / "samples.h5", [True, False, True, True, False])
    ids = np.array([0, 2, 3])
    P = R // 2
    with h5py.File(path, "r") as f:
        g = f["L4"]
        x = g["configs"][()].astype(np.float32)
        rho = x[:, :, :, 0::2] * x[:, :, :, 1::2]  # (D, T, S, P, *lat): pairs (0,1), (2,3)
        want = rho[ids].transpose(1, 0, 2, 3, 4, 5, 6).reshape(T, len(ids) * S * P, L, L, L)
        N = ensemble.ensemble_size(g, ids)
        assert N == len(ids) * S * P == outputs.ensemble_size(g, ids)
        assert ensemble.ensemble_size(g) == D * S * P
        np.testing.assert_array_equal(ensemble.read_runs(g, [(0, N)], disorder=ids), want)
        np.testing.assert_array_equal(ensemble.read_runs(g, [(5, 9)], t=1, disorder=ids),
                                      want[1, 5:9])
        np.testing.assert_array_equal(outputs.read_configs(g, 0, 0, N, 1, ids), want[0])
        np.testing.assert_array_equal(outputs.read_configs(g, 1, 3, N, 4, ids), want[1, 3::4])


def test_analysis_tables_average_only_the_selected_samples(tmp_path):
    """Observables of an EA Monte Carlo group: the certified samples only (the same
    numbers as a file that holds just those), recorded in the table's attributes."""
    from hpc_rg.analysis.tables import group_table
    path = _ea_group(tmp_path / "samples.h5", [True, False, True, True, False])
    ids = [0, 2, 3]
    with h5py.File(path, "r") as f:
        sub = tmp_path / "sub.h5"
        with h5py.File(sub, "w") as s:
            g = s.create_group("L4")
            g.attrs.update(f["L4"].attrs)
            for name in ("configs", "overlap", "link_overlap", "energy"):
                g[name] = f["L4"][name][()][ids]
            g["temperatures"] = f["L4"]["temperatures"][()]
        t = group_table(f["L4"], cfg={})
        t_all = group_table(f["L4"], cfg={}, only_passed=False)
    with h5py.File(sub, "r") as s:
        ref = group_table(s["L4"], cfg={})
    assert t.disorder == 3 and t_all.disorder == D
    np.testing.assert_array_equal(t.attrs[schema.ATTR_DISORDER_SAMPLES_USED], ids)
    assert t.attrs[schema.ATTR_EQUILIBRATED_ONLY] and not t_all.attrs[schema.ATTR_EQUILIBRATED_ONLY]
    for name in ("g", "chi_SG", "abs_q", "q_l", "e", "xi"):
        np.testing.assert_array_equal(t.values[name], ref.values[name])
        np.testing.assert_array_equal(t.errors[name], ref.errors[name])
    assert not np.array_equal(t.values["abs_q"], t_all.values["abs_q"])
    from hpc_rg.analysis.report import format_tables
    assert "3 disorder samples used (ids 0, 2, 3; certified equilibrated only)" \
        in format_tables([t])
