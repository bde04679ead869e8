"""Classification nodes on the tiny fixtures."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from pdm_kedro import contract as c
from pdm_kedro.evaluation.classification_metrics import best_f1_threshold, threshold_metrics
from pdm_kedro.pipelines.classification import nodes as n
from pdm_kedro.pipelines.feature_engineering.nodes import feature_columns


@pytest.fixture(scope="module")
def classifier(tiny_features, clf_params):
    return n.train_failure_classifier(tiny_features["train"], tiny_features["val"], clf_params)


@pytest.fixture(scope="module")
def model(classifier, tiny_features, clf_params, tiny_params):
    threshold = n.choose_decision_threshold(classifier, tiny_features["val"], clf_params)
    return n.package_failure_model(classifier, threshold, tiny_params["labels"])


def test_classifier_is_trained_on_arrays_with_ordered_feature_names(
    classifier, tiny_features, clf_params
):
    assert classifier["feature_names"] == feature_columns(tiny_features["train"])
    assert classifier["estimator"].get_booster().feature_names is None
    assert classifier["scale_pos_weight"] == float(clf_params["scale_pos_weight"])


def test_auto_class_weight_is_negatives_over_positives(tiny_features, clf_params):
    auto = n.train_failure_classifier(
        tiny_features["train"], tiny_features["val"], {**clf_params, "scale_pos_weight": "auto"}
    )
    positives = tiny_features["train"]["failure_within_horizon"].mean()
    assert auto["scale_pos_weight"] == pytest.approx((1 - positives) / positives, rel=1e-6)


def test_model_follows_the_contract(model, tiny_params):
    assert model["family"] == "classification"
    assert 0.0 < model["threshold"] < 1.0
    assert model["horizon_hours"] == tiny_params["labels"]["failure_horizon_hours"]
    assert {"estimator", "feature_names"} <= set(model)


def test_threshold_maximises_f1_on_val(model, tiny_features):
    val = tiny_features["val"]
    y = val["failure_within_horizon"].to_numpy()
    p = n.failure_probability(model, val)
    chosen = threshold_metrics(y, p >= model["threshold"])["f1"]
    for other in np.linspace(0.05, 0.95, 19):
        assert chosen >= threshold_metrics(y, p >= other)["f1"] - 1e-12


def test_best_f1_threshold_on_a_known_case():
    y = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    assert best_f1_threshold(y, scores) == {"threshold": 0.7, "f1": 1.0}
    assert best_f1_threshold(y, scores, min_threshold=0.8)["threshold"] == 0.9


def test_same_seed_gives_identical_models(tiny_features, clf_params, classifier):
    again = n.train_failure_classifier(tiny_features["train"], tiny_features["val"], clf_params)
    test = tiny_features["test"]
    np.testing.assert_array_equal(
        n.failure_probability(again, test), n.failure_probability(classifier, test)
    )


def test_metrics_stand_beside_a_baseline_on_the_same_split(
    model, classifier, tiny_features, machine, clf_params
):
    rule = n.fit_failure_rule(tiny_features["train"], machine, clf_params)
    preds = n.predict_failures(model, tiny_features["test"])
    metrics = n.evaluate_failure_model(
        model, classifier, rule, tiny_features["val"], preds, tiny_features["test"], machine,
        clf_params,
    )  # fmt: skip
    assert metrics["split"] == "test"
    assert metrics["n_rows"] == len(tiny_features["test"])
    names = [row["metric"] for row in metrics["metrics"]]
    assert names == ["f1", "precision", "recall", "pr_auc", "roc_auc"]
    assert all(row["baseline_name"] == n.BASELINE_NAME for row in metrics["metrics"])
    assert all(row["baseline"] is not None for row in metrics["metrics"])
    cm = metrics["confusion_matrix"]
    assert sum(cm.values()) == len(tiny_features["test"])
    assert cm["tp"] + cm["fn"] == int(tiny_features["test"]["failure_within_horizon"].sum())
    assert isinstance(n.plot_precision_recall(preds, metrics), Figure)
    assert isinstance(n.plot_confusion_matrix(metrics), Figure)


def test_feature_importance_covers_every_feature(model):
    table = n.rank_feature_importance(model)
    assert list(table.columns) == ["feature", "importance"]
    assert sorted(table["feature"]) == sorted(model["feature_names"])
    assert table["importance"].sum() == pytest.approx(1.0)


def test_grouped_cv_threshold_is_seeded_uses_train_and_val_and_falls_back_to_val(
    classifier, tiny_features, clf_params
):
    train, val = tiny_features["train"], tiny_features["val"]
    cv = {
        **clf_params,
        "threshold_selection": {"method": "grouped_cv", "folds": 3, "row_stride": 2},
    }
    first = n.choose_threshold_by_grouped_cv(classifier, train, val, cv)
    assert first == n.choose_threshold_by_grouped_cv(classifier, train, val, cv)
    assert clf_params["min_decision_threshold"] <= first <= 1.0
    # the val episodes take part: other val labels, other threshold
    flipped = val.assign(failure_within_horizon=1 - val["failure_within_horizon"])
    assert n.choose_threshold_by_grouped_cv(classifier, train, flipped, cv) != first
    by_val = {**clf_params, "threshold_selection": {"method": "val"}}
    assert n.choose_threshold_by_grouped_cv(
        classifier, train, val, by_val
    ) == n.choose_decision_threshold(classifier, val, clf_params)


def test_out_of_fold_probability_never_comes_from_a_model_that_saw_the_episode(
    classifier, tiny_features, clf_params
):
    """Every train+val row is scored by a fold model fitted without its episode: other labels on
    one episode change the other episodes' scores, never its own."""
    train, val = tiny_features["train"], tiny_features["val"]
    cv = {
        **clf_params,
        "threshold_selection": {"method": "grouped_cv", "folds": 3, "row_stride": 1},
    }
    pooled, oof = n.out_of_fold_probability(classifier, train, val, cv)
    assert len(pooled) == len(oof) == len(train) + len(val)
    assert pooled[c.EPISODE].tolist() == train[c.EPISODE].tolist() + val[c.EPISODE].tolist()
    episode = train[c.EPISODE].iloc[0]
    mine = (train[c.EPISODE] == episode).to_numpy()
    label = "failure_within_horizon"
    relabelled = train.assign(**{label: np.where(mine, 1 - train[label], train[label])})
    _, again = n.out_of_fold_probability(classifier, relabelled, val, cv)
    own = np.r_[mine, np.zeros(len(val), dtype=bool)]
    np.testing.assert_array_equal(again[own], oof[own])
    assert not np.array_equal(again[~own], oof[~own])
