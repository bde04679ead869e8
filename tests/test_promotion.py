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


BOOTSTRAP = {"block": "day", "resamples": 200, "confidence": 0.9, "seed": 13, "min_blocks": 7}


def _regression_days(n_days: int, errors: dict[str, list[float]]) -> pd.DataFrame:
    """Hourly rows over ``n_days`` days; each model's absolute error per day (cycled)."""
    stamps = pd.date_range("2025-02-01", periods=24 * n_days, freq="h")
    day = (stamps - stamps[0]).days
    return pd.DataFrame(
        {"timestamp": stamps, "episode_id": 7}
        | {name: [e[d % len(e)] for d in day] for name, e in errors.items()}
    )


def _rmse_of(model, rows):
    return {"rmse": float((rows[model["column"]] ** 2).mean() ** 0.5)}


def _paired(frame: pd.DataFrame, rules: dict) -> dict:
    challenger = {"model": {"column": "new"}, **package("2")}
    champion = {"model": {"column": "old"}, **package("1")}
    return score_both(
        challenger,
        champion,
        frame,
        score_rows=_rmse_of,
        promotion=rules,
    )


def test_a_gain_made_on_a_few_days_does_not_hold_under_the_paired_bootstrap():
    """The challenger is better on the evaluation's mean but only because of 2 of 20 days
    (the champion erred by 60 h there, 10 h elsewhere; the challenger 12 h every day): the
    point RMSE gain clears the margin, the day-block bootstrap's lower end does not."""
    rules = PROMOTION | {"bootstrap": BOOTSTRAP}
    old = [10.0] * 9 + [60.0]  # cycled: 2 bad days in 20
    frame = _regression_days(20, {"old": old, "new": [12.0]})
    scored = _paired(frame, rules)
    assert scored["bootstrap"]["blocks"] == 20 and scored["bootstrap"]["block"] == "day"
    lo, hi = scored["bootstrap"]["gain"]["rmse"]
    gain = scored["champion"]["rmse"] - scored["challenger"]["rmse"]
    assert gain > 1.0 and lo <= 0.0 < gain < hi  # the point gain sits inside the interval
    keep = decide("regression", package("2"), package("1"), scored, rules)
    assert not keep["promote"] and "does not hold under a paired bootstrap" in keep["reason"]
    # the same point figures without the bootstrap rule: promoted on the margin alone
    assert decide("regression", package("2"), package("1"), scored, PROMOTION)["promote"]
    # and seeded: the same interval again
    assert _paired(frame, rules)["bootstrap"]["gain"]["rmse"] == [lo, hi]


def test_a_gain_on_every_day_holds_under_the_paired_bootstrap():
    rules = PROMOTION | {"bootstrap": BOOTSTRAP}
    frame = _regression_days(20, {"old": [20.0, 30.0, 25.0], "new": [14.0, 22.0, 18.0]})
    scored = _paired(frame, rules)
    assert scored["bootstrap"]["gain"]["rmse"][0] > 0
    promote = decide("regression", package("2"), package("1"), scored, rules)
    assert promote["promote"] and "paired bootstrap gain interval" in promote["reason"]


def test_too_few_evaluation_days_for_a_bootstrap_keep_the_champion():
    rules = PROMOTION | {"bootstrap": BOOTSTRAP}
    frame = _regression_days(3, {"old": [20.0], "new": [10.0]})  # 3 days < min_blocks 7
    scored = _paired(frame, rules)
    assert scored["bootstrap"]["gain"] == {} and "3 days" in scored["bootstrap"]["note"]
    keep = decide("regression", package("2"), package("1"), scored, rules)
    assert not keep["promote"] and "too little evidence" in keep["reason"]
    # episodes as blocks: one episode is never enough evidence
    by_episode = PROMOTION | {"bootstrap": BOOTSTRAP | {"block": "episode", "min_blocks": 3}}
    frame = _regression_days(20, {"old": [20.0], "new": [10.0]})
    assert "1 episodes" in _paired(frame, by_episode)["bootstrap"]["note"]
    with pytest.raises(ValueError, match="promotion.bootstrap.block"):
        _paired(frame, PROMOTION | {"bootstrap": BOOTSTRAP | {"block": "week"}})


def test_a_win_on_the_evaluation_data_that_regresses_on_val_keeps_the_champion():
    """pump_grundfos_cr3_004 (base config): a challenger trained on one episode beat the
    champion on the one-episode holdout (RMSE 44 vs 64 h, bootstrap interval of the gain 2.6 to
    36 h) while far worse on the 4-episode val split (117 vs 84 h for the good challenger)."""
    rules = PROMOTION | {
        "bootstrap": BOOTSTRAP,
        "val_guard": {"relative_tolerance": 0.15},
    }
    frame = _regression_days(20, {"old": [20.0, 30.0, 25.0], "new": [14.0, 22.0, 18.0]})
    val = _regression_days(30, {"old": [30.0], "new": [45.0]}).assign(
        episode_id=lambda f: f.index // 240
    )
    challenger = {"model": {"column": "new"}, **package("2")}
    champion = {"model": {"column": "old"}, **package("1")}

    def scored(val_frame):
        return score_both(challenger, champion, frame, score_rows=_rmse_of, promotion=rules,
                          guard_evaluation=val_frame)  # fmt: skip

    out = scored(val)
    assert out["val"]["rows"] == 720 and out["val"]["episodes"] == 3
    assert out["val"]["challenger"]["rmse"] == 45.0 and out["val"]["champion"]["rmse"] == 30.0
    keep = decide("regression", challenger, champion, out, rules)
    assert (
        not keep["promote"]
        and "regresses on the val split (720 rows, 3 episodes)" in (keep["reason"])
    )
    assert keep["val"] == out["val"] and keep["bootstrap"]["blocks"] == 20  # audited
    # within the tolerance on val (34 vs 30 h: 13 %): promoted on the evaluation data's clear win
    close = scored(val.assign(new=34.0))
    assert decide("regression", challenger, champion, close, rules)["promote"]
    # no val guard asked for: not scored, the evaluation data alone decide
    plain = score_both(challenger, champion, frame, score_rows=_rmse_of, promotion=PROMOTION,
                       guard_evaluation=val)  # fmt: skip
    assert "val" not in plain


def test_resamples_without_a_positive_row_are_skipped_for_f1():
    """A one-episode holdout over 5 days with its failure horizon on the last day: a resample
    missing that day has no positive row, both F1 are 0 and the 'gain' of 0 is no evidence."""
    stamps = pd.date_range("2025-02-01", periods=5 * 24, freq="h")
    label = (stamps >= pd.Timestamp("2025-02-05")).astype(int)
    frame = pd.DataFrame({"timestamp": stamps, "episode_id": 1, "label": label,
                          "new": label, "old": label * (stamps.hour % 2)})  # fmt: skip

    def f1_of(model, rows):
        y, hit = rows["label"].to_numpy(), rows[model["column"]].to_numpy()
        tp = int((y & hit).sum())
        return {"f1": 2 * tp / (y.sum() + hit.sum()) if (y.sum() + hit.sum()) else 0.0}

    rules = PROMOTION | {"bootstrap": BOOTSTRAP | {"min_blocks": 5}}
    challenger = {"model": {"column": "new"}, **package("2")}
    champion = {"model": {"column": "old"}, **package("1")}
    out = score_both(challenger, champion, frame, label_column="label", score_rows=f1_of,
                     promotion=rules)  # fmt: skip
    assert out["bootstrap"]["skipped_without_positives"] > 0
    assert out["bootstrap"]["gain"]["f1"][0] > 0  # every resample with the failure: a real gain
    assert decide("classification", challenger, champion, out, rules)["promote"]


def test_score_both_needs_a_way_to_score():
    frame = _regression_days(2, {"old": [1.0], "new": [1.0]})
    with pytest.raises(ValueError, match="score or score_rows"):
        score_both({"model": {"column": "new"}, **package("2")}, None, frame)


def test_a_challenger_refitted_on_val_cannot_pass_the_val_guard():
    """With ``refit_on_train_val`` the challenger's val figure is in-sample: the one-episode
    control of bench_monitoring, refitted that way, scored val RMSE 3.6 h against the champion's
    80 h and was promoted. The guard keeps the champion and says why; without a val guard the
    evaluation data alone decide, as before."""
    rules = PROMOTION | {"val_guard": {"relative_tolerance": 0.15}}
    old = {"rmse": 40.0, "nasa_score_mean": 5.0}
    out = scores({**old, "rmse": 30.0}, old) | {
        "val": {"rows": 720, "episodes": 3, "challenger": {"rmse": 3.6}, "champion": {"rmse": 80.0}}
    }

    def challenger(fitted_on: str) -> dict:
        return package("2") | {"metrics": {"model": {"trees_fitted_on": fitted_on}}}

    refitted = decide("regression", challenger("train+val"), package("1"), out, rules)
    assert not refitted["promote"]
    assert "cannot judge this challenger" in refitted["reason"]
    assert "train+val" in refitted["reason"] and "3.6" in refitted["reason"]
    assert decide("regression", challenger("train"), package("1"), out, rules)["promote"]
    assert decide("regression", challenger("train+val"), package("1"), out, PROMOTION)["promote"]


def _shifted(baselines: dict, scales: float) -> dict:
    """Sensor baselines whose medians sit ``scales`` scales higher (another run's train split)."""
    return {
        **baselines,
        "sensors": {
            name: {**sensor, "median": sensor["median"] + scales * sensor["scale"]}
            for name, sensor in baselines["sensors"].items()
        },
    }


def test_the_champion_is_scored_on_features_built_with_its_own_sensor_baselines(
    tiny_splits, tiny_baselines, tiny_features, machine
):
    from pdm_kedro.evaluation.tracking import registration_entry  # noqa: PLC0415
    from pdm_kedro.pipelines.feature_engineering.nodes import (  # noqa: PLC0415
        build_window_features,
    )
    from pdm_kedro.promotion import champion_features  # noqa: PLC0415

    _, val, test = tiny_splits
    run_val, run_test = tiny_features["val"], tiny_features["test"]
    splits = ((test, run_test), (val, run_val))
    theirs = _shifted(tiny_baselines, 3.0)
    metrics = {
        "machine_id": "m",
        "family": "regression",
        "metrics": [{"metric": "rmse", "value": 1.0}],
    }
    entry = registration_entry({"estimator": "e"}, metrics, run_test, run_val, theirs)
    assert entry["model"] == {"estimator": "e", "sensor_baselines": theirs}
    champion = {"model": entry["model"], "registry_version": "1"}
    # nothing to rebuild: no champion, one registered without baselines, the same baselines
    assert champion_features(None, tiny_baselines, machine, *splits) is None
    bare = {"model": {"estimator": "e"}}
    assert champion_features(bare, tiny_baselines, machine, *splits) is None
    assert champion_features(champion, theirs, machine, *splits) is None
    own_test, own_val = champion_features(champion, tiny_baselines, machine, *splits)
    pd.testing.assert_frame_equal(own_test, build_window_features(test, theirs, machine))
    pd.testing.assert_frame_equal(own_val, build_window_features(val, theirs, machine))
    assert own_test[["timestamp", "episode_id"]].equals(run_test[["timestamp", "episode_id"]])
    column = next(name for name in run_test.columns if name.endswith("__zscore"))
    assert not own_test[column].equals(run_test[column])  # the baselines reach the features

    def score_rows(model, rows):  # a "metric" that shows which features a model was shown
        return {"mae": float(rows[column].mean())}

    challenger = {"model": {"estimator": "new"}, "registry_version": "2"}
    promotion = {"val_guard": {"relative_tolerance": 0.1}}
    scores = score_both(
        challenger, champion, run_test, score_rows=score_rows, promotion=promotion,
        guard_evaluation=run_val, champion_frames=(own_test, own_val),
    )  # fmt: skip
    assert scores["challenger"] == score_rows(None, run_test)
    assert scores["champion"] == score_rows(None, own_test)
    assert scores["val"]["champion"] == score_rows(None, own_val)
    assert scores["val"]["challenger"] == score_rows(None, run_val)
    assert scores["champion_features"] == "rebuilt with its own sensor baselines"
    plain = score_both(challenger, champion, run_test, score_rows=score_rows)
    assert plain["champion"] == score_rows(None, run_test)
    assert plain["champion_features"] == "this run's"
    # rows that do not line up are refused, naming the machine
    with pytest.raises(ValueError, match=machine["machine_id"]):
        champion_features(champion, tiny_baselines, machine, (test.iloc[1:], run_test))
