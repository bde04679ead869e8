"""Anomaly thresholds that need no labelled anomaly: the normal-only rule hits its target false-
alarm rate on normal data; the rule in force follows val's labels."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.pipelines.anomaly import nodes as n


@pytest.mark.parametrize("target", [0.01, 0.05, 0.15])
def test_normal_far_threshold_hits_its_target_on_normal_data(target):
    scores = np.random.default_rng(0).normal(size=20_000)
    threshold = n.normal_far_threshold(scores, target)
    assert np.mean(scores >= threshold) == pytest.approx(target, abs=1e-4)
    # fresh normal rows from the same process land near the target too
    fresh = np.random.default_rng(1).normal(size=200_000)
    assert np.mean(fresh >= threshold) == pytest.approx(target, abs=0.01)


def test_zero_target_flags_no_normal_row():
    scores = np.array([0.1, 0.5, 0.5, 2.0])
    assert np.mean(scores >= n.normal_far_threshold(scores, 0.0)) == 0.0


def test_the_rule_in_force_follows_the_labels_of_val():
    normal_only = np.zeros(10)
    both = np.r_[np.zeros(8), np.ones(2)]
    assert n.threshold_rule(normal_only, {"threshold": {"rule": "auto"}}) == n.NORMAL_FAR
    assert n.threshold_rule(both, {"threshold": {"rule": "auto"}}) == n.BEST_F1
    assert n.threshold_rule(both, {"threshold": {"rule": "normal_far"}}) == n.NORMAL_FAR
    with pytest.raises(ValueError, match="normal_far"):
        n.threshold_rule(normal_only, {"threshold": {"rule": "best_f1_on_val"}})


class _Scores:
    def __init__(self, shift):
        self.shift = shift

    def decision_function(self, x):
        return -(np.asarray(x)[:, 0] + self.shift)


def test_choose_detector_on_normal_only_val_keeps_the_configured_detector():
    rng = np.random.default_rng(2)
    val = pd.DataFrame({"f": rng.normal(size=5000), "anomaly": 0})
    params = {
        "threshold": {"rule": "auto", "target_far": 0.1, "detector_without_labels": n.ONE_CLASS_SVM}
    }
    chosen = n.choose_detector(
        _Scores(0.0), _Scores(1.0), _Scores(2.0), val, {"feature_names": ["f"]}, params
    )
    assert chosen["rule"] == n.NORMAL_FAR and chosen["detector"] == n.ONE_CLASS_SVM
    for candidate in chosen["candidates"].values():
        assert candidate["val_far"] == pytest.approx(0.1, abs=1e-3)


def test_leading_window_calibrates_each_episode_on_its_own_normal_rows():
    rng = np.random.default_rng(3)
    # two files whose normal scores sit at different levels (shift 0 and 5)
    train = pd.DataFrame(
        {
            "f": np.r_[rng.normal(0, 1, 4000), rng.normal(5, 1, 4000)],
            "anomaly": 0,
            "episode_id": np.repeat([0, 1], 4000),
        }
    )
    model = {"estimator": _Scores(0.0), "feature_names": ["f"], "threshold": 100.0}
    params = {"threshold": {"rule": "leading_window", "target_far": 0.1}}
    calibrated = n.episode_thresholds(model, train, params)
    assert set(calibrated["episode_thresholds"]) == {"0", "1"}
    test = pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=8000, freq="s"),
            "f": np.r_[rng.normal(0, 1, 4000), rng.normal(5, 1, 4000)],
            "anomaly": 0,
            "episode_id": np.repeat([0, 1], 4000),
        }
    )
    scored = n.score_test_rows(calibrated, test)
    for _, rows in scored.groupby("episode_id"):  # each file's own false-alarm rate ~ target
        assert rows["flag"].mean() == pytest.approx(0.1, abs=0.02)
    # other rules leave the model as it is
    assert n.episode_thresholds(model, train, {"threshold": {"rule": "auto"}}) is model
