"""The one promotion rule (pure): margin on the headline metric, no guard regression, new data."""

from __future__ import annotations

import pandas as pd
import pytest

from pdm_kedro.promotion import decide, evaluation_overlap, score_both

PROMOTION = {"margin": {"classification": 0.02, "regression": 1.0}, "guard_tolerance": 0.0}


def package(version: str | None, trained_until: str = "2025-01-31T00:00:00") -> dict:
    return {
        "machine_id": "m1",
        "registered_model": "m1-classification",
        "registry_version": version,
        "trained_until": trained_until,
    }


def scores(new: dict, old: dict | None) -> dict:
    return {"challenger": new, "champion": old, "evaluation": {"from": "2025-02-01T00:00:00"}}


CHAMP = {"f1": 0.60, "false_alarm_rate": 0.02, "brier": 0.10}


def test_first_version_becomes_champion():
    decision = decide("classification", package("1"), None, scores(CHAMP, None), PROMOTION)
    assert decision["promote"] and decision["decision"] == "promote"
    assert decision["champion_version"] is None and decision["challenger_version"] == "1"


@pytest.mark.parametrize(
    ("new", "promote", "reason"),
    [
        ({**CHAMP, "f1": 0.55}, False, "does not exceed the margin"),  # worse
        ({**CHAMP, "f1": 0.61}, False, "does not exceed the margin"),  # better, within margin
        ({**CHAMP, "f1": 0.70, "false_alarm_rate": 0.03}, False, "guard false_alarm_rate"),
        ({**CHAMP, "f1": 0.70, "brier": 0.12}, False, "guard brier"),  # calibration regresses
        ({**CHAMP, "f1": 0.70}, True, "beats champion"),
        ({**CHAMP, "f1": 0.70, "false_alarm_rate": 0.01}, True, "beats champion"),
    ],
)
def test_promotes_only_a_clear_win_without_guard_regression(new, promote, reason):
    decision = decide("classification", package("2"), package("1"), scores(new, CHAMP), PROMOTION)
    assert decision["promote"] is promote
    assert reason in decision["reason"]
    assert decision["champion_metrics"] == CHAMP and decision["challenger_metrics"] == new
    assert decision["margin"] == 0.02 and decision["time"]


def test_lower_is_better_headline():
    old = {"rmse": 40.0, "nasa_score_mean": 5.0}
    better = decide(
        "regression", package("2"), package("1"), scores({**old, "rmse": 38.0}, old), PROMOTION
    )
    worse = decide(
        "regression", package("2"), package("1"), scores({**old, "rmse": 42.0}, old), PROMOTION
    )
    assert better["promote"] and not worse["promote"]


def test_evaluation_data_a_model_was_trained_on_are_not_comparable():
    champion = package("1", trained_until="2025-03-01T00:00:00")  # saw the evaluation period
    reason = evaluation_overlap("2025-02-01T00:00:00", package("2"), champion)
    assert reason and "v1" in reason
    decision = decide(
        "classification",
        package("2"),
        champion,
        scores({**CHAMP, "f1": 0.9}, CHAMP) | {"overlap": reason},
        PROMOTION,
    )
    assert not decision["promote"] and decision["reason"].startswith("not comparable")


def test_score_both_scores_both_models_on_the_same_rows():
    frame = pd.DataFrame({"timestamp": pd.date_range("2025-02-01", periods=4, freq="h")})
    seen = []

    def score(model):
        seen.append(model)
        return {"f1": float(model)}

    out = score_both({"model": 1, **package("2")}, {"model": 2, **package("1")}, frame, score)
    assert seen == [1, 2] and out["evaluation"]["rows"] == 4
    assert out["evaluation"]["from"] == "2025-02-01T00:00:00" and out["overlap"] is None


def test_the_nasa_guard_compares_lateness_in_hours_not_the_exploding_raw_mean():
    # RUL in hours: one prediction 320 h late makes the raw mean ~1e14; a challenger whose worst
    # lateness is 0.5 h later reads 5 % worse on the raw mean but is not a regression
    rules = PROMOTION | {"guard_tolerance_by_metric": {"nasa_score_mean": 1.0}}
    old = {"rmse": 60.0, "nasa_score_mean": 7.9e13}
    slightly_later = {"rmse": 50.0, "nasa_score_mean": 7.9e13 * 1.05}  # +0.49 h
    much_later = {"rmse": 50.0, "nasa_score_mean": 7.9e13 * 20}  # +30 h
    promote = decide("regression", package("2"), package("1"), scores(slightly_later, old), rules)
    keep = decide("regression", package("2"), package("1"), scores(much_later, old), rules)
    assert promote["promote"], promote["reason"]
    assert not keep["promote"] and "guard nasa_score_mean regresses" in keep["reason"]
    assert "worse on the nasa_late_hours scale" in keep["reason"]
    # without a tolerance of its own the guard keeps the fleet-wide one (0: any increase blocks)
    strict = decide(
        "regression", package("2"), package("1"), scores(slightly_later, old), PROMOTION
    )
    assert not strict["promote"]


def test_too_few_positives_on_the_evaluation_data_keep_the_champion():
    """One row moves F1 by 1/positives: on a holdout with a handful of faults a 'better'
    challenger is noise (a weaker detector scored F1 1.0 vs 0.97 on 17 fault rows)."""
    rules = {**PROMOTION, "min_positives": {"classification": 30}}
    win = {**CHAMP, "f1": 0.70}
    few = {**scores(win, CHAMP), "evaluation": {"from": "2025-02-01T00:00:00", "positives": 17}}
    enough = {**scores(win, CHAMP), "evaluation": {"from": "2025-02-01T00:00:00", "positives": 30}}
    keep = decide("classification", package("2"), package("1"), few, rules)
    assert not keep["promote"] and "only 17 positive rows" in keep["reason"]
    assert decide("classification", package("2"), package("1"), enough, rules)["promote"]
    # no count (a family without a 0/1 label) or no setting: the margin alone decides
    assert decide("classification", package("2"), package("1"), scores(win, CHAMP), rules)[
        "promote"
    ]
    assert decide("classification", package("2"), package("1"), few, PROMOTION)["promote"]
    # a first version is champion whatever the evidence
    assert decide("classification", package("1"), None, few, rules)["promote"]


def test_score_both_counts_the_positives_of_a_labelled_evaluation():
    frame = pd.DataFrame({"timestamp": pd.date_range("2025-02-01", periods=4, freq="h"),
                          "label": [0, 1, 1, 0]})  # fmt: skip
    challenger = {"model": 1, **package("2")}
    out = score_both(challenger, None, frame, lambda m: {"f1": 1.0}, label_column="label")
    assert out["evaluation"]["positives"] == 2
    assert "positives" not in score_both(challenger, None, frame, lambda m: {})["evaluation"]
