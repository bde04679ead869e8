"""The declared scoring protocol: last observed cycle of each test unit, on a fixture with known
answers."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.evaluation.protocol import declared_protocol, last_observed_rows
from pdm_kedro.pipelines.regression import nodes as n


class _Fixed:
    """An 'estimator' predicting the first feature column: known predictions."""

    def predict(self, x):
        return np.asarray(x)[:, 0]


def _fixture():
    # three test units cut short; rows deliberately out of time order
    t0 = pd.Timestamp("2020-01-01")
    rows = [
        # episode, hour, capped truth, prediction
        (1, 2, 40.0, 45.0),
        (1, 0, 42.0, 10.0),
        (1, 1, 41.0, 90.0),
        (2, 0, 125.0, 125.0),
        (2, 1, 125.0, 100.0),  # last of unit 2: error -25
        (3, 0, 11.0, 11.0),
        (3, 5, 6.0, 6.0),  # last of unit 3: exact
    ]
    frame = pd.DataFrame(
        {
            "episode_id": [r[0] for r in rows],
            "timestamp": [t0 + pd.Timedelta(hours=r[1]) for r in rows],
            "rul": [r[2] for r in rows],
            "f_pred": [r[3] for r in rows],
        }
    )
    return frame


def _machine(rul_protocol):
    return {
        "machine_id": "unit_test",
        "category": "turbofan",
        "manufacturer": "x",
        "model": "y",
        "rated_speed_rpm": 0,
        "sampling_interval_min": 60,
        "power_kw": 0,
        "voltage": 0,
        "age_years": 0,
        "source": {"type": "file", "protocol": {"rul": rul_protocol, "name": "demo"}},
        "sensors": [
            {
                "name": "s",
                "kind": "temperature",
                "unit": "K",
                "nominal": 1,
                "noise": 1,
                "min": 0,
                "max": 2,
            }
        ],
    }


def test_last_observed_rows_picks_the_latest_timestamp_of_each_unit():
    last = last_observed_rows(_fixture())
    assert last["episode_id"].tolist() == [1, 2, 3]
    assert last["rul"].tolist() == [40.0, 125.0, 6.0]
    assert last["f_pred"].tolist() == [45.0, 100.0, 6.0]


@pytest.mark.parametrize("rul_protocol", ["last_cycle", "all_rows"])
def test_rul_headline_follows_the_declared_protocol(rul_protocol):
    frame = _fixture()
    model = {
        "estimator": _Fixed(),
        "feature_names": ["f_pred"],
        "rul_cap_hours": 125.0,
        "best_iteration": 0,
    }
    baseline = {
        "kind": n.MEAN,
        "mean_capped_rul_hours": 50.0,
        "median_life_hours": 100.0,
        "rul_cap_hours": 125.0,
    }
    preds = n.predict_test_rul(model, baseline, frame)
    params = {
        "xgboost": {},
        "seed": 1,
        "near_failure_hours": 100,
        "bootstrap": {"resamples": 20, "level": 0.9, "seed": 42},
    }
    metrics = n.evaluate_rul_model(
        model, baseline, frame, preds, frame, _machine(rul_protocol), params
    )
    rows = {row["metric"]: row for row in metrics["metrics"]}
    if rul_protocol == "last_cycle":
        # errors at the last cycles: +5, -25, 0 -> RMSE sqrt(650/3), MAE 10
        assert metrics["n_rows"] == 3
        assert rows["rmse"]["value"] == pytest.approx(np.sqrt(650 / 3))
        assert rows["mae"]["value"] == pytest.approx(10.0)
        # the mean baseline (50) against 40, 125, 6: errors 10, -75, 44
        assert rows["rmse"]["baseline"] == pytest.approx(np.sqrt((100 + 75**2 + 44**2) / 3))
        nasa = np.expm1(5 / 10) + np.expm1(25 / 13)
        assert rows["nasa_score"]["value"] == pytest.approx(nasa)
        secondary = metrics["all_rows_metrics"]
        assert secondary["n_rows"] == 7 and "secondary" in secondary["label"]
        assert metrics["protocol"]["rul"] == "last_cycle"
        assert "3 test units" in metrics["protocol"]["scored_on"]
    else:
        assert metrics["n_rows"] == 7 and "all_rows_metrics" not in metrics
        err = frame["f_pred"].clip(0, 125) - frame["rul"]
        assert rows["rmse"]["value"] == pytest.approx(np.sqrt(np.mean(err**2)))


def test_protocol_defaults_to_every_row_and_rejects_unknown_names():
    assert declared_protocol({"source": {"type": "synthetic"}})["rul"] == "all_rows"
    with pytest.raises(ValueError, match="source.protocol.rul"):
        declared_protocol({"machine_id": "m", "source": {"protocol": {"rul": "best_rows"}}})
