"""``benchmarks/bench_real_data.py --env <env>`` on a test environment built here: a tiny
run-to-failure file source with truncated test units, scored by its declared protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.benchmarks import load_benchmark
from tests.conftest import PROJECT_ROOT
from tests.docs.kedro_cli import isolated_env

ENV = "bench_test"
MACHINE = "bench_unit"


def _bench_module():
    return load_benchmark("bench_real_data")


def _units(n, seed, truncate):
    rng = np.random.default_rng(seed)
    rows, final = [], []
    for unit in range(1, n + 1):
        life = int(rng.integers(50, 90))
        seen = int(rng.integers(20, life - 5)) if truncate else life
        wear = np.arange(1, seen + 1) / life
        rows.append(
            pd.DataFrame(
                {
                    "unit": unit,
                    "cycle": np.arange(1, seen + 1),
                    "temp": 100 + 8 * wear**2 + rng.normal(0, 0.3, seen),
                    "press": 50 - 4 * wear**2 + rng.normal(0, 0.2, seen),
                }
            )
        )
        final.append(life - seen)
    return pd.concat(rows, ignore_index=True), pd.DataFrame({"final_rul": final})


def _write_environment(root: Path) -> tuple[Path, Path]:
    shim = root / "project"
    conf = shim / "conf"
    (conf / ENV / "parameters").mkdir(parents=True)
    (conf / "local").mkdir()
    (conf / "base").symlink_to(PROJECT_ROOT / "conf" / "base", target_is_directory=True)
    (shim / "src").mkdir()
    (shim / "pyproject.toml").write_text((PROJECT_ROOT / "pyproject.toml").read_text())
    source = root / "source" / MACHINE
    source.mkdir(parents=True)
    train, _ = _units(16, 0, truncate=False)
    test, final = _units(8, 1, truncate=True)
    train.to_csv(source / "train.csv", index=False)
    test.to_csv(source / "test.csv", index=False)
    final.to_csv(source / "rul.csv", index=False)
    (conf / ENV / "parameters.yml").write_text(
        yaml.safe_dump(
            {
                "fleet": {"priority_machines": [MACHINE]},
                "labels": {"failure_horizon_hours": 10},
                "features": {"windows_hours": [3, 6, 12]},
                "regression": {"rul_cap_hours": 40, "xgboost": {"n_estimators": 40}},
            }
        )
    )
    machine = {
        "machine_id": MACHINE,
        "category": "turbofan",
        "manufacturer": "test",
        "model": "tiny",
        "rated_speed_rpm": 0,
        "sampling_interval_min": 60,
        "on_invalid": "fail",
        "source": {
            "type": "file",
            "files": {"train": "train", "test": "test", "test_final_rul": "rul"},
            "columns": {"time": "cycle", "time_kind": "cycle", "episode": "unit"},
            "cycle_minutes": 60,
            "run_to_failure": True,
            "rul_cap_hours": 40,
            "protocol": {
                "name": "last cycle of each test unit",
                "rul": "last_cycle",
                "anchors": {"regression": {"rmse": {"a published method": 7.5}}},
            },
            "split": {"method": "files", "val_fraction": 0.25, "seed": 1},
            "families": ["regression"],
        },
        "sensors": [
            {"name": "temp", "kind": "temperature", "unit": "K", "min": 0, "max": 500},
            {"name": "press", "kind": "pressure", "unit": "bar", "min": 0, "max": 500},
        ],
        "forecast_sensors": [],
    }
    (conf / ENV / "parameters" / f"{MACHINE}.yml").write_text(
        yaml.safe_dump({MACHINE: {"machine": machine}})
    )
    return shim, root / "source"


@pytest.mark.slow
def test_benchmark_runs_a_test_environment_by_name(tmp_path, monkeypatch):
    shim, source = _write_environment(tmp_path)
    for key, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    bench = _bench_module()
    out = tmp_path / "bench"
    result = bench.main(
        [
            "--env",
            ENV,
            "--data-root",
            str(out),
            "--project",
            str(shim),
            "--params",
            f"source_root={source}",
        ]
    )
    report = out / "08_reporting" / f"real_data_benchmark_{ENV}"
    saved = json.loads(report.with_suffix(".json").read_text())
    assert saved["environments"].keys() == {ENV} == result["environments"].keys()
    family = saved["environments"][ENV]["machines"][MACHINE]["families"]["regression"]
    # the headline is the declared protocol's: one row per test unit
    assert family["protocol"]["rul"] == "last_cycle" and family["n_rows"] == 8
    assert family["secondary"]["n_rows"] > 8
    assert family["anchors"] == {"rmse": {"a published method": 7.5}}
    metrics_doc = json.loads(
        (out / ENV / "08_reporting" / MACHINE / "regression" / "metrics.json").read_text()
    )
    rmse = {r["metric"]: r["value"] for r in metrics_doc["metrics"]}["rmse"]
    assert family["metrics"]["rmse"]["value"] == pytest.approx(rmse)
    markdown = report.with_suffix(".md").read_text()
    assert ENV in markdown and "a published method" in markdown
