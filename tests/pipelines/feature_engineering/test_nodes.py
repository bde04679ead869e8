"""Feature nodes: per-episode causality, train-only fitting, an honest difficulty report."""

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.pipelines.feature_engineering.nodes import (
    assess_label_difficulty,
    build_window_features,
    choose_sensor_baselines,
    feature_columns,
    fit_sensor_baselines,
)


def test_baselines_are_fitted_on_train_only(tiny_splits, machine, tiny_params):
    train, val, _ = tiny_splits
    baselines = fit_sensor_baselines(train, machine, tiny_params["features"])
    assert baselines["fitted_on"] == {"split": "train", "rows": len(train)}
    current = baselines["sensors"]["current"]
    assert current["median"] == train["current"].median()
    assert current["scale"] > 0
    poisoned = train.copy()
    poisoned["current"] = poisoned["current"] + 100
    assert fit_sensor_baselines(poisoned, machine, tiny_params["features"]) != baselines
    assert fit_sensor_baselines(train, machine, tiny_params["features"]) == baselines


def test_a_retraining_run_keeps_the_served_baselines_when_they_define_the_same_features(
    tiny_splits, machine, tiny_params
):
    train = tiny_splits[0]
    features = tiny_params["features"]
    served = fit_sensor_baselines(train, machine, features)
    # this run's train split holds more (here: shifted) rows: its own fit differs
    shifted = train.assign(current=train["current"] + 5.0)
    fitted = fit_sensor_baselines(shifted, machine, features)
    assert fitted != served
    retraining = {"use_production": True}
    assert choose_sensor_baselines(fitted, served, retraining) == served
    # a plain run, the option off, or no served baselines yet: this run's own fit
    assert choose_sensor_baselines(fitted, served, {"use_production": False}) == fitted
    off = retraining | {"keep_served_baselines": False}
    assert choose_sensor_baselines(fitted, served, off) == fitted
    assert choose_sensor_baselines(fitted, None, retraining) == fitted
    # other windows define other features: the served constants cannot make them
    longer = fit_sensor_baselines(
        shifted, machine, features | {"windows_hours": [*features["windows_hours"], 12]}
    )
    assert choose_sensor_baselines(longer, served, retraining) == longer


def test_features_never_cross_episodes(tiny_splits, tiny_baselines, machine):
    train = tiny_splits[0]
    together = build_window_features(train, tiny_baselines, machine)
    last_episode = train[c.EPISODE].max()
    alone = build_window_features(train[train[c.EPISODE] == last_episode], tiny_baselines, machine)
    in_together = together[together[c.EPISODE] == last_episode].reset_index(drop=True)
    pd.testing.assert_frame_equal(in_together, alone)


def test_feature_table_keeps_ids_labels_and_every_row(tiny_features, tiny_splits):
    features = tiny_features["train"]
    assert len(features) == len(tiny_splits[0])
    assert list(features.columns[:6]) == [c.TIMESTAMP, c.EPISODE, c.REGIME, *c.LABEL_COLUMNS]
    columns = feature_columns(features)
    assert "regime_code" in columns and "vibration_rms__slope_48h" in columns
    assert "health_index" in columns and "temperature__spread" in columns
    assert not set(columns) & {*c.ID_COLUMNS, *c.LABEL_COLUMNS}
    assert np.isfinite(features[columns].to_numpy()).all()


def test_health_index_rises_towards_failure(tiny_features):
    features = tiny_features["train"]
    early = features[features[c.RUL] > features[c.RUL].quantile(0.7)]["health_index"].mean()
    late = features[features[c.RUL] < features[c.RUL].quantile(0.1)]["health_index"].mean()
    assert late > early


def test_label_difficulty_reports_a_single_row_rule(tiny_features, machine):
    report = assess_label_difficulty(tiny_features["train"], tiny_features["val"], machine)
    entry = report["labels"][c.FAILURE_WITHIN_HORIZON]
    assert entry["rule"]["column"] in [s["name"] for s in machine["sensors"]]
    assert 0.0 <= entry["f1_val"] <= 1.0
    assert entry["f1_train"] > 0
