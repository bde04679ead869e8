"""bench_monitoring's retraining figures: the share of a lost headline metric a promotion
recovers, on the fresh window (the benchmark itself runs at full size outside the suite)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_monitoring.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_monitoring", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(headline: str, champion: float, challenger: float, promote: bool) -> dict:
    return {
        "headline": headline,
        "champion_metrics": {headline: champion},
        "challenger_metrics": {headline: challenger},
        "promote": promote,
        "reason": "",
    }


def test_recovered_fraction_in_the_metric_direction(bench):
    # F1: test 0.8, the champion fell to 0.5 on the fresh window, the promoted model has 0.7
    f1 = bench.recovered_fraction(row("f1", 0.5, 0.7, True), 0.8)
    assert f1["recovered_fraction"] == pytest.approx(2 / 3)
    assert f1["relative_gain"] == pytest.approx(0.4)
    # RMSE (lower is better): test 30 h, champion 50 h on the window, promoted 35 h
    rmse = bench.recovered_fraction(row("rmse", 50.0, 35.0, True), 30.0)
    assert rmse["recovered_fraction"] == pytest.approx(0.75)
    # a kept challenger recovers nothing, whatever it scored
    kept = bench.recovered_fraction(row("rmse", 50.0, 20.0, False), 30.0)
    assert kept["recovered_fraction"] == 0.0 and kept["relative_gain"] == 0.0


def test_nothing_lost_nothing_to_recover(bench):
    better = bench.recovered_fraction(row("rmse", 25.0, 20.0, True), 30.0)
    assert better["recovered_fraction"] is None and "lost nothing" in better["note"]
    assert better["relative_gain"] == pytest.approx(0.2)


def test_the_control_is_worse_on_val_only_when_worse_in_every_headline_family(bench):
    good = {"classification": {"f1": 0.80}, "regression": {"rmse": 40.0}}
    worse = {"classification": {"f1": 0.60}, "regression": {"rmse": 55.0}}
    assert bench._worse_on_val(good, worse) is True
    lucky = {"classification": {"f1": 0.60}, "regression": {"rmse": 39.0}}  # better RMSE
    assert bench._worse_on_val(good, lucky) is False
    assert bench._worse_on_val({}, worse) is None  # nothing to compare


def test_val_figures_read_the_metrics_documents(bench, tmp_path):
    import json  # noqa: PLC0415

    for family, metric, value in (("classification", "f1", 0.7), ("regression", "rmse", 42.0)):
        folder = tmp_path / "08_reporting" / "m1" / family
        folder.mkdir(parents=True)
        document = {"val_metrics": {"model": {metric: value}, "baseline": {metric: 0.0}}}
        (folder / "metrics.json").write_text(json.dumps(document))
    assert bench._val_figures(tmp_path, "m1") == {
        "classification": {"f1": 0.7},
        "regression": {"rmse": 42.0},
    }
