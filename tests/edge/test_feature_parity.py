"""Training/serving parity: the edge computes the training pipeline's features, row for row."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.features import compute_features
from pdm_kedro.edge.readings import check_readings
from pdm_kedro.edge.runtime import predict

from .readings_helpers import as_readings, episode_rows

RTOL, ATOL = 1e-9, 1e-9


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle[0])


def _training_rows(features, episode):
    rows = features[features[c.EPISODE] == episode]
    return rows.sort_values(c.TIMESTAMP, kind="stable").reset_index(drop=True)


def test_every_row_of_every_test_episode_from_its_start(bundle, tiny_splits, tiny_features):
    raw_test, features = tiny_splits[2], tiny_features["test"]
    names = bundle.manifest["feature_names"]
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    episodes = raw_test[c.EPISODE].unique()
    assert len(episodes) >= 1
    for episode in episodes:
        readings = as_readings(episode_rows(raw_test, episode), sensors)
        checked = check_readings(readings, bundle.manifest, 1, from_episode_start=True)
        served = compute_features(checked, bundle.manifest)
        trained = _training_rows(features, episode)[names].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(served, trained, rtol=RTOL, atol=ATOL, err_msg=str(episode))


def test_last_row_of_a_recent_window_equals_training(bundle, tiny_splits, tiny_features):
    """The edge normally sees only the last ``min_history_rows`` readings of a running episode."""
    raw = tiny_splits[2]
    names = bundle.manifest["feature_names"]
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    need = bundle.manifest["inputs"]["min_history_rows"]
    compared = 0
    for episode in raw[c.EPISODE].unique():
        rows = episode_rows(raw, episode)
        trained = _training_rows(tiny_features["test"], episode)[names].to_numpy()
        for end in range(need - 1, len(rows), 3):
            window = rows.iloc[end - need + 1 : end + 1]
            if window[sensors].iloc[0].isna().any():  # the runtime refuses these (tested elsewhere)
                continue
            checked = check_readings(as_readings(window, sensors), bundle.manifest, need)
            served = compute_features(checked, bundle.manifest)[-1]
            np.testing.assert_allclose(served, trained[end], rtol=1e-7, atol=1e-7)
            compared += 1
    assert compared >= 10


def test_answers_equal_the_native_models_on_the_same_rows(
    bundle, tiny_models, tiny_splits, tiny_features
):
    raw = tiny_splits[2]
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    episode = raw[c.EPISODE].unique()[0]
    rows = episode_rows(raw, episode)
    answer = predict(bundle, as_readings(rows, sensors), all_rows=True, from_episode_start=True)
    table = _training_rows(tiny_features["test"], episode)

    def native(family):
        model = tiny_models[family]
        return model["estimator"], table[model["feature_names"]].to_numpy(dtype=np.float32)

    clf, x = native("classification")
    np.testing.assert_allclose(
        answer["failure"]["probability"], clf.predict_proba(x)[:, 1], atol=1e-4
    )
    reg, x = native("regression")
    np.testing.assert_allclose(answer["rul_hours"]["value"], reg.predict(x), rtol=1e-5, atol=1e-3)
    det, x = native("anomaly")
    np.testing.assert_allclose(answer["anomaly"]["score"], -det.decision_function(x), atol=1e-5)
    assert answer["machine_id"] == bundle.machine_id
    assert len(answer["failure"]["decision"]) == len(rows)
