"""The continuous-training loop on the shared small run (docs/continuous_training.md, run as
written): a production stream with a recalibrated sensor from day 12, then one cycle (score,
monitor, decide). No drift flag on the healthy days, the offset detected within 7 days, the
drift trigger fires, every batch's rows conserved, the decision appended to the JSONL log. Then
a day arrives twice: the next cycle quarantines its rows, scores nothing twice, recomputes no
window."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipelines.monitoring.nodes import performance_verdict
from tests.conftest import TEST_MACHINE
from tests.docs.documented import run_documented

STREAM = (
    "kedro run -e small --pipelines production_stream --namespaces motor_siemens_1la7_001 "
    "--params production_stream.days=24,production_stream.scenario=sensor_offset,"
    "production_stream.start_day=12"
)
CYCLE = "pdm-kedro cycle -e small --machines motor_siemens_1la7_001"
DETECTION_DAYS = 7


@pytest.mark.slow
def test_a_recalibrated_sensor_is_detected_and_the_healthy_days_raise_no_alarm(small_run_copy):
    shim, env, data = small_run_copy["shim"], small_run_copy["env"], small_run_copy["data"]
    run_documented(STREAM, CYCLE, cwd=shim, env=env, timeout=600)
    reporting = data / "08_reporting" / TEST_MACHINE
    stream = json.loads((reporting / "production_stream.json").read_text())
    report = json.loads((reporting / "monitoring.json").read_text())
    change = pd.Timestamp(stream["change_day"])
    windows = [w for w in report["windows"] if w["complete"]]
    before = [w for w in windows if pd.Timestamp(w["window"][1]) < change]
    after = [w for w in windows if pd.Timestamp(w["window"][1]) >= change]
    assert before and after
    assert not any(w["drift"]["flagged"] for w in before)  # healthy autocorrelated days: quiet
    test = report["champion"]["test"]
    drop = float(load_project_parameters(env="small")["retraining"]["performance_drop"])
    healthy = [w for w in report["windows"] if pd.Timestamp(w["day"]) < change]
    assert not any(  # nor does the performance trigger on the healthy days
        (v := performance_verdict(f, w["performance"].get(f), test, drop)) and v["worse"]
        for w in healthy
        for f in ("classification", "regression")
    )
    first = next(w for w in after if w["drift"]["flagged"])
    assert (pd.Timestamp(first["day"]) - change).days < DETECTION_DAYS
    # the offset moves the sensor's features first (monitoring.min_drifted_features), then the
    # recalibrated sensor itself drifts, within the same bound
    by_sensor = next(w for w in after if w["drift"]["drifted_sensors"])
    assert (pd.Timestamp(by_sensor["day"]) - change).days < DETECTION_DAYS
    assert by_sensor["drift"]["drifted_sensors"] == [stream["sensor"]]
    assert report["rows_conserved"]
    incoming = data / "01_raw" / TEST_MACHINE / "incoming"
    batches = sorted(incoming.glob("*.parquet"))
    assert sum(b["rows_in"] for b in report["batches"]) == sum(
        len(pd.read_parquet(b)) for b in batches
    )
    decision = json.loads(
        (data / "08_reporting" / "retraining_decisions.jsonl").read_text().splitlines()[-1]
    )
    assert decision["machine_id"] == TEST_MACHINE
    assert "drift" in {r["trigger"] for r in decision["reasons"]}
    assert decision["retrain"] and not decision["retrained"]
    assert (reporting / "monitoring.png").stat().st_size > 10_000

    # the next cycle: one day arrives twice (under another name) and nothing else is new
    shutil.copy(batches[-3], incoming / f"{batches[-3].stem}-resent.parquet")
    log_before = {
        p.name: p.stat().st_mtime_ns
        for p in (data / "07_model_output" / TEST_MACHINE / "predictions").iterdir()
    }
    run_documented(CYCLE, cwd=shim, env=env, timeout=600)
    again = json.loads((reporting / "monitoring.json").read_text())
    resent = next(b for b in again["batches"] if b["file"].endswith("-resent.parquet"))
    assert resent["rows_in"] == resent["rows_quarantined"] == len(pd.read_parquet(batches[-3]))
    assert resent["rows_scored"] == 0 and "already received" in resent["reasons"][0]
    assert again["windows_computed"] == 0 and again["windows"] == report["windows"]
    log_after = {
        p.name: p.stat().st_mtime_ns
        for p in (data / "07_model_output" / TEST_MACHINE / "predictions").iterdir()
    }
    assert log_after == log_before  # nothing scored twice, no partition rewritten
