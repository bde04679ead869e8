"""The leakage guard: which split every fitted object of every family is computed from.

Every fitted or chosen object (sensor baselines, baseline rules, classifiers, regressors, scalers
and detectors, thresholds, forecasters) is listed with the splits it may depend on. The graph of
the namespaced templates decides what it does depend on: the splits among its ancestors. No fitted
object may have the test split among its ancestors; the test split only reaches scoring outputs.
The decision threshold is chosen on train+val (grouped cross-validation over whole episodes, the
default) or on val: the node choosing it reads those splits and never test. Promotion re-scores
champion and challenger on the test split (``promotion_scores``, ``production_model``): the
decision which model serves is the only thing test informs, never a fitted parameter.
"""

from __future__ import annotations

import pytest
from kedro.pipeline import Pipeline

from pdm_kedro.pipeline_registry import discover_templates, namespace_for_machine
from tests.conftest import TEST_MACHINE

M = TEST_MACHINE
TRAIN, VAL, TEST = "train", "val", "test"

# family -> {fitted object: splits it is allowed to (and must) depend on}
FITTED: dict[str, dict[str, set[str]]] = {
    "feature_engineering": {
        "fitted_sensor_baselines": {TRAIN},
        # this run's fit, or (a retraining run) the served ones, fitted by an earlier run
        "sensor_baselines": {TRAIN},
        "features_train": {TRAIN},
        "features_val": {TRAIN, VAL},
        "label_difficulty": {TRAIN, VAL},
    },
    "classification": {
        "classification.baseline_rule": {TRAIN},
        "classification.classifier": {TRAIN, VAL},  # trees on train, early stopping on val
        "classification.final_classifier": {TRAIN, VAL},  # refitted on train+val when asked
        "classification.decision_threshold": {TRAIN, VAL},
        "classification.model": {TRAIN, VAL},
        "classification.feature_importance": {TRAIN, VAL},
    },
    "regression": {
        "regression.baseline": {TRAIN, VAL},  # fitted on train, kind picked on val
        "regression.model": {TRAIN, VAL},
        "regression.feature_importance": {TRAIN, VAL},
    },
    "anomaly": {
        "anomaly.baseline_rule": {TRAIN, VAL},
        "anomaly.healthy_train_rows": {TRAIN},
        "anomaly.detector_inputs": set(),
        "anomaly.isolation_forest": {TRAIN},  # scaler + detector, healthy train rows only
        "anomaly.one_class_svm": {TRAIN},
        "anomaly.pca_t2q": {TRAIN},  # PCA T²+Q, healthy train rows only
        "anomaly.detector_selection": {TRAIN, VAL},  # detector and threshold chosen on val
        "anomaly.model": {TRAIN, VAL},
        # per-episode thresholds from each episode's leading (train) rows
        "anomaly.calibrated_model": {TRAIN, VAL},
    },
    "forecasting": {
        "forecasting.hourly_train": {TRAIN},
        "forecasting.arima_forecasters": {TRAIN},  # the ARIMA forecasters
        "forecasting.arima_backtest_val": {TRAIN, VAL},
        "forecasting.model": {TRAIN, VAL},  # mean reversion decay chosen on val
        "forecasting.backtest_val": {TRAIN, VAL},
    },
}
# family -> outputs that score on test (the only ones the test split may reach)
SCORING: dict[str, set[str]] = {
    "feature_engineering": {"features_test"},
    "classification": {
        "classification.test_predictions",
        "classification.metrics",
        "classification.pr_curve_plot",
        "classification.confusion_matrix_plot",
        "classification.mlflow_metrics",
        "classification.registered_model",
        "classification.alarm_events",
        "classification.ceiling",
        "classification.promotion_scores",
        "classification.production_model",
    },
    "regression": {
        "regression.test_predictions",
        "regression.metrics",
        "regression.rul_predicted_vs_true_plot",
        "regression.mlflow_metrics",
        "regression.registered_model",
        "regression.ceiling",
        "regression.promotion_scores",
        "regression.production_model",
    },
    "anomaly": {
        "anomaly.test_scores",
        "anomaly.metrics",
        "anomaly.score_distribution_plot",
        "anomaly.registered_model",
        "anomaly.mlflow_metrics",
        "anomaly.promotion_scores",
        "anomaly.production_model",
    },
    "forecasting": {
        "forecasting.hourly_test",
        "forecasting.backtest_test",
        "forecasting.metrics",
        "forecasting.forecast_vs_actual_plot",
        "forecasting.registered_model",
        "forecasting.mlflow_metrics",
        "forecasting.promotion_scores",
        "forecasting.production_model",
        "forecasting.production_backtest_test",  # the edge export's parity reference
    },
}
# family -> {node: the splits it reads directly}
DIRECT_READS: dict[str, dict[str, set[str]]] = {
    "feature_engineering": {"fit_sensor_baselines": {TRAIN}},
    "classification": {
        "fit_failure_rule": {TRAIN},
        "train_failure_classifier": {TRAIN, VAL},
        "choose_decision_threshold": {TRAIN, VAL},  # grouped CV over train+val episodes
        "refit_failure_classifier": {TRAIN, VAL},  # refitted on train+val when asked
    },
    "regression": {"fit_rul_baseline": {TRAIN, VAL}, "train_rul_regressor": {TRAIN, VAL}},
    "anomaly": {
        "fit_anomaly_rule": {TRAIN, VAL},
        "sample_healthy_rows": {TRAIN},
        "choose_detector": {VAL},
    },
    "forecasting": {"fit_forecasters": {TRAIN}, "backtest_val_arima_forecasts": {TRAIN, VAL}},
}


def _namespaced(family: str) -> Pipeline:
    return namespace_for_machine(discover_templates()[family], M)


def _split_of(dataset: str) -> str | None:
    """The split a split-level input of a template stands for (raw, validated or features)."""
    name = dataset.removeprefix(f"{M}.")
    for prefix in ("validated_", "features_", "forecasting.hourly_"):
        if name.startswith(prefix) and name.removeprefix(prefix) in (TRAIN, VAL, TEST):
            return name.removeprefix(prefix)
    return None


def _source_inputs(pipe: Pipeline) -> set[str]:
    return {name for name in pipe.inputs() if _split_of(name)}


def _ancestor_splits(pipe: Pipeline, dataset: str) -> set[str]:
    """Splits among the free inputs of everything ``dataset`` is computed from."""
    upstream = pipe.to_outputs(dataset)
    return {_split_of(name) for name in upstream.inputs() if _split_of(name)}


def _ns(name: str) -> str:
    return f"{M}.{name}"


@pytest.mark.parametrize("family", sorted(FITTED))
def test_every_fitted_object_depends_on_exactly_its_allowed_splits(family):
    pipe = _namespaced(family)
    assert _source_inputs(pipe), family
    for dataset, allowed in FITTED[family].items():
        assert _ns(dataset) in pipe.all_outputs(), (family, dataset)
        assert _ancestor_splits(pipe, _ns(dataset)) == allowed, (family, dataset)


@pytest.mark.parametrize("family", sorted(FITTED))
def test_the_test_split_reaches_only_scoring_outputs(family):
    pipe = _namespaced(family)
    tests = [name for name in _source_inputs(pipe) if _split_of(name) == TEST]
    assert tests, family
    reached = pipe.from_inputs(*tests).all_outputs()
    assert reached == {_ns(name) for name in SCORING[family]}, family
    assert not reached & {_ns(name) for name in FITTED[family]}


@pytest.mark.parametrize("family", sorted(DIRECT_READS))
def test_fitting_and_choosing_nodes_read_only_their_splits(family):
    pipe = _namespaced(family)
    nodes = {node.name.split(".")[-1]: node for node in pipe.nodes}
    for node_name, splits in DIRECT_READS[family].items():
        node = nodes[node_name]
        read = {_split_of(name) for name in node.inputs if _split_of(name)}
        assert read == splits, (family, node_name, node.inputs)


def test_every_fitted_output_of_the_templates_is_listed():
    """A new fitted output must join the guard: every non-scoring output is in FITTED."""
    for family, fitted in FITTED.items():
        pipe = _namespaced(family)
        outputs = {name.removeprefix(f"{M}.") for name in pipe.all_outputs()}
        listed = set(fitted) | SCORING[family]
        # intermediate data that is neither fitted nor a test score
        data = {"features_test", "forecasting.hourly_val"} | {
            f"forecasting.hourly_{s}" for s in (TRAIN, VAL, TEST)
        }
        assert outputs - listed - data == set(), (family, outputs - listed - data)
