"""The continuous-training loop on the shared small run (docs/continuous_training.md, run as
written): a production stream with a recalibrated sensor from day 12, then one cycle (score,
monitor, decide). No drift flag on the healthy days, the offset detected within 7 days, the
drift trigger fires, every batch's rows conserved, the decision appended to the JSONL log."""

from __future__ import annotations

import json

import pandas as pd
import pytest

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
    first = next(w for w in after if w["drift"]["flagged"])
    assert (pd.Timestamp(first["day"]) - change).days < DETECTION_DAYS
    assert stream["sensor"] in first["drift"]["drifted_sensors"]
    assert report["rows_conserved"]
    batches = sorted((data / "01_raw" / TEST_MACHINE / "incoming").glob("*.parquet"))
    assert sum(q["rows_in"] for q in (w["data_quality"] for w in report["windows"])) == sum(
        len(pd.read_parquet(b)) for b in batches
    )
    decision = json.loads(
        (data / "08_reporting" / "retraining_decisions.jsonl").read_text().splitlines()[-1]
    )
    assert decision["machine_id"] == TEST_MACHINE
    assert "drift" in {r["trigger"] for r in decision["reasons"]}
    assert decision["retrain"] and not decision["retrained"]
    assert (reporting / "monitoring.png").stat().st_size > 10_000
