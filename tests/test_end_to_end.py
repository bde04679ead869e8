"""The products of one real ``kedro run`` (the session's ``small_run``), checked by value.

The shared run (``tests/conftest.py::small_run``: the default pipeline on the small config for two
machines, in a project shim, own data root and MLflow store) is read through its files, the edge
runtime's command line and the MLflow registry: every report and plot the user guide lists, the
fleet table, the model cards, the ONNX bundle answering the documented edge commands in a
separate process (all four answers compared with the pipeline's own test predictions and
backtest), and the registered models. Other runs here are the ones that differ: a corrupted raw
file, the ParallelRunner, an unknown machine.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.contract import SPLITS
from pdm_kedro.evaluation.explain import explain_rows
from pdm_kedro.families import LOWER_IS_BETTER
from tests.conftest import TEST_MACHINE
from tests.docs.doc_commands import documented_blocks
from tests.docs.documented import RAN, normalise, run_documented
from tests.docs.kedro_cli import isolated_env, make_project_shim, run_kedro
from tests.session_share import record_ran

pytestmark = pytest.mark.slow

FAMILIES = ("anomaly", "classification", "forecasting", "regression")
# the user guide's "Read the reports" table, per machine under 08_reporting/<machine>/
PLOTS = {
    "classification": ("pr_curve.png", "confusion_matrix.png"),
    "regression": ("rul_predicted_vs_true.png",),
    "anomaly": ("score_distribution.png",),
    "forecasting": ("forecast_vs_actual.png",),
}
REPORT_FILES = (
    "model_card.md",
    "validation_report.json",
    "label_difficulty.json",
    "classification/feature_importance.csv",
    "regression/feature_importance.csv",
    *(f"{family}/metrics.json" for family in FAMILIES),
    *(f"edge/{family}_parity.json" for family in FAMILIES),
)
SMALL_ROWS = 4000  # conf/small simulation.rows_per_machine

# docs/edge_deployment.md, "Command line"
EDGE_INFO = f"python -m pdm_kedro.edge info --bundle data/06_models --machine {TEST_MACHINE}"
EDGE_PREDICT = (
    f"python -m pdm_kedro.edge predict --bundle data/06_models --machine {TEST_MACHINE} "
    "--readings recent.csv"
)
EDGE_PREDICT_EPISODE = (
    f"python -m pdm_kedro.edge predict --bundle data/06_models/{TEST_MACHINE}/edge "
    "--readings episode.csv --all-rows --from-episode-start"
)
EDGE_PREDICT_EXPLAIN = f"{EDGE_PREDICT} --explain 3"  # docs/explanations.md, "Edge command line"
LABELS = ("episode_id", "rul", "failure_within_horizon", "anomaly")


def reporting(small_run, machine: str = TEST_MACHINE):
    return small_run["data"] / "08_reporting" / machine


def metrics_doc(small_run, family: str, machine: str = TEST_MACHINE) -> dict:
    return json.loads((reporting(small_run, machine) / family / "metrics.json").read_text())


def test_metric(doc: dict, name: str) -> dict:
    return next(row for row in doc["metrics"] if row["metric"] == name)


test_metric.__test__ = False  # a helper, not a test


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# ---------------------------------------------------------------------------------------------
# Reports, plots, the fleet table and the model cards


def test_every_report_and_plot_the_user_guide_lists_is_written(small_run):
    for machine in small_run["machines"]:
        folder = reporting(small_run, machine)
        missing = [name for name in REPORT_FILES if not (folder / name).is_file()]
        assert not missing, f"{machine}: {missing}"
        for name in REPORT_FILES:
            if name.endswith(".json"):
                assert json.loads((folder / name).read_text()), name
        for family, plots in PLOTS.items():
            for plot in plots:
                width, height = png_size(folder / family / plot)
                assert width >= 300 and height >= 200, (machine, family, plot)
                assert (folder / family / plot).stat().st_size > 10_000  # drawn, not blank


def test_validation_report_accounts_for_every_row(small_run):
    for machine in small_run["machines"]:
        report = json.loads((reporting(small_run, machine) / "validation_report.json").read_text())
        assert report["rows_in"] == report["rows_valid"] + report["rows_quarantined"] == SMALL_ROWS
        inter = small_run["data"] / "02_intermediate" / machine
        for split in SPLITS:
            valid = pd.read_parquet(inter / f"validated_{split}.parquet")
            quarantine = pd.read_parquet(inter / f"quarantine_{split}.parquet")
            raw = pd.read_parquet(small_run["data"] / "01_raw" / machine / f"{split}.parquet")
            counts = report["splits"][split]
            assert (counts["rows_valid"], counts["rows_quarantined"]) == (
                len(valid),
                len(quarantine),
            )
            assert counts["rows_in"] == len(raw) == len(valid) + len(quarantine)


def test_fleet_metrics_hold_every_test_metric_of_every_machine_and_family(small_run):
    fleet = pd.read_csv(small_run["data"] / "08_reporting" / "fleet_metrics.csv")
    assert list(fleet.columns) == [
        "machine_id", "family", "metric", "value", "baseline",
        "ceiling", "beats_baseline", "value_lo", "value_hi",
    ]  # fmt: skip
    events = fleet[fleet["machine_id"] == "fleet"]  # the fleet-wide event rows (issue 10)
    assert set(events["metric"]) >= {"warned_24h_fraction", "false_alarms_per_1000h"}
    fleet = fleet[fleet["machine_id"] != "fleet"]
    assert set(fleet["machine_id"]) == set(small_run["machines"])
    expected = {}
    for machine in small_run["machines"]:
        for family in FAMILIES:
            for row in metrics_doc(small_run, family, machine)["metrics"]:
                expected[(machine, family, row["metric"])] = (row["value"], row["baseline"])
    got = {(r.machine_id, r.family, r.metric): (r.value, r.baseline) for r in fleet.itertuples()}
    assert got.keys() == expected.keys()
    for key, (value, baseline) in expected.items():
        assert got[key] == pytest.approx((value, baseline), rel=1e-12), key
    assert np.isfinite(fleet["value"]).all() and np.isfinite(fleet["baseline"]).all()
    assert (fleet["beats_baseline"].astype(bool) == [
        (v < b) if m.split("[")[0] in LOWER_IS_BETTER else (v > b)
        for m, v, b in zip(fleet["metric"], fleet["value"], fleet["baseline"], strict=True)
    ]).all()  # fmt: skip


def test_classification_metrics_follow_from_the_test_predictions(small_run):
    doc = metrics_doc(small_run, "classification")
    pred = pd.read_parquet(
        small_run["data"]
        / "07_model_output"
        / TEST_MACHINE
        / "classification"
        / "test_predictions.parquet"
    )
    # the alarm is the threshold rule on the probability, the threshold the one reported
    np.testing.assert_array_equal(
        pred["alarm"], (pred["probability"] >= doc["threshold"]).astype(int)
    )
    y, alarm = pred["failure_within_horizon"].to_numpy(), pred["alarm"].to_numpy()
    tp, fp = int(((alarm == 1) & (y == 1)).sum()), int(((alarm == 1) & (y == 0)).sum())
    fn, tn = int(((alarm == 0) & (y == 1)).sum()), int(((alarm == 0) & (y == 0)).sum())
    assert doc["confusion_matrix"] == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    assert doc["n_rows"] == len(pred) == tp + fp + fn + tn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    assert test_metric(doc, "precision")["value"] == pytest.approx(precision)
    assert test_metric(doc, "recall")["value"] == pytest.approx(recall)
    assert test_metric(doc, "f1")["value"] == pytest.approx(f1)
    assert doc["positive_rate"] == pytest.approx(y.mean())


def test_regression_metrics_follow_from_the_test_predictions(small_run):
    doc = metrics_doc(small_run, "regression")
    pred = pd.read_parquet(
        small_run["data"]
        / "07_model_output"
        / TEST_MACHINE
        / "regression"
        / "test_predictions.parquet"
    )
    err = pred["rul_predicted"] - pred["rul_capped"]
    assert test_metric(doc, "rmse")["value"] == pytest.approx(math.sqrt((err**2).mean()))
    assert test_metric(doc, "mae")["value"] == pytest.approx(err.abs().mean())
    base = pred["rul_baseline"] - pred["rul_capped"]
    assert test_metric(doc, "rmse")["baseline"] == pytest.approx(math.sqrt((base**2).mean()))
    cap = doc["model"]["rul_cap_hours"]
    raw = pd.read_parquet(small_run["data"] / "01_raw" / TEST_MACHINE / "test.parquet")
    np.testing.assert_allclose(pred["rul_capped"], np.minimum(raw["rul"], cap))  # capped target
    assert pred["rul_predicted"].between(0, cap).all()


def test_anomaly_flags_and_metrics_follow_from_the_scores(small_run):
    doc = metrics_doc(small_run, "anomaly")
    scores = pd.read_parquet(
        small_run["data"] / "07_model_output" / TEST_MACHINE / "anomaly" / "test_scores.parquet"
    )
    np.testing.assert_array_equal(scores["flag"], (scores["score"] >= doc["threshold"]).astype(int))
    y, flag = scores["anomaly"].to_numpy(), scores["flag"].to_numpy()
    tp = int(((flag == 1) & (y == 1)).sum())
    precision = tp / max(int(flag.sum()), 1)
    recall = tp / int(y.sum())
    assert test_metric(doc, "precision")["value"] == pytest.approx(precision)
    assert test_metric(doc, "recall")["value"] == pytest.approx(recall)
    false_alarms = int(((flag == 1) & (y == 0)).sum()) / int((y == 0).sum())
    assert test_metric(doc, "false_alarm_rate")["value"] == pytest.approx(false_alarms)


def test_forecasting_metrics_follow_from_the_backtest(small_run):
    doc = metrics_doc(small_run, "forecasting")
    backtest = pd.read_parquet(
        small_run["data"]
        / "07_model_output"
        / TEST_MACHINE
        / "forecasting"
        / "backtest_test.parquet"
    )
    for sensor, all_rows in backtest.groupby("sensor"):
        rows = all_rows[np.isfinite(all_rows["actual"]) & np.isfinite(all_rows["forecast"])]
        a, f = rows["actual"].to_numpy(), rows["forecast"].to_numpy()
        smape = 200.0 * np.mean(np.abs(a - f) / (np.abs(a) + np.abs(f)))
        assert test_metric(doc, f"smape[{sensor}]")["value"] == pytest.approx(smape), sensor
        # the baseline: the better of naive and seasonal naive on this sensor
        references = {}
        for name in ("naive", "seasonal_naive"):
            ref = rows[name].to_numpy()
            references[name] = 200.0 * np.mean(np.abs(a - ref) / (np.abs(a) + np.abs(ref)))
        assert test_metric(doc, f"smape[{sensor}]")["baseline"] == pytest.approx(
            min(references.values())
        )
        assert (rows["lower"] <= rows["forecast"]).all() and (
            rows["forecast"] <= rows["upper"]
        ).all()


def test_fitted_objects_come_from_the_training_split(small_run):
    raw = small_run["data"] / "01_raw" / TEST_MACHINE
    baselines = json.loads(
        (small_run["data"] / "06_models" / TEST_MACHINE / "sensor_baselines.json").read_text()
    )
    assert baselines["fitted_on"] == {
        "split": "train",
        "rows": len(pd.read_parquet(raw / "train.parquet")),
    }
    train = pd.read_parquet(raw / "train.parquet")
    manifest = json.loads(
        (small_run["data"] / "06_models" / TEST_MACHINE / "edge" / "manifest.json").read_text()
    )
    for sensor in manifest["sensors"]:  # the medians the edge scales with are the train medians
        assert sensor["median"] == pytest.approx(float(train[sensor["name"]].median()), rel=1e-9)


def _card_number(text: str) -> float:
    return float(text.strip("*"))


def test_model_card_shows_every_test_metric_beside_its_baseline_and_says_where_it_loses(small_run):
    for machine in small_run["machines"]:
        card = (reporting(small_run, machine) / "model_card.md").read_text()
        assert card.startswith(f"# Model card: {machine}")
        rows = {
            (family, metric): (model, baseline, beats.strip("*"))
            # family | metric | model | 90 % interval | baseline | baseline name | beats | ceiling
            for family, metric, model, _, baseline, _, beats, _ in re.findall(
                r"^\| (\w+) \| (\S+) \| (\S+) \| ([^|]*?) ?\| (\S+) \| (\w+) \| (\S+) \|"
                r" ?([^|]*?) ?\|$",
                card,
                re.MULTILINE,
            )
        }
        losers: dict[str, list[str]] = {}
        for family in FAMILIES:
            doc = metrics_doc(small_run, family, machine)
            if doc.get("threshold") is not None:
                assert f"Decision threshold: {doc['threshold']:.4g}" in card, family
            for row in doc["metrics"]:
                model, baseline, beats = rows[(family, row["metric"])]
                assert _card_number(model) == pytest.approx(row["value"], rel=1e-3)
                assert _card_number(baseline) == pytest.approx(row["baseline"], rel=1e-3)
                lower = row["metric"].split("[")[0] in LOWER_IS_BETTER
                better = row["value"] < row["baseline"] if lower else row["value"] > row["baseline"]
                assert beats == ("yes" if better else "no"), (machine, family, row["metric"])
                if not better:
                    losers.setdefault(family, []).append(row["metric"])
        for family, metrics in losers.items():
            line = f"- {family}: does not beat its baseline on {', '.join(metrics)} (test)."
            assert line in card, (machine, line)


# ---------------------------------------------------------------------------------------------
# The ONNX bundle, answered by the edge runtime in a separate process (docs/edge_deployment.md)


@pytest.fixture(scope="module")
def edge_inputs(small_run) -> dict:
    """recent.csv and episode.csv in the run's project folder, from one validated test episode."""
    shim = small_run["shim"]
    test = pd.read_parquet(
        small_run["data"] / "02_intermediate" / TEST_MACHINE / "validated_test.parquet"
    ).sort_values(["episode_id", "timestamp"])
    episode_id = test["episode_id"].iloc[0]
    episode = test[test["episode_id"] == episode_id].reset_index(drop=True)
    readings = episode.drop(columns=[c for c in LABELS if c in episode.columns])
    readings.to_csv(shim / "episode.csv", index=False)
    # "recent": the readings up to one of the forecasting backtest's origins (a day boundary)
    origin = episode["timestamp"].dt.floor("D").iloc[-1]
    recent = readings[readings["timestamp"] < origin]
    recent.to_csv(shim / "recent.csv", index=False)
    return {"episode": episode, "recent_rows": len(recent), "origin": origin}


def predictions(small_run, family: str, name: str) -> pd.DataFrame:
    folder = small_run["data"] / "07_model_output" / TEST_MACHINE / family
    return pd.read_parquet(folder / name)


def test_edge_info_describes_the_bundle(small_run):
    result = run_documented(EDGE_INFO, cwd=small_run["shim"], env=small_run["env"], timeout=120)
    info = json.loads(result.stdout)
    manifest = json.loads(
        (small_run["data"] / "06_models" / TEST_MACHINE / "edge" / "manifest.json").read_text()
    )
    assert info["machine_id"] == TEST_MACHINE
    sensors = [f"{s['name']} [{s['unit']}]" for s in manifest["sensors"]]
    assert info["columns"] == ["timestamp", "regime", *sensors]
    assert set(info["models"]) == set(FAMILIES)
    assert info["min_history_rows"] == manifest["inputs"]["min_history_rows"]


def test_edge_answers_every_row_of_an_episode_as_the_pipeline_did(small_run, edge_inputs):
    result = run_documented(
        EDGE_PREDICT_EPISODE, cwd=small_run["shim"], env=small_run["env"], timeout=120
    )
    answer = json.loads(result.stdout)
    episode = edge_inputs["episode"]
    assert answer["rows"] == len(episode) and answer["warnings"] == []
    keys = ["timestamp"]

    def aligned(frame: pd.DataFrame) -> pd.DataFrame:
        return episode[keys].merge(frame, on=keys, how="left", validate="one_to_one")

    clf = aligned(predictions(small_run, "classification", "test_predictions.parquet"))
    np.testing.assert_allclose(answer["failure"]["probability"], clf["probability"], atol=1e-4)
    np.testing.assert_array_equal(answer["failure"]["decision"], clf["alarm"].astype(bool))
    reg = aligned(predictions(small_run, "regression", "test_predictions.parquet"))
    cap = answer["rul_hours"]["cap_hours"]
    np.testing.assert_allclose(
        answer["rul_hours"]["model_value"], reg["rul_predicted"], atol=1e-4 + 2e-6 * cap
    )
    # the answer respects the alarm (at most cap_at_alarm_hours) as the pipeline's rul_answer
    np.testing.assert_allclose(
        answer["rul_hours"]["value"], reg["rul_answer"], atol=1e-4 + 2e-6 * cap
    )
    np.testing.assert_array_equal(answer["rul_hours"]["capped_by_alarm"], reg["capped_by_alarm"])
    ano = aligned(predictions(small_run, "anomaly", "test_scores.parquet"))
    np.testing.assert_allclose(answer["anomaly"]["score"], ano["score"], atol=1e-5)
    np.testing.assert_array_equal(answer["anomaly"]["flag"], ano["flag"].astype(bool))


def test_edge_answers_the_last_reading_with_all_four_answers(small_run, edge_inputs):
    result = run_documented(EDGE_PREDICT, cwd=small_run["shim"], env=small_run["env"], timeout=120)
    answer = json.loads(result.stdout)
    episode = edge_inputs["episode"]
    last = episode.iloc[edge_inputs["recent_rows"] - 1]
    assert answer["timestamp"] == last["timestamp"].isoformat()
    # enough history (>= min_history_rows): the last row's features equal training's
    clf = predictions(small_run, "classification", "test_predictions.parquet")
    row = clf[clf["timestamp"] == last["timestamp"]].iloc[0]
    assert answer["failure"]["probability"] == pytest.approx(row["probability"], abs=1e-4)
    assert answer["failure"]["decision"] == bool(
        answer["failure"]["probability"] >= answer["failure"]["threshold"]
    )
    reg = predictions(small_run, "regression", "test_predictions.parquet")
    at = reg["timestamp"] == last["timestamp"]
    rul, answered = reg.loc[at, "rul_predicted"].iloc[0], reg.loc[at, "rul_answer"].iloc[0]
    assert answer["rul_hours"]["model_value"] == pytest.approx(rul, abs=2e-3)
    assert answer["rul_hours"]["value"] == pytest.approx(answered, abs=2e-3)
    ano = predictions(small_run, "anomaly", "test_scores.parquet")
    score = ano.loc[ano["timestamp"] == last["timestamp"], "score"].iloc[0]
    assert answer["anomaly"]["score"] == pytest.approx(score, abs=1e-5)
    assert answer["anomaly"]["flag"] == bool(score >= answer["anomaly"]["threshold"])
    # the forecast equals the pipeline's backtest from the same origin
    forecast = answer["forecast"]
    assert pd.Timestamp(forecast["origin"]) == edge_inputs["origin"]
    backtest = predictions(small_run, "forecasting", "backtest_test.parquet")
    at_origin = backtest[backtest["timestamp"].dt.floor("h").eq(backtest["timestamp"])]
    at_origin = at_origin[
        at_origin["timestamp"] - pd.to_timedelta(at_origin["step"] - 1, "h")
        == edge_inputs["origin"]
    ]
    assert set(forecast["sensors"]) == set(at_origin["sensor"]) and forecast["sensors"]
    for sensor, values in forecast["sensors"].items():
        expected = at_origin[at_origin["sensor"] == sensor].sort_values("step")
        assert len(values["forecast"]) == len(expected) == len(forecast["hours"]) == 24
        for key in ("forecast", "lower", "upper"):
            np.testing.assert_allclose(values[key], expected[key], rtol=1e-3, err_msg=sensor)


def test_edge_explains_the_last_reading_as_xgboost_does(small_run, edge_inputs, machine):
    result = run_documented(
        EDGE_PREDICT_EXPLAIN, cwd=small_run["shim"], env=small_run["env"], timeout=120
    )
    answer = json.loads(result.stdout)
    explanation = answer["explanation"]
    last = edge_inputs["episode"].iloc[edge_inputs["recent_rows"] - 1]
    table = pd.read_parquet(
        small_run["data"] / "04_feature" / TEST_MACHINE / "features_test.parquet"
    )
    row = table[
        (table["episode_id"] == last["episode_id"]) & (table["timestamp"] == last["timestamp"])
    ]
    for family, key in (("classification", "failure"), ("regression", "rul_hours")):
        folder = small_run["data"] / "06_models" / TEST_MACHINE / family / "model.pkl"
        with sorted(folder.glob("*/model.pkl"))[-1].open("rb") as handle:
            model = pickle.load(handle)  # noqa: S301 (the run's own artefact)
        want = explain_rows(model, row, machine, 3)[0]
        got = explanation[key]
        assert [f["feature"] for f in got["top_factors"]] == [
            f["feature"] for f in want["top_factors"]
        ]
        assert got["raw_prediction"] == pytest.approx(want["raw_prediction"], abs=1e-3)
    assert explanation["diagnosis"]["modes"][0]["action"]
    assert len(explanation["anomaly"]["top_factors"]) == 3


def test_edge_runtime_rejects_bad_readings_with_exit_code_2(small_run, tmp_path):
    bad = pd.read_csv(small_run["shim"] / "recent.csv").rename(columns={"current": "curent"})
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = subprocess.run(
        [sys.executable, "-m", "pdm_kedro.edge", "predict", "--bundle", "data/06_models",
         "--machine", TEST_MACHINE, "--readings", str(path)],
        cwd=small_run["shim"], env=small_run["env"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert "curent" in result.stderr and "Traceback" not in result.stderr


def test_docs_python_blocks_run(small_run, edge_inputs):
    """Every unmarked ``python`` block of the docs runs as written in the run's project folder."""
    blocks = [b for b in documented_blocks() if b.language == "python" and b.not_run_reason is None]
    assert blocks, "no python block in the docs"
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block.text],
            cwd=small_run["shim"], env=small_run["env"], capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"{block.path}:{block.line}\n{result.stderr[-3000:]}"
        RAN.add(normalise(block.text))
        record_ran([normalise(block.text)])


# ---------------------------------------------------------------------------------------------
# MLflow: the run's metrics and the registered models


def test_mlflow_run_logs_every_fleet_metric_and_registers_every_family(small_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=small_run["mlflow_uri"])
    experiment = client.get_experiment_by_name("pdm_kedro")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    logged = runs[0].data.metrics
    fleet = pd.read_csv(small_run["data"] / "08_reporting" / "fleet_metrics.csv")
    for row in fleet[fleet["machine_id"] != "fleet"].itertuples():  # fleet rows: no machine run
        name = f"{row.machine_id}.{row.family}.{row.metric.replace('[', '.').rstrip(']')}"
        assert logged[name] == pytest.approx(row.value, rel=1e-9), name
    for machine in small_run["machines"]:
        for family in FAMILIES:
            name = f"{machine}-{family}"
            champion = client.get_model_version_by_alias(name, "champion")
            assert str(champion.version) == "1" and champion.run_id == runs[0].info.run_id, name
            assert champion.tags["test_fingerprint"] and champion.tags["score_name"], name


def test_registered_champions_predict_what_the_run_reported(small_run):
    import mlflow

    mlflow.set_tracking_uri(small_run["mlflow_uri"])
    features = pd.read_parquet(
        small_run["data"] / "04_feature" / TEST_MACHINE / "features_test.parquet"
    )
    checks = {
        "classification": ("test_predictions.parquet", "probability", 1e-6),
        "regression": ("test_predictions.parquet", "rul_predicted", 1e-4),
        "anomaly": ("test_scores.parquet", "score", 1e-6),
    }
    for family, (name, column, atol) in checks.items():
        model = mlflow.pyfunc.load_model(f"models:/{TEST_MACHINE}-{family}@champion")
        got = np.asarray(model.predict(features), dtype=float)
        expected = predictions(small_run, family, name)[column].to_numpy()
        if family == "regression":
            got = np.clip(got, 0, metrics_doc(small_run, "regression")["model"]["rul_cap_hours"])
        np.testing.assert_allclose(got, expected, atol=atol, err_msg=family)


# ---------------------------------------------------------------------------------------------
# Runs that differ from the shared one


def test_bad_raw_file_stops_the_run_naming_machine_split_and_column(small_run, small_run_copy):
    """A corrupted raw split on disk (as if a user dropped in a bad file) fails validation clearly."""
    path = small_run_copy["data"] / "01_raw" / TEST_MACHINE / "val.parquet"
    pd.read_parquet(path).drop(columns=["bearing_temperature"]).to_parquet(path)
    command = f"kedro run -e small --pipelines data_validation --namespaces {TEST_MACHINE}"
    result = subprocess.run(
        [sys.executable, "-m", "kedro", *command.split()[1:]],
        cwd=small_run_copy["shim"], env=small_run_copy["env"], capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "DataValidationError" in output
    assert TEST_MACHINE in output and "'bearing_temperature'" in output and "val" in output
    shared = pd.read_parquet(small_run["data"] / "01_raw" / TEST_MACHINE / "val.parquet")
    assert "bearing_temperature" in shared.columns  # the shared run's files are untouched


def test_parallel_runner_on_two_machines(tmp_path):
    shim, env = make_project_shim(tmp_path), isolated_env(tmp_path)
    machines = f"{TEST_MACHINE},pump_grundfos_cr3_004"
    run_kedro(
        f"kedro run -e small --pipelines data_generation,data_validation,feature_engineering "
        f"--namespaces {machines} --runner ParallelRunner",
        cwd=shim, env=env, timeout=600,
    )  # fmt: skip
    for machine in machines.split(","):
        features = pd.read_parquet(
            tmp_path / "data" / "04_feature" / machine / "features_test.parquet"
        )
        raw = pd.read_parquet(tmp_path / "data" / "01_raw" / machine / "test.parquet")
        assert len(features) == len(raw) > 0


def test_unknown_machine_namespace_fails_with_its_name(tmp_path):
    shim, env = make_project_shim(tmp_path), isolated_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--namespaces", "pump_does_not_exist_999"],
        cwd=shim, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "pump_does_not_exist_999" in result.stdout + result.stderr
