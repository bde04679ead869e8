"""Operating conditions: k-means on train settings, per-condition scaling fitted on train only,
and the edge computing exactly the training pipeline's features with them."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.core import operating_conditions as oc
from pdm_kedro.core.degradation_features import settings_feature_names
from pdm_kedro.core.window_features import window_labels
from pdm_kedro.edge.features import compute_features
from pdm_kedro.edge.readings import Readings
from pdm_kedro.pipelines.data_ingestion.nodes import (
    fit_operating_conditions,
    label_operating_conditions,
    setting_column,
)
from pdm_kedro.pipelines.edge_export.nodes import window_feature_names
from pdm_kedro.pipelines.feature_engineering.nodes import (
    build_window_features,
    feature_columns,
    fit_sensor_baselines,
)

CENTRES = np.array([[0.0, 0.0], [10.0, 0.5], [20.0, 1.0]])


def _settings(n, seed):
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 3, n)
    return CENTRES[which] + rng.normal(0, 0.01, (n, 2)), which


def test_kmeans_recovers_the_conditions_and_assigns_with_numpy_alone():
    x, which = _settings(600, 0)
    fitted = oc.fit_conditions(x, ["alt", "mach"], 3, seed=1)
    labels = oc.assign_conditions(x, fitted)
    # one label per true condition, and the same partition
    pairs = set(zip(which.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 3 and len({p[1] for p in pairs}) == 3
    assert fitted["labels"] == ["cond_0", "cond_1", "cond_2"]
    again = oc.fit_conditions(x, ["alt", "mach"], 3, seed=1)
    assert again["centres"] == fitted["centres"]


def _file_machine(file_machine_dict):
    machine = copy.deepcopy(file_machine_dict)
    machine["source"]["operating_conditions"] = {
        "settings": ["alt", "mach"],
        "n_conditions": 3,
        "seed": 0,
    }
    return machine


@pytest.fixture()
def file_machine(machine):
    m = copy.deepcopy(machine)
    m["source"] = {
        "type": "file",
        "files": {"data": "*"},
        "columns": {"time": "t"},
        "split": {"method": "episode"},
        "operating_conditions": {"settings": ["alt", "mach"], "n_conditions": 3, "seed": 0},
    }
    return m


def test_conditions_are_fitted_on_train_only(file_machine):
    x, _ = _settings(300, 1)
    train = pd.DataFrame(
        {setting_column("alt"): x[:, 0], setting_column("mach"): x[:, 1], c.REGIME: "single"}
    )
    fitted = fit_operating_conditions(train, file_machine)
    assert fitted["fitted_on"] == {"split": "train", "rows": 300}
    # test rows far from every train centre still get the nearest train condition: no refit
    test = pd.DataFrame(
        {
            setting_column("alt"): [19.0, -3.0],
            setting_column("mach"): [0.9, 0.0],
            c.REGIME: "single",
        }
    )
    labelled = label_operating_conditions(test, fitted)
    assert labelled[c.REGIME].tolist() == [
        oc.assign_conditions(np.array([[20.0, 1.0]]), fitted["clustering"])[0],
        oc.assign_conditions(np.array([[0.0, 0.0]]), fitted["clustering"])[0],
    ]
    assert fit_operating_conditions(train, file_machine) == fitted


def _with_regimes(frame, seed):
    """Rows of the tiny simulated split re-labelled into two conditions that shift every sensor."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    regime = np.where(rng.random(len(out)) < 0.5, "low", "high")
    out[c.REGIME] = regime
    return out, regime


@pytest.fixture()
def scaled_machine(machine):
    m = copy.deepcopy(machine)
    m["source"] = {
        **dict(m.get("source") or {"type": "synthetic"}),
        "operating_conditions": {"normalise_sensors": True},
    }
    return m


def test_per_condition_scaling_is_fitted_on_train_only(tiny_splits, scaled_machine, tiny_params):
    train, _ = _with_regimes(tiny_splits[0], 0)
    sensors = [s["name"] for s in scaled_machine["sensors"]]
    train.loc[train[c.REGIME] == "high", sensors] += 100.0
    baselines = fit_sensor_baselines(train, scaled_machine, tiny_params["features"])
    scaling = baselines["condition_scaling"]
    for regime in ("low", "high"):
        want = train.loc[train[c.REGIME] == regime, sensors].mean().to_numpy()
        np.testing.assert_allclose(scaling["per_condition"][regime]["mean"], want)
    # a test split with its own offset keeps it: the train constants are applied, not refitted
    test, _ = _with_regimes(tiny_splits[2], 1)
    test.loc[test[c.REGIME] == "high", sensors] += 150.0
    features = build_window_features(test, baselines, scaled_machine)
    first = sensors[0]
    assert first in features.columns  # the (scaled) reading itself is a feature
    ordered = test.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable").reset_index(drop=True)
    stats = scaling["per_condition"]
    mean = ordered[c.REGIME].map(lambda r: stats[r]["mean"][0])
    sd = ordered[c.REGIME].map(lambda r: stats[r]["sd"][0])
    expected = ((ordered[first] - mean) / sd).ffill()
    np.testing.assert_allclose(features[first].to_numpy(), expected.to_numpy(), rtol=1e-9)
    high = features[c.REGIME] == "high"
    # the test split's extra offset (50 raw units) is kept, not normalised away
    assert features.loc[high, first].mean() - features.loc[~high, first].mean() > 1.0


def test_edge_features_equal_training_features_with_condition_scaling(
    tiny_splits, scaled_machine, tiny_params
):
    train, _ = _with_regimes(tiny_splits[0], 0)
    sensors = [s["name"] for s in scaled_machine["sensors"]]
    train.loc[train[c.REGIME] == "high", sensors] += 100.0
    baselines = fit_sensor_baselines(train, scaled_machine, tiny_params["features"])
    test, _ = _with_regimes(tiny_splits[2], 1)
    test.loc[test[c.REGIME] == "high", sensors] += 100.0
    features = build_window_features(test, baselines, scaled_machine)
    kinds = [baselines["sensors"][s]["kind"] for s in sensors]
    window_names = window_feature_names(
        sensors, kinds, window_labels(baselines["windows_hours"]), baselines["statistics"]
    ) + settings_feature_names(sensors, baselines["degradation"])
    manifest = {
        "sensors": [{"name": s, **baselines["sensors"][s]} for s in sensors],
        "windows": {
            "rows": baselines["window_rows"],
            "statistics": baselines["statistics"],
            "degradation": baselines["degradation"],
        },
        "window_feature_names": window_names,
        "feature_names": feature_columns(features),
        "regimes": {
            "codes": {r: i for i, r in enumerate(baselines["regimes"])},
            "unknown_code": -1,
        },
        "preprocessing": {"condition_scaling": baselines["condition_scaling"]},
    }
    for episode, rows in test.sort_values([c.EPISODE, c.TIMESTAMP]).groupby(c.EPISODE):
        readings = Readings(
            values=rows[sensors].to_numpy(dtype=np.float64),
            regimes=rows[c.REGIME].to_numpy(),
            timestamps=rows[c.TIMESTAMP].to_numpy(),
            sensors=tuple(sensors),
        )
        served = compute_features(readings, manifest)
        trained = features[features[c.EPISODE] == episode][manifest["feature_names"]].to_numpy()
        np.testing.assert_allclose(served, trained, rtol=1e-9, atol=1e-9, err_msg=str(episode))
