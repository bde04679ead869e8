"""The runtime's fourth answer: the merged forecasting.onnx, viewed per sensor, answers like each
sensor's own graph, with hours as ISO date-times and the sensors' units."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro.core.arima import edge_spec
from pdm_kedro.edge.bundle import EdgeBundle, make_session
from pdm_kedro.edge.forecast import forecast_from_readings
from pdm_kedro.edge.readings import Readings
from pdm_kedro.edge.runtime import SensorForecastView, forecast
from pdm_kedro.families import get_family
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx
from pdm_kedro.pipelines.edge_export.forecasting import export_forecaster
from tests.pipelines.edge_export.test_forecasting_export import (  # noqa: F401  (fixture)
    START_HOUR,
    artefact,
)

SENSORS = ("winding_temperature", "current", "speed")
UNITS = {"winding_temperature": "degC", "current": "A", "speed": "rpm"}


@pytest.fixture(scope="module")
def readings() -> Readings:
    n = 6 * 120  # 120 h of 10-minute readings
    rng = np.random.default_rng(5)
    t = np.arange(n)
    values = np.column_stack(
        [
            80 + 2 * np.sin(2 * np.pi * t / 144) + rng.normal(0, 0.3, n),
            22 + np.cumsum(rng.normal(0, 0.02, n)),
            1460 + rng.normal(0, 1.5, n),
        ]
    )
    values[300:303, 1] = np.nan
    start = np.datetime64(START_HOUR * 3600, "s")
    return Readings(
        values=values,
        regimes=np.array(["run"] * n),
        timestamps=start + t * np.timedelta64(600, "s"),
        sensors=SENSORS,
    )


@pytest.fixture(scope="module")
def bundle(artefact, machine, tiny_params, tmp_path_factory):  # noqa: F811
    merged = export_forecaster(artefact, machine, tiny_params["edge_export"])
    family = get_family("forecasting")
    manifest = {
        "machine_id": machine["machine_id"],
        "sensors": [{"name": s, "unit": UNITS[s]} for s in SENSORS],
        "models": {
            "forecasting": {
                "sensors": list(artefact["sensors"]),
                "spec": edge_spec(artefact),
                "answer": {"key": family.answer_key, "kind": family.answer_kind, "fields": {}},
            }
        },
    }
    return EdgeBundle(
        path=tmp_path_factory.mktemp("fc"),
        manifest=manifest,
        sessions={"forecasting": make_session(merged.SerializeToString())},
    )


def test_forecast_answer_equals_each_sensor_graph(bundle, artefact, readings):  # noqa: F811
    got = forecast(bundle, readings)
    own = {
        s: make_session(forecaster_to_onnx(artefact, s).SerializeToString())
        for s in artefact["sensors"]
    }
    columns = {name: readings.values[:, j] for j, name in enumerate(readings.sensors)}
    expected = forecast_from_readings(own, edge_spec(artefact), readings.timestamps, columns)
    assert got["origin"] == str(np.datetime64(expected["origin_hour"] * 3600, "s"))
    # the hour after the last reading (120 h after the first, at 2024-10-04T00:00)
    assert got["origin"] == "2024-10-09T00:00:00"
    assert got["hours"] == [str(np.datetime64(int(h) * 3600, "s")) for h in expected["hours"]]
    assert len(got["hours"]) == 24 and got["hours"][0] == got["origin"]
    assert set(got["sensors"]) == set(artefact["sensors"])
    for sensor, answer in got["sensors"].items():
        assert answer["unit"] == UNITS[sensor]
        assert set(answer) == {"unit", "forecast", "lower", "upper"}
        for key in ("forecast", "lower", "upper"):
            assert isinstance(answer[key], list) and len(answer[key]) == 24
            np.testing.assert_allclose(answer[key], expected["sensors"][sensor][key], rtol=1e-12)
        assert np.all(np.array(answer["lower"]) < np.array(answer["upper"]))


def test_sensor_view_exposes_only_its_state_input(bundle):
    session = bundle.sessions["forecasting"]
    view = SensorForecastView(session, "current")
    (only,) = view.get_inputs()
    assert only.name == "current__state"
    width = int(only.shape[1])
    out = view.run(None, {only.name: np.zeros((1, width))})
    assert len(out) == 3 and all(o.shape == (1, 24) for o in out)
    with pytest.raises(KeyError, match="no graph for sensor 'speed'"):
        SensorForecastView(session, "speed")
