"""``?explain=N`` on the predict endpoints: the edge runtime's explanation (its top factors equal
XGBoost's own TreeSHAP of the served models, early stopping included), opt-in, with its own
rate-limit cost, and a JSON 422 naming the allowed range or the families that have one."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.runtime import predict
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.fleet import load_project_parameters, machines_in_parameters
from tests.conftest import PROJECT_ROOT, TEST_MACHINE

from .conftest import array_readings

pytestmark = pytest.mark.slow

PREDICT = f"/v1/machines/{TEST_MACHINE}/predict"
KEYS = {"classification": "failure", "regression": "rul_hours"}


def _native(service_root, family: str) -> dict:
    folder = service_root / "data" / "06_models" / TEST_MACHINE / family / "model.pkl"
    path = sorted(folder.glob("*/model.pkl"))[-1]
    with path.open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 (the shared run's own artefact)


def test_explained_answer_equals_the_edge_and_xgboost(server, body, recent, sensors, service_root):
    with server.client() as client:
        plain = client.post(PREDICT, json=body).json()
        response = client.post(f"{PREDICT}?explain=3", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert "explanation" not in plain or plain["explanation"] is None  # opt-in
    edge = predict(load_bundle(server.bundle_dir), array_readings(recent, sensors), explain=3)
    assert got["explanation"] == json.loads(json.dumps(edge["explanation"]))
    explanation = got["explanation"]
    assert set(explanation) >= {"failure", "rul_hours", "anomaly", "diagnosis"}
    assert explanation["diagnosis"]["modes"][0]["action"]
    # the served models' own TreeSHAP on the same row (the run's feature table)
    table = pd.read_parquet(
        service_root / "data" / "04_feature" / TEST_MACHINE / "features_test.parquet"
    )
    stamp = pd.Timestamp(recent["timestamp"].iloc[-1])
    row = table[
        (table["episode_id"] == recent["episode_id"].iloc[-1]) & (table["timestamp"] == stamp)
    ]
    assert len(row) == 1
    params = load_project_parameters(env="small", conf_source=PROJECT_ROOT / "conf")
    machine = machines_in_parameters(params)[TEST_MACHINE]
    for family, key in KEYS.items():
        want = ex.explain_rows(_native(service_root, family), row, machine, 3)[0]
        mine = explanation[key]
        assert [f["feature"] for f in mine["top_factors"]] == [
            f["feature"] for f in want["top_factors"]
        ]
        for a, b in zip(mine["top_factors"], want["top_factors"], strict=True):
            assert a["contribution"] == pytest.approx(b["contribution"], abs=1e-4)
        assert mine["base_value"] == pytest.approx(want["base_value"], abs=1e-6)
        assert mine["raw_prediction"] == pytest.approx(want["raw_prediction"], abs=1e-3)
    p = got["failure"]["probability"]
    assert 1 / (1 + np.exp(-explanation["failure"]["raw_prediction"])) == pytest.approx(p, abs=1e-4)


def test_per_family_explanation_and_bad_requests(server, body, manifest):
    inputs = len(manifest["models"]["classification"]["feature_names"])
    with server.client() as client:
        one = client.post(f"{PREDICT}/classification?explain=2", json=body)
        assert one.status_code == 200, one.text
        explanation = one.json()["explanation"]
        assert len(explanation["failure"]["top_factors"]) == 2
        assert explanation["rul_hours"] is None and explanation["anomaly"] is None
        forecast = client.post(f"{PREDICT}/forecasting?explain=3", json=body)
        assert forecast.status_code == 422
        error = forecast.json()["error"]
        assert error["code"] == "invalid_explain"
        assert "forecasting answer has no explanation" in error["message"]
        assert "classification, regression, anomaly" in error["message"]
        for bad in (0, -2, inputs + 1):
            response = client.post(f"{PREDICT}?explain={bad}", json=body)
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_explain" and f"1 to {inputs}" in error["message"]
        text = client.post(f"{PREDICT}?explain=many", json=body)
        assert text.status_code == 422 and text.json()["error"]["code"] == "invalid_request"
