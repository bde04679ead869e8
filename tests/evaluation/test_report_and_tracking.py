"""The metrics document, the test-split fingerprint, the champion score, the model-input helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.evaluation.model_inputs import (
    episode_age_hours,
    feature_matrix,
    gain_importance,
    select_feature_names,
    thread_budget,
    xgboost_settings,
)
from pdm_kedro.evaluation.report import frame_fingerprint, metric_rows
from pdm_kedro.evaluation.tracking import (
    headline_score,
    mlflow_metric_name,
    registration_entry,
    tracking_metrics,
)
from pdm_kedro.families import get_family


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "n": [1, 2, 3],
            "s": ["a", "b", "c"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        }
    )


def test_fingerprint_is_pinned_and_deterministic():
    frame = _frame()
    first = frame_fingerprint(frame, ["x", "n", "s"])
    assert first == frame_fingerprint(frame.copy(), ["x", "n", "s"])
    assert len(first) == 16 and int(first, 16) >= 0
    # pinned: sha256 over float64 bytes of x and n, the joined strings of s, each column's name
    import hashlib

    digest = hashlib.sha256()
    digest.update(np.array([1.0, 2.0, 3.0]).tobytes())
    digest.update(b"x")
    digest.update(np.array([1.0, 2.0, 3.0]).tobytes())
    digest.update(b"n")
    digest.update(b"a\x1fb\x1fc")
    digest.update(b"s")
    assert first == digest.hexdigest()[:16]


def test_fingerprint_changes_with_any_value_column_or_order():
    frame = _frame()
    base = frame_fingerprint(frame, ["x", "n", "s", "t"])
    changed = frame.copy()
    changed.loc[1, "x"] = 2.5
    assert frame_fingerprint(changed, ["x", "n", "s", "t"]) != base
    changed = frame.copy()
    changed.loc[2, "s"] = "z"
    assert frame_fingerprint(changed, ["x", "n", "s", "t"]) != base
    changed = frame.copy()
    changed.loc[0, "t"] = pd.Timestamp("2023-01-01")
    assert frame_fingerprint(changed, ["x", "n", "s", "t"]) != base
    assert frame_fingerprint(frame, ["x", "n", "s"]) != base
    assert frame_fingerprint(frame, ["n", "x", "s", "t"]) != base
    assert frame_fingerprint(frame.iloc[::-1], ["x", "n", "s", "t"]) != base
    # same values under another column name are other data
    renamed = frame.rename(columns={"x": "y"})
    assert frame_fingerprint(renamed, ["y", "n", "s", "t"]) != base
    # integers and floats of equal value hash alike (the dtype is not part of the identity)
    assert frame_fingerprint(frame.assign(x=[1, 2, 3]), ["x"]) == frame_fingerprint(frame, ["x"])


def test_metric_rows_write_null_for_undefined():
    rows = metric_rows({"f1": 0.5, "pr_auc": float("nan")}, {"f1": 0.25}, "rule")
    assert rows == [
        {"metric": "f1", "value": 0.5, "baseline": 0.25, "baseline_name": "rule"},
        {"metric": "pr_auc", "value": None, "baseline": None, "baseline_name": "rule"},
    ]
    rows = metric_rows({"rmse": np.float32(2.0)}, {"rmse": float("inf")}, "b")
    assert rows[0]["value"] == 2.0 and type(rows[0]["value"]) is float
    assert rows[0]["baseline"] is None


def test_mlflow_metric_names():
    assert mlflow_metric_name("mape[temperature]") == "mape.temperature"
    assert mlflow_metric_name("f1") == "f1"
    assert mlflow_metric_name("a b/c-d.e") == "a b/c-d.e"
    assert mlflow_metric_name("x%y[z]") == "x_y.z"


def test_tracking_metrics_keep_value_and_baseline():
    metrics = {
        "metrics": [
            {"metric": "f1", "value": 0.5, "baseline": 0.25},
            {"metric": "mape[temp]", "value": 3.0, "baseline": None},
            {"metric": "pr_auc", "value": None, "baseline": 0.1},
            {"metric": "recall", "value": 0.7},
        ]
    }
    assert tracking_metrics(metrics) == {
        "f1": {"value": 0.5, "step": 0},
        "baseline_f1": {"value": 0.25, "step": 0},
        "mape.temp": {"value": 3.0, "step": 0},
        "baseline_pr_auc": {"value": 0.1, "step": 0},
        "recall": {"value": 0.7, "step": 0},
    }


def _metrics(rows: list[tuple[str, float]], family: str = "forecasting") -> dict:
    return {
        "family": family,
        "machine_id": "m_1",
        "metrics": [{"metric": k, "value": v} for k, v in rows],
    }


def test_forecasting_champion_is_scored_on_the_mean_over_key_sensors():
    frame = _frame()
    metrics = _metrics([("mape[a]", 10.0), ("smape[a]", 1.0), ("mape[b]", 30.0), ("mape[c]", 50.0)])
    entry = registration_entry({"m": 1}, metrics, frame, frame)
    assert entry["score"] == pytest.approx(30.0)  # (10 + 30 + 50) / 3, smape not mixed in
    assert entry["score_name"] == "mape"
    assert not get_family("forecasting").headline_greater_is_better
    assert entry["model"] == {"m": 1}
    assert entry["family"] == "forecasting" and entry["machine_id"] == "m_1"
    assert entry["test_fingerprint"] == frame_fingerprint(frame, list(frame.columns))


def test_headline_named_directly_wins_over_the_per_sensor_mean():
    entry = registration_entry(
        {}, _metrics([("f1", 0.4), ("f1[x]", 0.9)], "classification"), _frame(), _frame()
    )
    assert entry["score"] == 0.4 and entry["score_name"] == "f1"
    assert get_family("classification").headline_greater_is_better
    with pytest.raises(KeyError, match="'rmse'"):
        headline_score(_metrics([("f1", 0.4)], "regression"))


def test_registration_fingerprint_sees_every_test_column():
    frame = _frame()
    metrics = _metrics([("f1", 0.4)], "classification")
    a = registration_entry({}, metrics, frame, frame)["test_fingerprint"]
    other = frame.copy()
    other.loc[0, "s"] = "q"  # the last-but-one column only
    b = registration_entry({}, metrics, other, frame)["test_fingerprint"]
    assert a != b


def test_select_feature_names_and_matrix(tiny_features):
    frame = tiny_features["train"]
    names = select_feature_names(frame)
    assert names and c.FAILURE_WITHIN_HORIZON not in names and c.RUL not in names
    wanted = [names[3], names[1], "not_a_column"]
    assert select_feature_names(frame, wanted) == [names[1], names[3]]  # table order
    assert select_feature_names(frame, []) == names
    with pytest.raises(ValueError, match="^none of the configured feature columns exist in the"):
        select_feature_names(frame, ["nope"])
    x = feature_matrix(frame, [names[1], names[0]])
    assert x.dtype == np.float32 and x.shape == (len(frame), 2)
    np.testing.assert_array_equal(x[:, 0], frame[names[1]].to_numpy(np.float32))


def test_xgboost_settings_are_seeded():
    params = {"xgboost": {"max_depth": 3}, "seed": "7", "early_stopping_rounds": "5"}
    assert xgboost_settings(params) == {
        "max_depth": 3,
        "n_jobs": thread_budget(),  # absent: the process's thread budget
        "random_state": 7,
        "early_stopping_rounds": 5,
    }
    assert params["xgboost"] == {"max_depth": 3}  # not modified in place


def test_episode_age_hours_by_hand():
    frame = pd.DataFrame(
        {
            c.TIMESTAMP: pd.to_datetime(
                ["2024-01-01 00:00", "2024-01-01 01:30", "2024-01-02 00:00", "2024-01-02 02:00"]
            ),
            c.EPISODE: [1, 1, 2, 2],
        }
    )
    np.testing.assert_allclose(episode_age_hours(frame), [0.0, 1.5, 0.0, 2.0])


def test_gain_importance_is_normalised_total_gain():
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 1] > 0).astype(int)  # only the second column carries the label
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1, random_state=0).fit(x, y)
    got = gain_importance(model, ["a", "b", "c"])
    assert got["feature"].tolist()[0] == "b" and list(got.columns) == ["feature", "importance"]
    assert got["importance"].sum() == pytest.approx(1.0)
    scores = model.get_booster().get_score(importance_type="total_gain")
    total = sum(scores.values())
    expected = {name: scores.get(f"f{i}", 0.0) / total for i, name in enumerate("abc")}
    assert dict(zip(got["feature"], got["importance"], strict=True)) == pytest.approx(expected)
    assert got.index.tolist() == [0, 1, 2]
    assert got["importance"].is_monotonic_decreasing
    # a booster without a split: importances stay zero, no division by zero
    flat = xgb.XGBClassifier(n_estimators=1, max_depth=1, n_jobs=1).fit(x, np.r_[0, 1, [0] * 198])
    zero = gain_importance(flat, ["a", "b", "c"])
    assert np.isfinite(zero["importance"]).all()
