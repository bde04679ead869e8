"""The worked examples on the real data sets in ../shared/datasets (skipped where absent, failed
under ``CI=true``: ``@pytest.mark.requires``).

The documented ``kedro run -e cmapss`` / ``-e skab`` run as written in a project shim placed so that
its ``../shared`` is the project's; nothing is written into the project.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from pdm_kedro import contract as c
from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipelines.data_ingestion.nodes import (
    derive_labels,
    split_source_readings,
    standardise_source_files,
)
from pdm_kedro.pipelines.data_validation.nodes import validate_readings
from tests.conftest import PROJECT_ROOT, SHARED_DATASETS
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import isolated_env, kedro_executable, make_project_shim

CMAPSS = SHARED_DATASETS / "cmapss"
SKAB = SHARED_DATASETS / "skab"
needs_cmapss = pytest.mark.requires("cmapss")
needs_skab = pytest.mark.requires("skab")
# docs/bring_your_own_data.md, "5. The worked examples"
TELEMETRY_OFF = "export KEDRO_DISABLE_TELEMETRY=1"
CMAPSS_RUN = "kedro run -e cmapss"
SKAB_RUN = "kedro run -e skab"
VALIDATION = load_project_parameters()["validation"]


def _env_params(env: str, machine_id: str) -> tuple[dict, dict]:
    machine = yaml.safe_load(
        (PROJECT_ROOT / "conf" / env / "parameters" / f"{machine_id}.yml").read_text()
    )
    fleet = yaml.safe_load((PROJECT_ROOT / "conf" / env / "parameters.yml").read_text())
    return machine[machine_id]["machine"], fleet


def _ingest(files, machine, labels, splits=None):
    readings, final_rul, _ = standardise_source_files(files, machine, VALIDATION)
    labelled = derive_labels(readings, final_rul, machine, labels)
    return split_source_readings(labelled, machine, splits or {})


@needs_cmapss
def test_cmapss_fd001_follows_the_standard_protocol_and_the_contract():
    machine, fleet = _env_params("cmapss", "cmapss_fd001")
    files = {
        name: pd.read_csv(CMAPSS / f"{name}.txt", sep=r"\s+", header=None)
        for name in ("train_FD001", "test_FD001", "RUL_FD001")
    }
    train, val, test = _ingest(files, machine, fleet["labels"])
    assert train[c.EPISODE].nunique() == 80 and val[c.EPISODE].nunique() == 20
    assert test[c.EPISODE].nunique() == 100 and len(train) + len(val) == 20631
    assert train[c.RUL].max() == 125 and train.groupby(c.EPISODE)[c.RUL].min().eq(0).all()
    last = test.sort_values(c.TIMESTAMP).groupby(c.EPISODE).tail(1).sort_values(c.EPISODE)
    truth = np.minimum(files["RUL_FD001"][0].to_numpy(), 125)
    np.testing.assert_array_equal(last[c.RUL].to_numpy(), truth)
    for split, frame in zip(c.SPLITS, (train, val, test), strict=True):
        report = validate_readings(frame, machine, VALIDATION, split)[2]
        assert report["rows_quarantined"] == 0


@needs_skab
def test_skab_valve1_fits_on_the_first_400_rows_of_each_file():
    machine, _ = _env_params("skab", "skab_valve1")
    files = {
        f"valve1/{path.stem}": pd.read_csv(path, sep=";")
        for path in (SKAB / "data" / "valve1").glob("*.csv")
    }
    files["anomaly-free/anomaly-free"] = pd.read_csv(
        SKAB / "data" / "anomaly-free" / "anomaly-free.csv", sep=";"
    )
    train, val, test = _ingest(files, machine, {"failure_horizon_hours": 1})
    assert train.groupby(c.EPISODE).size().eq(400).all() and train[c.EPISODE].nunique() == 16
    assert len(val) == 9405 and (val[c.ANOMALY] == 0).all()
    assert 0.5 < test[c.ANOMALY].mean() < 0.6  # ~54 % anomalous, as the leaderboard says
    for split, frame in zip(c.SPLITS, (train, val, test), strict=True):
        assert validate_readings(frame, machine, VALIDATION, split)[2]["rows_quarantined"] == 0


def _shim_beside_shared(root):
    """A project shim whose ``../shared`` is the real one, as the environments expect."""
    shim = make_project_shim(root)
    (root / "shared").symlink_to(SHARED_DATASETS.parent, target_is_directory=True)
    return shim


@needs_cmapss
@needs_skab
@pytest.mark.slow
def test_worked_examples_run_as_written(tmp_path):
    shim = _shim_beside_shared(tmp_path)
    run_documented(
        TELEMETRY_OFF, CMAPSS_RUN, SKAB_RUN, cwd=shim, env=isolated_env(tmp_path), timeout=1500
    )
    data = tmp_path / "data"
    assert sorted(p.name for p in (data / "01_raw").iterdir()) == ["cmapss_fd001", "skab_valve1"]
    cmapss = json.loads((data / "08_reporting" / "cmapss_fd001" / "source_report.json").read_text())
    assert cmapss["labels"]["rul"] == "derived"
    assert cmapss["families"]["anomaly"] == {
        "trained": False,
        "supported": False,
        "why": "no anomaly labels to choose a threshold and score",
    }
    regression = json.loads(
        (data / "08_reporting" / "cmapss_fd001" / "regression" / "metrics.json").read_text()
    )
    assert {row["metric"] for row in regression["metrics"]} >= {"rmse", "mae"}
    assert not (data / "08_reporting" / "cmapss_fd001" / "anomaly").exists()
    skab = json.loads((data / "08_reporting" / "skab_valve1" / "source_report.json").read_text())
    assert skab["families"]["anomaly"]["trained"] is True
    assert (data / "08_reporting" / "skab_valve1" / "anomaly" / "metrics.json").is_file()
    assert (data / "08_reporting" / "skab_valve1" / "model_card.md").is_file()


@needs_skab
@pytest.mark.slow
def test_skab_dir_override_reads_the_files_from_there(tmp_path):
    """``--params skab_dir=...`` (the docs' "point at your copy") reaches the source dataset."""
    copy = tmp_path / "my_skab"
    for part in ("valve1", "anomaly-free"):
        shutil.copytree(SKAB / "data" / part, copy / "data" / part)
    (copy / "data" / "valve1" / "15.csv").unlink()  # one file fewer than the shared copy
    shim = make_project_shim(tmp_path)  # no ../shared beside it: only the override can work
    result = subprocess.run(
        [kedro_executable(), "run", "-e", "skab", "--pipelines", "data_ingestion",
         "--params", f"skab_dir={copy}"],
        cwd=shim, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(
        (tmp_path / "data" / "08_reporting" / "skab_valve1" / "source_report.json").read_text()
    )
    files = json.dumps(report)
    assert "valve1/14" in files and "valve1/15" not in files


CMAPSS_FD002 = CMAPSS / "train_FD002.txt"


@needs_cmapss
def test_cmapss_fd002_derives_six_conditions_on_train_and_scales_per_condition():
    assert CMAPSS_FD002.is_file(), f"C-MAPSS FD002 not found in {CMAPSS}"
    from pdm_kedro.pipelines.data_ingestion.nodes import (
        fit_operating_conditions,
        label_operating_conditions,
    )
    from pdm_kedro.pipelines.feature_engineering.nodes import fit_sensor_baselines

    machine, fleet = _env_params("cmapss_fd002", "cmapss_fd002")
    files = {
        name: pd.read_csv(CMAPSS / f"{name}.txt", sep=r"\s+", header=None)
        for name in ("train_FD002", "test_FD002", "RUL_FD002")
    }
    train, val, test = _ingest(files, machine, fleet["labels"])
    conditions = fit_operating_conditions(train, machine)
    assert conditions["fitted_on"] == {"split": "train", "rows": len(train)}
    counts = conditions["clustering"]["train_rows_per_condition"]
    assert len(counts) == 6 and min(counts.values()) > 0.1 * len(train)
    labelled = {
        n: label_operating_conditions(f, conditions)
        for n, f in (("train", train), ("val", val), ("test", test))
    }
    assert set(labelled["test"][c.REGIME]) == set(counts)
    baselines = fit_sensor_baselines(
        labelled["train"],
        machine,
        {"windows_hours": [5, 10], "statistics": ["mean"], "robust_scale_floor": 1e-6},
    )
    # every condition's scaled train readings are centred: the regime no longer shows
    assert set(baselines["condition_scaling"]["per_condition"]) >= set(counts)
    assert test[c.EPISODE].nunique() == 259
