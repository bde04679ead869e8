"""Reporting nodes: the fleet table and the model card."""

import pandas as pd
import pytest

from pdm_kedro.pipelines.reporting.nodes import (
    FLEET_COLUMNS,
    _model_section,
    beats_baseline,
    build_fleet_metrics,
    write_model_card,
)


def family_doc(machine_id: str, family: str, rows: list[tuple]) -> dict:
    return {
        "machine_id": machine_id,
        "family": family,
        "split": "test",
        "n_rows": 10,
        "metrics": [
            {"metric": m, "value": v, "baseline": b, "baseline_name": "rule"} for m, v, b in rows
        ],
        "model": {"max_depth": 3},
        "threshold": 0.4,
        "plots": ["pr_curve.png"],
    }


def test_fleet_metrics_has_one_row_per_machine_family_metric():
    docs = [
        family_doc("m2", "regression", [("rmse", 10.0, 20.0), ("r2", 0.8, None)]),
        family_doc("m1", "classification", [("f1", 0.7, 0.4)]),
    ]
    table = build_fleet_metrics(*docs)
    assert list(table.columns) == FLEET_COLUMNS
    assert len(table) == 3
    first = table.iloc[0].to_dict()
    assert {k: first[k] for k in ("machine_id", "family", "metric", "value", "baseline")} == {
        "machine_id": "m1", "family": "classification", "metric": "f1", "value": 0.7,
        "baseline": 0.4,
    }  # fmt: skip
    assert first["beats_baseline"] is True or first["beats_baseline"] == True  # noqa: E712
    assert all(pd.isna(first[k]) for k in ("ceiling", "value_lo", "value_hi"))
    r2 = table[table["metric"] == "r2"]
    assert pd.isna(r2["baseline"]).all() and r2["beats_baseline"].isna().all()
    assert bool(table.loc[table["metric"] == "rmse", "beats_baseline"].iloc[0])


def test_fleet_metrics_carry_ceiling_interval_and_fleet_rows():
    doc = family_doc("m1", "classification", [("f1", 0.7, 0.4)])
    doc["metrics"][0].update(ceiling=0.9, value_lo=0.6, value_hi=0.8)
    doc["metrics"].append(
        {"metric": "warned_24h_fraction", "value": 0.5, "baseline": 0.25, "machine_id": "fleet"}
    )
    table = build_fleet_metrics(doc).set_index("metric")
    assert table.loc["f1", ["ceiling", "value_lo", "value_hi"]].tolist() == [0.9, 0.6, 0.8]
    assert table.loc["warned_24h_fraction", "machine_id"] == "fleet"


def test_fleet_metrics_of_no_family_is_an_empty_table():
    assert list(build_fleet_metrics().columns) == FLEET_COLUMNS


def test_beats_baseline_knows_which_metrics_are_lower_is_better():
    assert beats_baseline("f1", 0.8, 0.4) is True
    assert beats_baseline("rmse", 30.0, 20.0) is False
    assert beats_baseline("mape", 5.0, 9.0) is True
    assert beats_baseline("f1", None, 0.4) is None
    assert beats_baseline("false_alarm_rate", 0.001, 0.01) is True
    # the RUL as answered (capped while the failure alarm is on): lower is better, as for rmse
    assert beats_baseline("answer_rmse", 30.0, 20.0) is False
    assert beats_baseline("answer_mae_last_100h", 30.0, 40.0) is True
    assert beats_baseline("answer_r2", 0.6, 0.0) is True


def test_model_card_says_what_the_answer_rows_are(machine, tiny_baselines):
    reporting = {
        "retrain_command": "kedro run --namespaces {machine_id}",
        "mlflow_ui_command": "ui",
    }
    doc = family_doc(machine["machine_id"], "regression", [("rmse", 10.0, 20.0)])
    plain = write_model_card(machine, reporting, tiny_baselines, doc)
    assert "`answer_*`" not in plain
    doc["metrics"].append(
        {"metric": "answer_rmse", "value": 9.0, "baseline": 20.0, "baseline_name": "rule"}
    )
    doc["answer"] = {"cap_at_alarm_hours": 48.0, "rows_capped": 7}
    card = write_model_card(machine, reporting, tiny_baselines, doc)
    assert "at most 48 h while the failure classifier alarms (7 test rows capped)" in card
    assert "| regression | answer_rmse | 9 |  | 20 | rule | yes |  |" in card


def test_model_card_lists_metrics_baselines_plots_and_retraining(machine, tiny_baselines):
    reporting = {
        "retrain_command": "kedro run --namespaces {machine_id}",
        "mlflow_ui_command": "ui",
    }
    docs = [
        family_doc(machine["machine_id"], "classification", [("f1", 0.3, 0.4)]),
        family_doc(machine["machine_id"], "regression", [("rmse", 10.0, 20.0)]),
    ]
    card = write_model_card(machine, reporting, tiny_baselines, *docs)
    assert card.startswith(f"# Model card: {machine['machine_id']}")
    for heading in ("## Machine and data", "## Models", "## Test metrics vs baseline",
                    "## Limitations", "## How to retrain"):  # fmt: skip
        assert heading in card
    assert "| classification | f1 | 0.3 |  | 0.4 | rule | **no** |  |" in card
    assert "| regression | rmse | 10 |  | 20 | rule | yes |  |" in card
    assert "[pr_curve.png](classification/pr_curve.png)" in card
    assert "classification: does not beat its baseline on f1" in card
    assert f"kedro run --namespaces {machine['machine_id']}" in card
    assert f"`{machine['machine_id']}-<family>`" in card


def test_model_card_without_any_family_says_so(machine, tiny_baselines):
    card = write_model_card(machine, {"retrain_command": "x", "mlflow_ui_command": "y"},
                            tiny_baselines)  # fmt: skip
    assert "No model family has reported metrics" in card


def test_per_sensor_metric_names_keep_their_direction():
    assert beats_baseline("mape[winding_temperature]", 5.0, 9.0) is True
    assert beats_baseline("mase[winding_temperature]", 1.2, 1.0) is False


def test_tracked_metric_names_are_valid_for_mlflow():
    from pdm_kedro.evaluation.tracking import tracking_metrics

    doc = {"metrics": [{"metric": "mape[winding_temperature]", "value": 3.0, "baseline": 4.0}]}
    assert tracking_metrics(doc) == {
        "mape.winding_temperature": {"value": 3.0, "step": 0},
        "baseline_mape.winding_temperature": {"value": 4.0, "step": 0},
    }


def test_every_family_logs_its_own_metrics_under_the_same_names():
    from pdm_kedro.evaluation.tracking import tracking_metrics

    doc = family_doc("m1", "forecasting", [("mape[temp]", 5.0, 6.0), ("mase[temp]", None, 1.0)])
    assert tracking_metrics(doc) == {  # the catalog prefixes <machine>.<family>.
        "mape.temp": {"value": 5.0, "step": 0},
        "baseline_mape.temp": {"value": 6.0, "step": 0},
        "baseline_mase.temp": {"value": 1.0, "step": 0},
    }


def test_fleet_event_rows_pool_every_machines_test_episodes():
    def doc(machine_id, model_eps, rule_eps):
        out = family_doc(machine_id, "classification", [("f1", 0.7, 0.4)])
        out["events"] = {
            "bootstrap": {"resamples": 50, "seed": 1, "level": 0.9},
            "model": {"episodes": model_eps},
            "baseline": {"episodes": rule_eps},
        }
        return out

    def ep(warned, lead, false_alarms, hours=500.0):
        return {"failure": True, "warned": warned, "lead_time_h": lead,
                "false_alarms": false_alarms, "hours": hours}  # fmt: skip

    table = build_fleet_metrics(
        doc("m1", [ep(True, 40.0, 0), ep(False, 5.0, 1)], [ep(False, 0.0, 3)] * 2),
        doc("m2", [ep(True, 30.0, 0)], [ep(True, 30.0, 2)]),
    )
    fleet = table[table["machine_id"] == "fleet"].set_index("metric")
    assert fleet.loc["warned_24h_fraction", "value"] == pytest.approx(2 / 3)
    assert fleet.loc["warned_24h_fraction", "baseline"] == pytest.approx(1 / 3)
    assert fleet.loc["false_alarms_per_1000h", "value"] == pytest.approx(1000 / 1500)
    assert fleet.loc["median_lead_time_h", "value"] == 30.0
    assert bool(fleet.loc["false_alarms_per_1000h", "beats_baseline"])
    assert (fleet["value_lo"] <= fleet["value_hi"]).all()


def test_model_card_lists_a_null_setting_as_null() -> None:
    """XGBoost's ``n_jobs: null`` (the process's thread budget) reads as in metrics.json, not as a
    nested setting to look up there."""
    lines = _model_section(
        {"family": "classification", "model": {"max_depth": 3, "n_jobs": None, "grid": [1, 2]}}
    )
    assert "`max_depth` = 3, `n_jobs` = null" in lines
    assert "More settings in `classification/metrics.json`: grid." in lines
