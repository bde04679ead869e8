"""PCA T²+Q: the statistics on a hand-made fixture, its settings, and the family's threshold rules."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.anomaly import nodes as n
from pdm_kedro.pipelines.anomaly.pca_detector import PcaT2QDetector

DIRECTION = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)


@pytest.fixture(scope="module")
def healthy_plane() -> np.ndarray:
    """Healthy rows moving along one direction (sd 5), with 0.1 noise everywhere else."""
    rng = np.random.default_rng(0)
    along = rng.normal(0.0, 5.0, size=(4000, 1)) * DIRECTION
    return along + rng.normal(0.0, 0.1, size=(4000, 3))


@pytest.fixture(scope="module")
def fitted(healthy_plane) -> PcaT2QDetector:
    return PcaT2QDetector(explained_variance=0.9, combine="sum", quantile=0.99).fit(healthy_plane)


def test_one_component_explains_the_healthy_movement(fitted):
    assert fitted.n_components_ == 1
    assert abs(float(fitted.components_[0] @ DIRECTION)) == pytest.approx(1.0, abs=1e-3)
    assert fitted.explained_variance_[0] == pytest.approx(25.0, rel=0.1)


def test_off_the_subspace_is_q_along_a_component_is_t2(fitted):
    off = np.array([[0.0, 0.0, 3.0]])  # 30 noise sds off the healthy line, at its centre
    far = (40.0 * DIRECTION)[None, :]  # 8 sds along the healthy line, on it
    t2_off, q_off = fitted.statistics(off)
    t2_far, q_far = fitted.statistics(far)
    # Q: off the line is hundreds of times the healthy 99 % quantile; along it, ordinary
    assert q_off[0] > 100 * fitted.q_scale_ and q_far[0] < fitted.q_scale_
    # T²: far along the line is (40 / 5)² = 64, ~10 times its healthy quantile; off it, ordinary
    assert t2_far[0] == pytest.approx(64.0, rel=0.1) and t2_far[0] > 5 * fitted.t2_scale_
    assert t2_off[0] < fitted.t2_scale_
    centre = np.zeros((1, 3))
    assert fitted.predict(np.vstack([off, far, centre])).tolist() == [-1, -1, 1]
    # the score is -log(1 + T²/q(T²) + Q/q(Q)) - offset
    expected = -np.log1p(t2_off / fitted.t2_scale_ + q_off / fitted.q_scale_) - fitted.offset_
    np.testing.assert_allclose(fitted.decision_function(off), expected)


def test_the_healthy_quantile_sets_the_decision_boundary(fitted, healthy_plane):
    outside = np.mean(fitted.decision_function(healthy_plane) < 0)
    assert outside == pytest.approx(0.01, abs=0.002)


def test_max_combination_and_more_components(healthy_plane):
    both = PcaT2QDetector(explained_variance=0.9, combine="max").fit(healthy_plane)
    t2, q = both.statistics(healthy_plane[:5])
    expected = -np.log1p(np.maximum(t2 / both.t2_scale_, q / both.q_scale_)) - both.offset_
    np.testing.assert_allclose(both.decision_function(healthy_plane[:5]), expected)
    assert PcaT2QDetector(explained_variance=0.9999).fit(healthy_plane).n_components_ == 3
    assert PcaT2QDetector(explained_variance=2).fit(healthy_plane).n_components_ == 2


@pytest.mark.parametrize(
    ("setting", "value"),
    [("combine", "mean"), ("quantile", 1.0), ("explained_variance", 1.5)],
)
def test_bad_settings_name_the_parameter(healthy_plane, setting, value):
    with pytest.raises(ValueError, match=f"anomaly.detectors.pca_t2q.{setting}"):
        PcaT2QDetector(**{setting: value}).fit(healthy_plane)


# the detector inside the family: healthy train rows only, seeded, every threshold rule


@pytest.fixture(scope="module")
def params(project_params: dict) -> dict:
    out = {**project_params["anomaly"]}
    out["healthy"] = {**out["healthy"], "max_rows": 1500}
    out["detectors"] = {name: {**s, "fit_rows": 1200} for name, s in out["detectors"].items()}
    return out


@pytest.fixture(scope="module")
def inputs(machine, params, tiny_params) -> dict:
    return n.select_detector_inputs(machine, params, tiny_params["features"])


@pytest.fixture(scope="module")
def healthy(tiny_features, params):
    return n.sample_healthy_rows(tiny_features["train"], params)


@pytest.fixture(scope="module")
def t2q(healthy, inputs, params):
    return n.fit_pca_t2q(healthy, inputs, params)


def test_fitted_on_the_healthy_rows_given_unwhitened_and_seeded(t2q, healthy, inputs, params):
    rows = int(params["detectors"]["pca_t2q"]["fit_rows"])
    prepared = t2q.named_steps["prepare"].transform(
        n.detector_matrix(healthy, inputs["feature_names"])[:rows]
    )
    detector = t2q.named_steps["detect"]
    np.testing.assert_allclose(detector.mean_, prepared.astype(np.float64).mean(axis=0), atol=1e-5)
    residual_pca = t2q.named_steps["prepare"].named_transformers_["residual"].named_steps["whiten"]
    assert residual_pca.whiten is False
    assert 1 <= detector.n_components_ < len(inputs["feature_names"])
    again = n.fit_pca_t2q(healthy, inputs, params)
    np.testing.assert_array_equal(
        n.anomaly_scores(t2q, healthy, inputs["feature_names"]),
        n.anomaly_scores(again, healthy, inputs["feature_names"]),
    )


def test_zscore_signal_reads_levels(machine, params, tiny_params):
    zscore = {**params, "inputs": {**params["inputs"], "signal": "zscore"}}
    names = n.select_detector_inputs(machine, zscore, tiny_params["features"])["feature_names"]
    k = len(machine["sensors"])
    assert names[:k] == [f"{s['name']}__zscore" for s in machine["sensors"]]
    with pytest.raises(ValueError, match="anomaly.inputs.signal"):
        bad = {**params, "inputs": {**params["inputs"], "signal": "level"}}
        n.select_detector_inputs(machine, bad, tiny_params["features"])


def _choose(t2q, val, inputs, threshold: dict) -> dict:
    return n.choose_detector(t2q, t2q, t2q, val, inputs, {"threshold": threshold})


def test_best_f1_rule_with_t2q_the_only_candidate(t2q, tiny_features, inputs):
    val = tiny_features["val"]
    chosen = _choose(t2q, val, inputs, {"rule": "best_f1_on_val", "candidates": ["pca_t2q"]})
    assert chosen["detector"] == "pca_t2q" and set(chosen["candidates"]) == {"pca_t2q"}
    scores = n.anomaly_scores(t2q, val, inputs["feature_names"])
    threshold, f1 = n.best_f1_threshold(val[c.ANOMALY].to_numpy(), scores)
    assert chosen["threshold"] == threshold and chosen["candidates"]["pca_t2q"]["val_f1"] == f1
    assert chosen["candidates"]["pca_t2q"]["val_f1"] > 0.3  # it finds the injected faults
    with pytest.raises(ValueError, match="unknown detector"):
        _choose(t2q, val, inputs, {"rule": "best_f1_on_val", "candidates": ["pca"]})


def test_normal_far_rule_hits_its_target_with_t2q(t2q, tiny_features, inputs):
    val = tiny_features["val"]
    rule = {"rule": "normal_far", "target_far": 0.05, "detector_without_labels": "pca_t2q"}
    chosen = _choose(t2q, val, inputs, rule)
    assert chosen["detector"] == "pca_t2q"
    assert chosen["candidates"]["pca_t2q"]["val_far"] == pytest.approx(0.05, abs=0.005)


def test_leading_window_rule_calibrates_t2q_per_episode(t2q, tiny_features, inputs):
    train, val, test = tiny_features["train"], tiny_features["val"], tiny_features["test"]
    rule = {"rule": "leading_window", "target_far": 0.05, "detector_without_labels": "pca_t2q"}
    chosen = _choose(t2q, val, inputs, rule)
    assert chosen["rule"] == "leading_window" and chosen["detector"] == "pca_t2q"
    model = n.package_anomaly_model(t2q, t2q, t2q, chosen, inputs)
    calibrated = n.episode_thresholds(model, train, {"threshold": rule})
    normal = train[train[c.ANOMALY] == 0]
    assert set(calibrated["episode_thresholds"]) == {
        str(int(e)) for e in normal[c.EPISODE].unique()
    }
    scored = n.score_test_rows(calibrated, test)
    assert len(scored) == len(test) and scored["flag"].isin([0, 1]).all()
