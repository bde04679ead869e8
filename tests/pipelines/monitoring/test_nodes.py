"""Monitoring nodes on tiny frames: data quality conserves rows (a day sent twice included),
regime adjustment, the retraining triggers with their reasons."""

from __future__ import annotations

import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.pipelines.monitoring.nodes import data_quality, decide_retraining, regime_adjusted

RETRAINING = {
    "max_age_days": 7,
    "performance_drop": 0.10,
    "drift_consecutive_windows": 3,
    "min_new_labelled_rows": 1000,
}


def day_rows(day: str, n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            c.TIMESTAMP: pd.date_range(day, periods=n, freq="6h"),
            c.EPISODE: 1,
            c.REGIME: "nominal",
            "s": [1.0, None, 3.0, 4.0][:n],
        }
    )


def test_a_day_sent_twice_counts_its_duplicates_as_quarantined_not_scored_twice():
    first, second = day_rows("2025-04-10"), day_rows("2025-04-11")
    batches = {"2025-04-10": first, "2025-04-11": second, "2025-04-10-resent": first}
    scored = {"2025-04-10": first, "2025-04-11": second}  # scoring keeps one copy
    quarantine = first.assign(quarantine_reason="timestamp_unique_within_episode")
    quality = data_quality(batches, scored, quarantine, ["s"])
    assert quality["2025-04-10"]["files"] == ["2025-04-10", "2025-04-10-resent"]
    assert quality["2025-04-10"]["rows_in"] == 8
    assert quality["2025-04-10"]["rows_scored"] + quality["2025-04-10"]["rows_quarantined"] == 8
    assert all(q["rows_conserved"] for q in quality.values())
    assert quality["2025-04-11"]["missing_rate"] == {"s": 0.25}
    lost = data_quality(batches, {"2025-04-10": first.iloc[:2]}, quarantine, ["s"])
    assert not lost["2025-04-10"]["rows_conserved"] and not lost["2025-04-11"]["rows_conserved"]


def test_regime_adjustment_removes_the_regime_median_and_falls_back_for_a_new_regime():
    medians = pd.DataFrame({"s": [10.0, 20.0, 15.0]}, index=["low", "peak", "__all__"])
    frame = pd.DataFrame(
        {c.TIMESTAMP: pd.date_range("2025-01-01", periods=3, freq="h"),
         c.REGIME: ["low", "peak", "unseen"], "s": [11.0, 21.0, 16.0]}
    )  # fmt: skip
    assert regime_adjusted(frame, medians, ["s"])["s"].tolist() == [1.0, 1.0, 1.0]


def report(flags: list[bool], labelled: int = 0, f1: float | None = None, age: float = 1.0):
    windows = [
        {"day": f"2025-04-{10 + i:02d}", "drift": {"flagged": f, "drifted_sensors": ["s"] if f else []},
         "performance": {"classification": None if f1 is None else {"f1": f1}, "regression": None}}
        for i, f in enumerate(flags)
    ]  # fmt: skip
    return {
        "machine_id": "m",
        "champion": {"age_days": age, "test": {"classification": {"f1": 0.8}, "regression": {"rmse": 30.0}}},
        "labelled_rows_total": labelled,
        "windows": windows,
    }  # fmt: skip


def triggers(decision: dict) -> set[str]:
    return {r["trigger"] for r in decision["reasons"]}


def test_each_trigger_fires_on_its_own_condition_and_not_otherwise():
    quiet = decide_retraining(report([False, True, True, False, True, True]), RETRAINING)
    assert not quiet["retrain"] and quiet["reasons"] == []
    assert triggers(decide_retraining(report([False, True, True, True]), RETRAINING)) == {"drift"}
    assert triggers(decide_retraining(report([False], f1=0.70), RETRAINING)) == {"performance"}
    assert triggers(decide_retraining(report([False], f1=0.75), RETRAINING)) == set()
    assert triggers(decide_retraining(report([False], age=8.0), RETRAINING)) == {"age"}
    assert triggers(decide_retraining(report([False], labelled=1000), RETRAINING)) == {"data"}
    manual = decide_retraining(report([False]), RETRAINING, manual=True)
    assert triggers(manual) == {"manual"} and manual["retrain"]
