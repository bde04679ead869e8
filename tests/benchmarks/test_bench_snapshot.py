"""``benchmarks/bench_snapshot.py --env <env>`` on a test environment: a small copy of
``conf/snapshot`` (the same machine, a 2,000-row table), run end to end by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns
from tests.benchmarks import load_benchmark
from tests.conftest import PROJECT_ROOT
from tests.docs.kedro_cli import isolated_env

ENV = "snapshot_test"
MACHINE = "snapshot_pump"


def _bench_module():
    return load_benchmark("bench_snapshot")


def _write_environment(root: Path) -> Path:
    shim = root / "project"
    conf = shim / "conf"
    (conf / "local").mkdir(parents=True)
    (conf / "base").symlink_to(PROJECT_ROOT / "conf" / "base", target_is_directory=True)
    shutil.copytree(PROJECT_ROOT / "conf" / "snapshot", conf / ENV)
    (shim / "src").mkdir()
    (shim / "pyproject.toml").write_text((PROJECT_ROOT / "pyproject.toml").read_text())
    parameters = yaml.safe_load((conf / ENV / "parameters.yml").read_text())
    parameters["snapshot_table"] |= {"simulated_rows": 20000, "rows": 2000}
    (conf / ENV / "parameters.yml").write_text(yaml.safe_dump(parameters))
    return shim


@pytest.mark.slow
def test_snapshot_benchmark_runs_a_test_environment_by_name(tmp_path, monkeypatch):
    shim = _write_environment(tmp_path)
    for key, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "bench"
    result = _bench_module().main(["--env", ENV, "--data-root", str(out), "--project", str(shim)])
    root = out / ENV
    saved = json.loads((root / "08_reporting" / "snapshot_benchmark.json").read_text())
    assert saved["machines"].keys() == {MACHINE} == result["machines"].keys()
    doc = saved["machines"][MACHINE]
    ours, reference = doc["pipeline"]["test"]["f1"], doc["plain_xgboost"]["test"]["f1"]
    assert 0.0 <= ours <= 1.0 and 0.0 <= reference <= 1.0
    assert doc["target_met"] is (ours >= reference)
    # the pipeline's figure is the run's own metrics.json
    metrics = json.loads(
        (root / "08_reporting" / MACHINE / "classification" / "metrics.json").read_text()
    )
    assert {r["metric"]: r["value"] for r in metrics["metrics"]}["f1"] == pytest.approx(ours)
    # the machine's model_overrides reached the nodes (fleet-wide: depth 3, train-only trees)
    model = metrics["model"]
    assert model["max_depth"] == 6 and model["min_child_weight"] == 1
    assert model["trees_fitted_on"] == "train+val"
    assert "stratified" in model["threshold_chosen_on"]
    assert metrics["events"] is None and "no time to failure" in metrics["events_note"]
    # the table's own fractions (60/20/20), stratified on the failure label
    splits = {s: pd.read_parquet(root / "01_raw" / MACHINE / f"{s}.parquet") for s in c.SPLITS}
    assert {s: len(f) for s, f in splits.items()} == pytest.approx(
        {"train": 1200, "val": 400, "test": 400}, abs=2
    )
    rate = sum(int(f[c.FAILURE_WITHIN_HORIZON].sum()) for f in splits.values()) / 2000
    for frame in splits.values():
        assert abs(frame[c.FAILURE_WITHIN_HORIZON].sum() - rate * len(frame)) <= 1
    # snapshot features: no window statistic, no constant column
    features = pd.read_parquet(root / "04_feature" / MACHINE / "features_train.parquet")
    names = feature_columns(features)
    assert not [n for n in names if features[n].nunique() < 2]
    assert not [n for n in names if "_mean_" in n or "_std_" in n or n == "regime_code"]
    assert {"line__is_A", "regime__is_nominal", "flow_rate__zscore"} <= set(names)
    # no window-based stage for a snapshot table; the source report says why
    assert not (root / "06_models" / MACHINE / "edge").exists()
    report = json.loads((root / "08_reporting" / MACHINE / "source_report.json").read_text())
    assert "edge" in report["snapshot"]["not_built"]
    card = (root / "08_reporting" / MACHINE / "model_card.md").read_text()
    assert "Snapshot features (no windows" in card and "Window features over" not in card
    assert "stratified on failure_within_horizon" in card
    assert "| snapshot_pump |" in (root / "08_reporting" / "snapshot_benchmark.md").read_text()
