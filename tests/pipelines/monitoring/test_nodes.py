"""Monitoring nodes on tiny frames: data quality from the scoring accounts,
regime adjustment, the retraining triggers with their reasons, the performance trigger's
minimum rows and positives and its comparison beyond the uncertainty of both figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.core.drift import DriftReference
from pdm_kedro.pipelines.monitoring.nodes import (
    PREDICTIONS,
    _calibrated,
    _performance,
    count_labelled_after,
    data_quality,
    data_until,
    decide_retraining,
    performance_verdict,
    regime_adjusted,
    served_metrics,
    window_flag,
    with_attainable_quorum,
    with_model_rul,
)

RETRAINING = {
    "max_age_days": 7,
    "performance_drop": 0.10,
    "drift_consecutive_windows": 3,
    "min_new_labelled_rows": 1000,
}


def test_data_quality_lists_per_day_the_accounts_of_the_files_that_brought_its_rows():
    accounts = {
        "2025-04-10": {"file": "2025-04-10.parquet", "rows_in": 4, "rows_scored": 4,
                       "rows_quarantined": 0, "rows_conserved": True, "days": {"2025-04-10": [1]}},
        "2025-04-10-resent": {"file": "2025-04-10-resent.parquet", "rows_in": 4,
                              "rows_scored": 0, "rows_quarantined": 4, "rows_conserved": True,
                              "days": {}},
        "2025-04-11": {"file": "2025-04-11.parquet", "rows_in": 6, "rows_scored": 5,
                       "rows_quarantined": 1, "rows_conserved": True,
                       "days": {"2025-04-11": [1], "2025-04-12": [2]}},
    }  # fmt: skip
    quality = data_quality(accounts)
    assert [q["file"] for q in quality["2025-04-10"]] == ["2025-04-10.parquet"]
    assert [q["file"] for q in quality["2025-04-12"]] == ["2025-04-11.parquet"]
    assert "days" not in quality["2025-04-11"][0]


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


def test_the_data_trigger_counts_only_labels_newer_than_the_last_training_data():
    # after a retraining on production data the labels it used are not new any more
    after = decide_retraining(
        report([False], labelled=1500) | {"labelled_rows_new": 200}, RETRAINING
    )
    assert triggers(after) == set()
    labels = {
        day: pd.DataFrame({c.TIMESTAMP: pd.date_range(day, periods=24, freq="h")})
        for day in ("2025-04-01", "2025-04-02", "2025-04-03")
    }
    train = pd.DataFrame({c.TIMESTAMP: pd.to_datetime(["2025-03-01 00:00", "2025-04-01 23:00"])})
    test = pd.DataFrame({c.TIMESTAMP: pd.to_datetime(["2025-04-02 11:00"])})
    until = data_until(train, test, pd.DataFrame())
    assert until == pd.Timestamp("2025-04-02 11:00")
    assert count_labelled_after(labels, until) == 12 + 24
    assert count_labelled_after({k: (lambda v=v: v) for k, v in labels.items()}, None) == 72


def test_the_champion_figures_are_the_served_bundles_not_the_last_runs():
    last_run = {"metrics": [{"metric": "f1", "value": 0.2}]}  # a kept challenger's
    manifest = {
        "models": {"classification": {"metrics": {"test": [{"metric": "f1", "value": 0.9}]}}}
    }
    assert served_metrics(manifest, "classification", last_run)["metrics"][0]["value"] == 0.9
    assert served_metrics(manifest, "regression", last_run) is last_run  # none in the manifest


MONITORING = {
    "min_labelled_rows": 48,
    "min_positives": 24,
    "bootstrap": {"resamples": 200, "confidence": 0.9, "seed": 11},
}
TEST = {
    "classification": {"f1": 0.52, "f1_interval": [0.456, 0.609]},
    "regression": {"rmse": 32.5, "rmse_interval": [23.1, 42.2]},
}


def labelled_window(days: int, positives_per_day: int, hit_rate: float, rul_error: float):
    """Hourly rows over ``days`` days, ``positives_per_day`` failure-horizon rows a day, the
    model catching about ``hit_rate`` of them (seeded), its RUL off by about ``rul_error`` h."""
    rng = np.random.default_rng(0)
    stamps = pd.date_range("2025-04-01", periods=days * 24, freq="h")
    truth = np.tile(np.arange(24) >= 24 - positives_per_day, days)
    decision = truth & (rng.random(len(stamps)) < hit_rate)
    rul = np.tile(np.arange(24, 0, -1) * 5.0, days)
    log = with_model_rul(pd.DataFrame(
        {c.TIMESTAMP: stamps, c.EPISODE: 1, "history_complete": True,
         "failure.decision": decision, "rul_hours.value": rul + rng.normal(0, rul_error, len(rul))}
    ))  # fmt: skip
    labels = pd.DataFrame(
        {c.TIMESTAMP: stamps, c.EPISODE: 1, c.FAILURE_WITHIN_HORIZON: truth.astype(int), c.RUL: rul}
    )
    return log, labels


def test_realised_performance_needs_enough_rows_and_positives_and_carries_a_seeded_interval():
    log, labels = labelled_window(days=1, positives_per_day=12, hit_rate=0.9, rul_error=5.0)
    assert _performance(log, labels, 1000.0, MONITORING)["classification"] is None  # 24 rows
    log, labels = labelled_window(days=4, positives_per_day=4, hit_rate=0.9, rul_error=5.0)
    few = _performance(log, labels, 1000.0, MONITORING)  # 96 rows, 16 positives
    assert few["positives"] == 16 and few["classification"] is None
    assert few["regression"]["rmse"] > 0
    log, labels = labelled_window(days=10, positives_per_day=6, hit_rate=0.9, rul_error=5.0)
    enough = _performance(log, labels, 1000.0, MONITORING)
    cls, reg = enough["classification"], enough["regression"]
    assert cls["positives"] == 60
    assert cls["f1_interval"][0] <= cls["f1"] <= cls["f1_interval"][1] < 1.0 + 1e-12
    assert reg["rmse_interval"][0] <= reg["rmse"] <= reg["rmse_interval"][1]
    assert _performance(log, labels, 1000.0, MONITORING) == enough  # seeded


def test_the_performance_trigger_stays_quiet_within_the_uncertainty():
    # healthy: the realised F1 above the test figure, RMSE inside the test interval
    healthy = {"f1": 0.62, "f1_interval": [0.45, 0.75]}
    assert not performance_verdict("classification", healthy, TEST, 0.10)["worse"]
    # point estimate more than 10 % below test, but the realised interval reaches the test's
    noisy = {"f1": 0.40, "f1_interval": [0.25, 0.50]}
    assert not performance_verdict("classification", noisy, TEST, 0.10)["worse"]
    rmse = {"rmse": 40.0, "mae": 30.0, "rmse_interval": [30.0, 50.0]}
    assert not performance_verdict("regression", rmse, TEST, 0.10)["worse"]
    # too few labelled positives: no F1, no verdict
    assert performance_verdict("classification", None, TEST, 0.1) is None


def test_the_performance_trigger_fires_beyond_the_uncertainty():
    bad = {"f1": 0.25, "f1_interval": [0.15, 0.35]}  # 0.35 < 0.456 * 0.9
    verdict = performance_verdict("classification", bad, TEST, 0.10)
    assert verdict["worse"] and verdict["limit"] == pytest.approx(0.456 * 0.9)
    slow = {"rmse": 80.0, "mae": 70.0, "rmse_interval": [60.0, 95.0]}  # 60 > 42.2 * 1.1
    assert performance_verdict("regression", slow, TEST, 0.10)["worse"]
    decision = decide_retraining(
        {"machine_id": "m", "labelled_rows_total": 500,
         "champion": {"age_days": 1.0, "test": TEST},
         "windows": [{"day": "2025-04-10", "performance": {"classification": bad, "regression": slow}}]},
        RETRAINING | {"min_new_labelled_rows": 10_000},
    )  # fmt: skip
    assert [(r["trigger"], r["family"]) for r in decision["reasons"]] == [
        ("performance", "classification"),
        ("performance", "regression"),
    ]


def test_a_stored_drift_calibration_is_reused_with_the_same_thresholds():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"s": rng.normal(size=400), "t": rng.gamma(2.0, size=400)})
    options = {"bins": 10, "step_fraction": 0.25, "max_chunks": 20, "quantile": 0.95,
               "margin": 1.5}  # fmt: skip
    made: dict = {}
    first = _calibrated("sensors", reference, ["s", "t"], 50, options, {}, made)
    assert list(made) and made[next(iter(made))]["thresholds"].keys() == {"s", "t"}
    again: dict = {}
    second = _calibrated("sensors", reference, ["s", "t"], 50, options, made, again)
    assert again == {} and second.thresholds == first.thresholds
    other: dict = {}  # another reference (a new champion): calibrated anew
    _calibrated("sensors", reference * 2.0, ["s", "t"], 50, options, made, other)
    assert list(other) and set(other).isdisjoint(made)


def test_one_missed_failure_is_not_enough_evidence_for_the_performance_trigger():
    """compressor_atlas_copco_ga30_001 on `none` (base config, 60 days): the window's only
    failure was missed, F1 0 with a day-block interval of [0, 0], and the trigger fired; a
    champion with test F1 0.62 misses some failures. One failure is one event: with
    ``performance_min_failures.classification`` 2 the window is not judged; two missed
    failures are."""
    log, labels = labelled_window(days=14, positives_per_day=7, hit_rate=0.0, rul_error=5.0)
    one = _performance(log, labels, 1000.0, MONITORING)
    assert one["failures"] == 1 and one["classification"]["failures"] == 1
    assert one["classification"]["f1"] == 0.0 and one["classification"]["f1_interval"] == [0, 0]
    assert performance_verdict("classification", one["classification"], TEST, 0.1)["worse"]
    assert performance_verdict("classification", one["classification"], TEST, 0.1, 2) is None
    rules = RETRAINING | {"performance_min_failures": {"classification": 2, "regression": 1}}
    quiet = {"machine_id": "m", "labelled_rows_total": 0, "champion": {"age_days": 1.0, "test": TEST},
             "windows": [{"day": "2025-04-14", "performance": one}]}  # fmt: skip
    assert decide_retraining(quiet, rules)["reasons"] == []
    assert triggers(decide_retraining(quiet, RETRAINING)) == {"performance"}  # default 1
    # two failures in the window, both missed: judged, and worse
    second = labels.assign(**{c.EPISODE: np.where(np.arange(len(labels)) >= 7 * 24, 2, 1)})
    two = _performance(log.assign(**{c.EPISODE: second[c.EPISODE]}), second, 1000.0, MONITORING)
    assert two["failures"] == 2
    fired = decide_retraining(
        quiet | {"windows": [{"day": "2025-04-14", "performance": two}]}, rules
    )
    assert [(r["trigger"], r["family"]) for r in fired["reasons"]] == [
        ("performance", "classification")
    ]


def test_a_statistic_that_cannot_reach_its_threshold_does_not_block_the_quorum():
    """compressor_ingersoll_rand_2545_009 (base config): the sensor's level wanders between
    episodes, so healthy reference chunks already reach KS 0.77 and the KS threshold (x 1.5)
    is 1.16, above KS's maximum of 1; PSI's likewise above its ceiling. A 20-sd offset then
    exceeded Wasserstein only and, with a quorum of 3, was never flagged."""
    rng = np.random.default_rng(5)
    wandering = np.concatenate([3.0 * k + rng.normal(size=100) for k in range(10)])
    reference = pd.DataFrame({"s": wandering})
    ref = DriftReference(reference, ["s"], 50, quantile=0.95, margin=1.5)
    assert ref.thresholds["s"]["ks"] >= 1.0  # blind: KS is at most 1
    offset = pd.DataFrame({"s": wandering[-50:] + 40.0})  # far beyond the reference's range
    strict = ref.check(offset, 3)["s"]
    assert "wasserstein" in strict["above"] and not strict["drifted"]
    fixed = with_attainable_quorum(ref, ref.check(offset, 3), len(offset), 3)["s"]
    assert "ks" in fixed["blind"] and fixed["quorum"] == 3 - len(fixed["blind"])
    assert fixed["drifted"]
    # healthy chunks of the same reference stay unflagged
    for start in (0, 300, 600, 900):
        healthy = pd.DataFrame({"s": wandering[start : start + 50]})
        checked = with_attainable_quorum(ref, ref.check(healthy, 3), 50, 3)["s"]
        assert not checked["drifted"], (start, checked)
    # a reference whose thresholds are all reachable keeps the full quorum
    calm = DriftReference(
        pd.DataFrame({"s": rng.normal(size=1000)}), ["s"], 50, quantile=0.95, margin=1.5
    )
    window = pd.DataFrame({"s": rng.normal(size=50)})
    assert with_attainable_quorum(calm, calm.check(window, 3), 50, 3)["s"]["quorum"] == 3


def test_a_window_is_flagged_by_a_drifted_sensor_or_enough_drifted_features():
    features = [f"f{i}" for i in range(6)]
    assert window_flag(["s1"], [], 6) == {"flagged": True, "flagged_by_features": False}
    assert window_flag([], features[:5], 6) == {"flagged": False, "flagged_by_features": False}
    assert window_flag([], features, 6) == {"flagged": True, "flagged_by_features": True}
    assert window_flag([], features, None)["flagged"] is False  # sensors only


def test_monitoring_judges_the_rul_model_not_the_capped_answer():
    """The served RUL is capped while the failure alarm is on; drift and realised performance
    compare the RUL model's own value (``rul_hours.model_value``) with its test predictions and
    figures. A log written before that column existed served the model's value."""
    new = pd.DataFrame({"rul_hours.value": [48.0, 30.0], "rul_hours.model_value": [120.0, 30.0]})
    old = pd.DataFrame({"rul_hours.value": [200.0]})
    both = with_model_rul(pd.concat([old, new], ignore_index=True))
    assert both["rul_hours.model_value"].tolist() == [200.0, 120.0, 30.0]
    assert both["rul_hours.value"].tolist() == [200.0, 48.0, 30.0]
    assert PREDICTIONS["regression"] == ("rul_hours.model_value", "rul_predicted")
    no_rul = pd.DataFrame({"failure.decision": [True]})
    assert with_model_rul(no_rul) is no_rul
