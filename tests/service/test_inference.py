"""Answers over HTTP equal the edge runtime's on the same readings, and bad readings get a 422."""

from __future__ import annotations

import json
import math

import pytest

from pdm_kedro.edge.bundle import EdgeBundle, load_bundle
from pdm_kedro.edge.runtime import predict
from tests.conftest import TEST_MACHINE

from .conftest import array_readings, json_readings

pytestmark = pytest.mark.slow

FAMILY_KEY = {
    "classification": "failure",
    "regression": "rul_hours",
    "anomaly": "anomaly",
    "forecasting": "forecast",
}
PREDICT = f"/v1/machines/{TEST_MACHINE}/predict"


def _same(http: dict, edge: dict) -> None:
    """Equal after one JSON round trip (NaN forecasts travel as null)."""
    edge = json.loads(json.dumps(edge).replace("NaN", "null"))
    assert http == edge


@pytest.fixture(scope="module")
def bundle(server):
    return load_bundle(server.bundle_dir)


@pytest.fixture(scope="module")
def edge_answer(bundle, recent, sensors):
    return predict(bundle, array_readings(recent, sensors))


def test_all_four_answers_equal_the_edge(server, body, edge_answer):
    with server.client() as client:
        response = client.post(PREDICT, json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    for key in FAMILY_KEY.values():
        _same(got[key], edge_answer[key])
    assert got["warnings"] == edge_answer["warnings"]
    assert got["timestamp"] == edge_answer["timestamp"]
    assert set(got["models"]) == set(FAMILY_KEY)


@pytest.mark.parametrize("family", list(FAMILY_KEY))
def test_each_family_endpoint_equals_the_edge(server, body, bundle, recent, sensors, family):
    view = EdgeBundle(bundle.path, bundle.manifest, {family: bundle.sessions[family]})
    expected = predict(view, array_readings(recent, sensors))
    with server.client() as client:
        response = client.post(f"{PREDICT}/{family}", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    _same(got[FAMILY_KEY[family]], expected[FAMILY_KEY[family]])
    others = [k for f, k in FAMILY_KEY.items() if f != family]
    assert all(got[k] is None for k in others)
    assert list(got["models"]) == [family]


def test_every_row_from_the_episode_start_equals_the_edge(server, bundle, test_episode, sensors):
    rows = test_episode.iloc[:60]
    expected = predict(
        bundle, array_readings(rows, sensors), all_rows=True, from_episode_start=True
    )
    body = {"readings": json_readings(rows, sensors), "all_rows": True, "from_episode_start": True}
    with server.client() as client:
        got = client.post(PREDICT, json=body).json()
    assert len(got["failure"]["probability"]) == 60
    for key in FAMILY_KEY.values():
        _same(got[key], expected[key])


def test_batch_scores_many_items_and_reports_item_errors(server, body, edge_answer):
    items = [
        {"machine_id": TEST_MACHINE, **body},
        {"machine_id": TEST_MACHINE, **body, "families": ["classification"]},
        {"machine_id": "no_such_machine", **body},
    ]
    with server.client() as client:
        response = client.post("/v1/predict/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 200, 404]
    _same(results[0]["prediction"]["failure"], edge_answer["failure"])
    _same(results[1]["prediction"]["failure"], edge_answer["failure"])
    assert results[1]["prediction"]["rul_hours"] is None
    assert TEST_MACHINE in results[2]["error"]["known_machines"]
    assert response.json()["errors"] == 1


def _error(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error


def test_wrong_sensor_names(server, body):
    readings = dict(body["readings"])
    readings["spead"] = readings.pop("speed")
    with server.client() as client:
        response = client.post(PREDICT, json={"readings": readings})
    _error(response, 422, "missing columns ['speed']", "unknown columns ['spead']")


def test_nan_and_infinity_are_refused(server, body):
    text = json.dumps(body).replace(str(body["readings"]["speed"][3]), "NaN", 1)
    with server.client() as client:
        response = client.post(PREDICT, content=text, headers={"Content-Type": "application/json"})
        _error(response, 422, "finite number")
        text = json.dumps(body).replace(str(body["readings"]["speed"][3]), "Infinity", 1)
        response = client.post(PREDICT, content=text, headers={"Content-Type": "application/json"})
        _error(response, 422, "finite number")


def test_a_long_run_of_missing_readings_is_refused(server, body, manifest):
    readings = dict(body["readings"])
    gap = int(manifest["inputs"]["max_missing_run"]) + 1
    readings["speed"] = [*readings["speed"][:10], *[None] * gap, *readings["speed"][10 + gap :]]
    with server.client() as client:
        response = client.post(PREDICT, json={"readings": readings})
    _error(response, 422, "'speed' is missing (NaN) for")


def test_unordered_and_duplicate_timestamps(server, body):
    readings = dict(body["readings"])
    stamps = list(readings["timestamp"])
    stamps[5], stamps[6] = stamps[6], stamps[5]
    with server.client() as client:
        response = client.post(PREDICT, json={"readings": {**readings, "timestamp": stamps}})
        _error(response, 422, "Timestamps must increase strictly", "row 6")
        stamps = list(readings["timestamp"])
        stamps[8] = stamps[7]
        response = client.post(PREDICT, json={"readings": {**readings, "timestamp": stamps}})
        _error(response, 422, "Timestamps must increase strictly", "row 8")


def test_too_little_history_says_how_much_is_needed(server, body, manifest):
    readings = {k: v[-20:] for k, v in body["readings"].items()}
    with server.client() as client:
        response = client.post(PREDICT, json={"readings": readings})
    need = manifest["inputs"]["min_history_rows"]
    _error(response, 422, "Too little history: 20 rows", f"needs the last {need} readings")


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("speed", "fast", "are strings"),
        ("speed", True, "valid number"),
        ("timestamp", 12345.0, "not ISO 8601 strings"),
        ("timestamp", "yesterday", "not an ISO 8601 date-time"),
        ("regime", 3.0, "not regime names"),
    ],
)
def test_wrong_types(server, body, column, value, fragment):
    readings = dict(body["readings"])
    readings[column] = [value, *readings[column][1:]]
    with server.client() as client:
        response = client.post(PREDICT, json={"readings": readings})
    _error(response, 422, fragment)


def test_ragged_columns_and_a_body_that_is_not_an_object(server, body):
    readings = dict(body["readings"])
    readings["speed"] = readings["speed"][:-1]
    with server.client() as client:
        _error(client.post(PREDICT, json={"readings": readings}), 422, "different lengths")
        _error(client.post(PREDICT, json=[1, 2, 3]), 422, "does not match the schema")
        response = client.post(
            PREDICT, content=b"{not json", headers={"Content-Type": "application/json"}
        )
        _error(response, 422, "not valid JSON")


def test_unknown_machine_lists_the_known_ones(server, body):
    with server.client() as client:
        error = _error(client.post("/v1/machines/pump_x_999/predict", json=body), 404, "pump_x_999")
    assert error["known_machines"] == [TEST_MACHINE]


def test_unknown_family_is_a_json_error(server, body):
    with server.client() as client:
        response = client.post(f"{PREDICT}/weather", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"].startswith("path.family")


def test_forecast_values_are_numbers_or_null(server, body):
    with server.client() as client:
        got = client.post(f"{PREDICT}/forecasting", json=body).json()
    for values in got["forecast"]["sensors"].values():
        assert all(v is None or math.isfinite(v) for v in values["forecast"])
        assert len(values["forecast"]) == 24
