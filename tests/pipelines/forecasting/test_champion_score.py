"""The forecasting run registers its model scored on the mean MAPE over the key sensors, on the
fingerprint of the test split it was scored on; the forecasters are fitted on train hours only."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pdm_kedro.evaluation.report import frame_fingerprint
from pdm_kedro.families import get_family
from pdm_kedro.pipeline_registry import discover_templates, namespace_for_machine
from pdm_kedro.pipelines.forecasting import nodes as n
from tests.conftest import TEST_MACHINE
from tests.pipelines.family_catalog import production_dataset, promotion_datasets
from tests.pipelines.forecasting.test_pipeline import KeptMemoryDataset

M = TEST_MACHINE


@pytest.fixture(scope="module")
def run(tiny_splits, machine, fc_params, tmp_path_factory):
    pipe = namespace_for_machine(discover_templates()["forecasting"], M)
    inputs = {
        **{
            f"{M}.validated_{s}": split
            for s, split in zip(("train", "val", "test"), tiny_splits, strict=True)
        },
        f"params:{M}.machine": machine,
        "params:forecasting": fc_params,
    }
    catalog = DataCatalog(
        {
            **{name: KeptMemoryDataset() for name in pipe.all_outputs()},
            **{name: MemoryDataset(value) for name, value in inputs.items()},
            **promotion_datasets(M, "forecasting"),
            **production_dataset(
                M, "forecasting", tmp_path_factory.mktemp("promotion") / "promotions.jsonl"
            ),
        }
    )
    SequentialRunner().run(pipe, catalog)
    return {name.split(".")[-1]: catalog[name].load() for name in pipe.all_outputs()}


def test_champion_score_is_the_mean_mape_over_key_sensors(run, machine, tiny_splits, fc_params):
    entry = run["registered_model"]
    mape = {
        row["sensor"]: row["value"]
        for row in run["metrics"]["metrics"]
        if row["metric"].startswith("mape[")
    }
    assert set(mape) == set(machine["forecast_sensors"]) and len(mape) >= 2
    assert len(set(mape.values())) == len(mape)  # one sensor's MAPE would differ from the mean
    assert entry["score"] == pytest.approx(float(np.mean(list(mape.values()))))
    assert entry["score_name"] == get_family("forecasting").headline == "mape"
    assert not get_family("forecasting").headline_greater_is_better
    test = tiny_splits[2]
    assert entry["test_fingerprint"] == frame_fingerprint(test, list(test.columns))
    assert entry["model"] is run["model"] or entry["model"]["sensors"].keys() == mape.keys()


def test_forecasters_are_fitted_on_train_hours_only(run):
    train_hours = run["hourly_train"]["hour"].to_numpy()
    for sensor, entry in run["model"]["sensors"].items():
        assert train_hours.min() <= entry["fit"]["first_hour"], sensor
        assert entry["fit"]["last_hour"] <= train_hours.max(), sensor
    assert run["backtest_test"]["origin_hour"].min() >= run["hourly_test"]["hour"].min()


def _mean_key_sensor_figures(run):
    """The promotion figures by hand: mean test MAPE over the key sensors (the metrics document's
    per-sensor rows) and mean |interval coverage - nominal| (its test diagnostics)."""
    mape = [row["value"] for row in run["metrics"]["metrics"] if row["metric"].startswith("mape[")]
    nominal = 1.0 - float(run["model"]["interval_alpha"])
    coverage = [
        abs(figures["interval_coverage"] - nominal)
        for figures in run["metrics"]["diagnostics"]["test"].values()
    ]
    # one sensor's MAPE != the mean (the tiny run's two sensors can share a coverage count)
    assert len(set(mape)) == len(mape) >= 2 and len(coverage) == len(mape)
    return float(np.mean(mape)), float(np.mean(coverage))


def test_promotion_scores_the_challenger_on_the_mean_over_key_sensors(run):
    mape, coverage_error = _mean_key_sensor_figures(run)
    scores = run["promotion_scores"]
    assert scores["challenger"]["mape"] == pytest.approx(mape)
    assert scores["challenger"]["coverage_error"] == pytest.approx(coverage_error)
    test = run["hourly_test"]
    assert scores["evaluation"]["fingerprint"] == frame_fingerprint(test, list(test.columns))


def test_a_champion_is_scored_by_the_same_rule_on_the_same_hours(run, fc_params):
    """The champion is backtested again over the test hours: the same forecaster as champion
    gets exactly the challenger's figures, the mean over the key sensors."""
    mape, coverage_error = _mean_key_sensor_figures(run)
    registered = run["registered_model"]
    scores = n.score_for_promotion(
        registered,
        {"model": run["model"]},
        run["backtest_test"],
        run["hourly_val"],
        run["hourly_test"],
        fc_params,
    )
    assert scores["champion"]["mape"] == pytest.approx(mape)
    assert scores["champion"]["coverage_error"] == pytest.approx(coverage_error)
    assert scores["challenger"] == pytest.approx(scores["champion"])
