"""Every metric against a case computed by hand, and the single-row rule against its definition."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.evaluation.classification_metrics import (
    best_f1_threshold,
    confusion_counts,
    pr_auc,
    ranking_metrics,
    threshold_metrics,
)
from pdm_kedro.evaluation.regression_metrics import nasa_scores, regression_metrics
from pdm_kedro.evaluation.threshold_rule import (
    apply_threshold_rule,
    f1_score_binary,
    fit_threshold_rule,
)
from pdm_kedro.pipelines.forecasting.nodes import forecast_errors

# 10 rows: 4 positives. Predictions: tp=3 (rows 0,1,2), fn=1 (row 3), fp=2 (rows 4,5), tn=4.
Y_TRUE = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
Y_PRED = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0])


def test_confusion_counts_by_hand():
    assert confusion_counts(Y_TRUE, Y_PRED) == {"tp": 3, "fp": 2, "fn": 1, "tn": 4}


def test_precision_recall_f1_by_hand():
    got = threshold_metrics(Y_TRUE, Y_PRED)
    # precision = tp / (tp + fp) = 3/5; recall = tp / (tp + fn) = 3/4; F1 = 6 / (6 + 2 + 1)
    assert got["precision"] == pytest.approx(0.6)
    assert got["recall"] == pytest.approx(0.75)
    assert got["f1"] == pytest.approx(2 / 3)
    assert set(got) == {"f1", "precision", "recall"}


def test_precision_recall_are_zero_when_undefined():
    assert threshold_metrics(np.zeros(4), np.zeros(4)) == {
        "f1": 0.0,
        "precision": 0.0,
        "recall": 0.0,
    }
    # no predicted positive: precision undefined -> 0; recall 0 of 2
    got = threshold_metrics(np.array([1, 1, 0]), np.array([0, 0, 0]))
    assert got == {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    # every prediction positive, no true positive among them
    got = threshold_metrics(np.array([0, 0, 1]), np.array([1, 1, 0]))
    assert got == {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    # one right alarm: precision 1/1, recall 1/2
    got = threshold_metrics(np.array([1, 1, 0]), np.array([1, 0, 0]))
    assert got == pytest.approx({"f1": 2 / 3, "precision": 1.0, "recall": 0.5})


def test_pr_auc_and_roc_auc_by_hand():
    # scores ranked: 0.9(+) 0.8(-) 0.7(+) 0.1(-)
    # AP = sum over positives of precision at its rank * 1/n_pos = (1/1 + 2/3) / 2
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    got = ranking_metrics(y, s)
    assert got["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    # ROC-AUC: pairs (pos, neg) ranked right: (0.9>0.8, 0.9>0.1, 0.7>0.1) = 3 of 4
    assert got["roc_auc"] == pytest.approx(0.75)


def test_ranking_metrics_nan_with_one_class():
    got = ranking_metrics(np.ones(3), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(got["pr_auc"]) and math.isnan(got["roc_auc"])
    got = ranking_metrics(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(got["pr_auc"]) and math.isnan(got["roc_auc"])
    assert math.isnan(pr_auc(np.zeros(3), np.array([0.1, 0.2, 0.3])))


def test_pr_auc_alone_is_the_ranking_metrics_pr_auc() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=200)
    s = rng.random(200) + 0.3 * y
    assert pr_auc(y, s) == ranking_metrics(y, s)["pr_auc"]


def test_best_f1_threshold_by_hand():
    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    # threshold 0.8 -> flags {0.8, 0.9}: tp 2, fp 0, fn 1 -> F1 0.8
    # threshold 0.3 -> flags 4 rows: tp 3, fp 1 -> F1 6/7 = 0.857 (best)
    got = best_f1_threshold(y, s)
    assert got["threshold"] == pytest.approx(0.3)
    assert got["f1"] == pytest.approx(6 / 7)
    # the F1 reported is the F1 of flagging score >= threshold
    assert got["f1"] == pytest.approx(threshold_metrics(y, s >= got["threshold"])["f1"])


def test_best_f1_threshold_respects_the_minimum_and_ties_go_high():
    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    got = best_f1_threshold(y, s, min_threshold=0.5)
    assert got["threshold"] == pytest.approx(0.8)
    assert got["f1"] == pytest.approx(0.8)
    # two thresholds give the same F1 (0.4 and 0.8 here: F1 2/3... pick the highest)
    y = np.array([1, 0, 1])
    s = np.array([0.2, 0.5, 0.9])
    # t=0.9: tp1 fn1 -> 2/3; t=0.5: tp1 fp1 fn1 -> 1/2; t=0.2: tp2 fp1 -> 4/5
    assert best_f1_threshold(y, s)["threshold"] == pytest.approx(0.2)
    y = np.array([1, 0, 1, 1])
    s = np.array([0.9, 0.5, 0.5, 0.1])
    # t=0.9: 2/4=0.5; t=0.5: tp2 fp1 fn1 -> 4/6; t=0.1: tp3 fp1 -> 6/7
    assert best_f1_threshold(y, s)["threshold"] == pytest.approx(0.1)
    y = np.array([1, 0, 0, 1])
    s = np.array([0.9, 0.6, 0.4, 0.2])
    # t=0.9: tp1 fn1 -> 2/3; t=0.6: tp1 fp1 fn1 -> 1/2; t=0.4: 2/5; t=0.2: tp2 fp2 -> 2/3 (tie)
    assert best_f1_threshold(y, s)["threshold"] == pytest.approx(0.9)


def test_best_f1_threshold_without_positives():
    got = best_f1_threshold(np.zeros(3), np.array([0.2, 0.7, 0.4]))
    assert got == {"threshold": 0.7, "f1": 0.0}
    got = best_f1_threshold(np.zeros(3), np.array([0.2, 0.7, 0.4]), min_threshold=0.9)
    assert got == {"threshold": 0.9, "f1": 0.0}
    got = best_f1_threshold(np.zeros(0), np.zeros(0))
    assert got == {"threshold": 0.5, "f1": 0.0}


def test_regression_metrics_by_hand():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    p = np.array([12.0, 18.0, 30.0, 50.0])  # errors +2, -2, 0, +10
    got = regression_metrics(y, p)
    assert got["rmse"] == pytest.approx(math.sqrt((4 + 4 + 0 + 100) / 4))
    assert got["mae"] == pytest.approx((2 + 2 + 0 + 10) / 4)
    # R2 = 1 - SSE / SST, SST about the mean 25: 225 + 25 + 25 + 225 = 500
    assert got["r2"] == pytest.approx(1 - 108 / 500)
    nasa = [math.exp(2 / 10) - 1, math.exp(2 / 13) - 1, 0.0, math.exp(10 / 10) - 1]
    assert got["nasa_score"] == pytest.approx(sum(nasa))
    assert got["nasa_score_mean"] == pytest.approx(sum(nasa) / 4)


def test_nasa_score_punishes_late_more_than_early():
    scores = nasa_scores(np.array([100.0, 100.0, 100.0]), np.array([90.0, 110.0, 100.0]))
    np.testing.assert_allclose(scores, [math.exp(10 / 13) - 1, math.exp(1.0) - 1, 0.0])
    assert scores[1] > scores[0]
    # one absurd prediction stays finite
    assert np.isfinite(nasa_scores(np.array([0.0]), np.array([1e9]))).all()
    assert np.isfinite(nasa_scores(np.array([1e9]), np.array([0.0]))).all()


def test_regression_metrics_edge_cases():
    constant = regression_metrics(np.array([5.0, 5.0]), np.array([4.0, 6.0]))
    assert math.isnan(constant["r2"]) and constant["rmse"] == pytest.approx(1.0)
    empty = regression_metrics(np.array([]), np.array([]))
    assert math.isnan(empty["rmse"]) and math.isnan(empty["mae"])
    assert math.isnan(empty["nasa_score_mean"]) and empty["nasa_score"] == 0.0


def test_forecast_errors_by_hand():
    a = np.array([100.0, 200.0, 0.5, 50.0])
    f = np.array([110.0, 180.0, 1.5, 50.0])  # |err| 10, 20, 1, 0
    got = forecast_errors(a, f, mase_scale=4.0, mape_min_abs=1.0)
    # MAPE skips |a| < 1 (row 2): mean(10/100, 20/200, 0/50) * 100
    assert got["mape"] == pytest.approx(100 * (0.1 + 0.1 + 0.0) / 3)
    # sMAPE: 200 * mean(|a-f| / (|a|+|f|)) over every pair
    assert got["smape"] == pytest.approx(200 * (10 / 210 + 20 / 380 + 1 / 2 + 0) / 4)
    assert got["mae"] == pytest.approx(31 / 4)
    assert got["mase"] == pytest.approx(31 / 4 / 4.0)


def test_forecast_errors_undefined_cases():
    got = forecast_errors(np.array([0.0, 0.0]), np.array([0.0, 0.0]), 1.0, 1.0)
    assert math.isnan(got["mape"]) and math.isnan(got["smape"]) and got["mae"] == 0.0
    # an actual exactly at the floor counts
    got = forecast_errors(np.array([1.0]), np.array([2.0]), 1.0, 1.0)
    assert got["mape"] == pytest.approx(100.0)
    got = forecast_errors(np.array([-4.0]), np.array([-2.0]), 1.0, 1.0)
    assert got["mape"] == pytest.approx(50.0)
    assert got["smape"] == pytest.approx(200 * 2 / 6)


def test_f1_score_binary_by_hand():
    assert f1_score_binary(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)
    assert f1_score_binary(np.zeros(3), np.zeros(3)) == 0.0
    assert f1_score_binary(np.array([1, 0]), np.array([0, 1])) == 0.0


def _rule_frame() -> pd.DataFrame:
    # label 1 exactly where a >= 7 ; b is noise; c is all NaN
    a = np.arange(10, dtype=float)
    return pd.DataFrame(
        {
            "a": a,
            "b": [5.0, 1.0, 4.0, 2.0, 3.0, 1.0, 5.0, 2.0, 4.0, 3.0],
            "c": np.nan,
            "y": (a >= 7).astype(int),
        }
    )


def test_threshold_rule_finds_the_separating_reading():
    frame = _rule_frame()
    rule = fit_threshold_rule(frame, ["c", "b", "a"], "y")
    assert rule["column"] == "a" and rule["direction"] == ">="
    assert rule["f1"] == pytest.approx(1.0)
    flags = apply_threshold_rule(frame, rule)
    np.testing.assert_array_equal(flags, frame["y"].to_numpy())
    assert flags.dtype == np.int8
    # the flags follow the rule's definition value >= threshold, row by row
    np.testing.assert_array_equal(flags, (frame["a"] >= rule["threshold"]).to_numpy())


def test_threshold_rule_low_direction():
    frame = _rule_frame()
    frame["y"] = (frame["a"] <= 2).astype(int)
    rule = fit_threshold_rule(frame, ["a"], "y")
    assert rule["direction"] == "<=" and rule["f1"] == pytest.approx(1.0)
    assert 2.0 <= rule["threshold"] < 3.0
    flags = apply_threshold_rule(frame, rule)
    np.testing.assert_array_equal(flags, (frame["a"] <= rule["threshold"]).astype(int).to_numpy())


def test_threshold_rule_without_a_usable_column_never_flags():
    frame = _rule_frame()
    rule = fit_threshold_rule(frame, ["c"], "y")
    assert rule == {"column": None, "direction": ">=", "threshold": float("inf"), "f1": 0.0}
    flags = apply_threshold_rule(frame, rule)
    assert flags.dtype == np.int8 and not flags.any() and len(flags) == len(frame)


def test_threshold_rule_nan_readings_never_flag():
    frame = _rule_frame()
    frame.loc[9, "a"] = np.nan
    rule = fit_threshold_rule(frame, ["a"], "y")
    assert apply_threshold_rule(frame, rule)[9] == 0
    rule_low = {"column": "a", "direction": "<=", "threshold": 100.0}
    assert apply_threshold_rule(frame, rule_low)[9] == 0
    assert apply_threshold_rule(frame, rule_low)[:9].all()


def test_threshold_rule_quantile_grid():
    # with 3 quantile levels (1 %, 50 %, 99 %) the median is the only level that separates
    frame = pd.DataFrame({"a": np.arange(11, dtype=float), "y": [0] * 5 + [1] * 6})
    rule = fit_threshold_rule(frame, ["a"], "y", quantiles=3)
    assert rule["threshold"] == pytest.approx(5.0) and rule["f1"] == pytest.approx(1.0)
    # a strictly better F1 is needed to replace the best so far: the first column wins ties
    frame["b"] = frame["a"]
    assert fit_threshold_rule(frame, ["b", "a"], "y", quantiles=3)["column"] == "b"


def test_threshold_rule_is_the_best_of_every_candidate_scored_one_by_one():
    """The counted F1 of every (threshold, direction) equals f1_score_binary on its flags, ties
    and missing readings included, and the rule is the first best in the order tried."""
    rng = np.random.default_rng(7)
    a = np.round(rng.normal(size=400), 1)  # many ties
    a[rng.random(400) < 0.15] = np.nan
    frame = pd.DataFrame({"a": a, "y": ((np.nan_to_num(a) > 0.4) ^ (rng.random(400) < 0.2))})
    frame["y"] = frame["y"].astype(int)
    y = frame["y"].to_numpy().astype(bool)
    best = (0.0, None, None)
    for threshold in np.unique(np.quantile(a[np.isfinite(a)], np.linspace(0.01, 0.99, 40))):
        for direction in (">=", "<="):
            flags = a >= threshold if direction == ">=" else a <= threshold
            f1 = f1_score_binary(y, flags)
            if f1 > best[0]:
                best = (f1, direction, float(threshold))
    rule = fit_threshold_rule(frame, ["a"], "y", quantiles=40)
    assert (rule["f1"], rule["direction"], rule["threshold"]) == best
    assert 0.0 < best[0] < 1.0


def test_precision_and_f1_when_counts_cancel():
    # tp == fp: precision 1/2 (a `tp - fp` guard would report 0)
    assert threshold_metrics(np.array([1, 0]), np.array([1, 1]))["precision"] == pytest.approx(0.5)
    # tp=1, fp=2, fn=1: F1 = 2 / (2 + 2 + 1)
    got = threshold_metrics(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 1]))
    assert got["f1"] == pytest.approx(0.4) and got["recall"] == pytest.approx(0.5)


def test_best_f1_threshold_when_the_top_score_is_a_negative():
    # at threshold 0.9 precision and recall are both 0 (F1 0, not NaN); 0.2 gives F1 2/3
    got = best_f1_threshold(np.array([1, 0]), np.array([0.2, 0.9]))
    assert got == {"threshold": pytest.approx(0.2), "f1": pytest.approx(2 / 3)}


def test_best_f1_threshold_with_precision_plus_recall_below_one():
    # descending: neg, pos, 6 x neg, pos. t at the first positive: P = R = 1/2 (sum 1), F1 1/2;
    # t at the last positive: P 2/9, R 1, F1 4/11. The first is best.
    y = np.array([0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    got = best_f1_threshold(y, s)
    assert got["threshold"] == pytest.approx(0.8) and got["f1"] == pytest.approx(0.5)


def test_minimum_threshold_is_inclusive():
    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    assert best_f1_threshold(y, s, min_threshold=0.3)["threshold"] == pytest.approx(0.3)


def test_nasa_score_sides_near_zero():
    # d = +0.5 is late: exp(0.05) - 1 > 0; d = -0.5 is early: exp(0.5/13) - 1
    got = nasa_scores(np.array([10.0, 10.0]), np.array([10.5, 9.5]))
    np.testing.assert_allclose(got, [math.expm1(0.05), math.expm1(0.5 / 13)])


def test_r2_with_a_small_total_variance():
    got = regression_metrics(np.array([0.0, 1.0]), np.array([0.25, 0.75]))
    # SST = 0.5, SSE = 0.125
    assert got["r2"] == pytest.approx(0.75)
    assert math.isnan(regression_metrics(np.array([]), np.array([]))["r2"])


def test_rule_flags_a_reading_exactly_at_the_threshold():
    frame = pd.DataFrame({"a": [6.0, 7.0, 8.0]})
    high = {"column": "a", "direction": ">=", "threshold": 7.0}
    low = {"column": "a", "direction": "<=", "threshold": 7.0}
    np.testing.assert_array_equal(apply_threshold_rule(frame, high), [0, 1, 1])
    np.testing.assert_array_equal(apply_threshold_rule(frame, low), [1, 1, 0])


def test_low_rule_fitted_at_a_reading_includes_it():
    # the median level lands on the reading 5.0; flagging a <= 5 is perfect only if inclusive
    frame = pd.DataFrame({"a": np.arange(11, dtype=float), "y": [1] * 6 + [0] * 5})
    rule = fit_threshold_rule(frame, ["a"], "y", quantiles=3)
    assert rule == {"column": "a", "direction": "<=", "threshold": 5.0, "f1": 1.0}


def test_best_f1_threshold_is_never_below_its_minimum():
    # every score is below the minimum: the old code returned the top score (0.4), below 0.5
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4])
    got = best_f1_threshold(y, s, min_threshold=0.5)
    assert got == {"threshold": 0.5, "f1": 0.0}
    rng = np.random.default_rng(7)
    for _ in range(200):
        y = rng.integers(0, 2, size=20)
        s = rng.random(20)
        minimum = float(rng.random())
        got = best_f1_threshold(y, s, min_threshold=minimum)
        assert got["threshold"] >= minimum
        assert got["f1"] == pytest.approx(threshold_metrics(y, s >= got["threshold"])["f1"])
