"""Training/serving parity: the edge computes the training pipeline's features, row for row."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.core.rul_answer import rul_at_alarm
from pdm_kedro.edge.bundle import EdgeBundle, load_bundle
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
    rul = answer["rul_hours"]
    np.testing.assert_allclose(rul["model_value"], reg.predict(x), rtol=1e-5, atol=1e-3)
    # the answer: at most the cap while the failure alarm is on (core.rul_answer)
    expected, capped = rul_at_alarm(
        np.asarray(rul["model_value"]), np.asarray(answer["failure"]["decision"]), 12.0
    )
    assert rul["cap_at_alarm_hours"] == 12.0 == answer["failure"]["horizon_hours"]
    np.testing.assert_array_equal(rul["value"], expected)
    np.testing.assert_array_equal(rul["capped_by_alarm"], capped)
    det, x = native("anomaly")
    np.testing.assert_allclose(answer["anomaly"]["score"], -det.decision_function(x), atol=1e-5)
    assert answer["machine_id"] == bundle.machine_id
    assert len(answer["failure"]["decision"]) == len(rows)


def _with(bundle, families, threshold=None):
    """The bundle answering ``families`` only, the failure threshold optionally replaced."""
    manifest = copy.deepcopy(bundle.manifest)
    if threshold is not None:
        manifest["models"]["classification"]["threshold"] = threshold
    sessions = {f: bundle.sessions[f] for f in families}
    return EdgeBundle(
        path=bundle.path, manifest=manifest, sessions=sessions, explainer=bundle.explainer
    )


def test_the_rul_answer_is_capped_while_the_alarm_is_on(bundle, tiny_splits):
    """Threshold 0: the alarm is on for every row, so no RUL answer exceeds 12 h while the RUL
    model's own value does; without the failure answer the RUL is the model's, unchecked."""
    raw = tiny_splits[2]
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    rows = episode_rows(raw, raw[c.EPISODE].unique()[0])
    readings = as_readings(rows, sensors)
    always = predict(
        _with(bundle, ["classification", "regression"], threshold=0.0),
        readings,
        all_rows=True,
        from_episode_start=True,
    )
    rul = always["rul_hours"]
    model = np.asarray(rul["model_value"])
    assert all(always["failure"]["decision"]) and (model > 12.0).any()
    np.testing.assert_array_equal(rul["value"], np.minimum(model, 12.0))
    np.testing.assert_array_equal(rul["capped_by_alarm"], model > 12.0)
    alone = predict(_with(bundle, ["regression"]), readings, all_rows=True, from_episode_start=True)
    np.testing.assert_array_equal(alone["rul_hours"]["value"], rul["model_value"])
    assert alone["rul_hours"]["capped_by_alarm"] is None
    assert any("not checked against the failure alarm" in w for w in alone["warnings"])
    last = predict(
        _with(bundle, ["classification", "regression"], 0.0), readings, from_episode_start=True
    )
    assert last["rul_hours"]["value"] == min(last["rul_hours"]["model_value"], 12.0)
    assert isinstance(last["rul_hours"]["capped_by_alarm"], bool)
