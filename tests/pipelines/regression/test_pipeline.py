"""The regression template on one namespace with an in-memory catalog."""

from tests.conftest import TEST_MACHINE as M
from tests.pipelines.classification.test_pipeline import run_family


def test_regression_pipeline_on_one_namespace(
    tiny_features, tiny_hidden_state, machine, tiny_params, reg_params, tiny_models
):
    # the failure classifier at threshold 0: every test row alarms
    always = {**tiny_models["classification"], "threshold": 0.0}
    pipe, catalog = run_family(
        "regression", tiny_features, machine, tiny_params, reg_params, None, tiny_hidden_state,
        classifier=always,
    )  # fmt: skip
    assert {n.namespace for n in pipe.nodes} == {f"{M}.regression"}
    metrics = catalog[f"{M}.regression.metrics"].load()
    assert metrics["family"] == "regression" and metrics["split"] == "test"
    assert metrics["ceiling"]["available"]
    rows = {row["metric"]: row for row in metrics["metrics"]}
    answer_rows = {"answer_rmse", "answer_r2", "answer_mae_last_100h"}
    assert all(
        row["ceiling"] is not None
        for m, row in rows.items()
        if m != "mae_last_100h" and m not in answer_rows
    )
    predictions = catalog[f"{M}.regression.test_predictions"].load()
    over = predictions["rul_predicted"] > 48.0
    assert over.any() and metrics["answer"]["rows_capped"] == int(over.sum())
    assert (predictions["rul_answer"] == predictions["rul_predicted"].clip(upper=48.0)).all()
    assert rows["answer_rmse"]["value"] != rows["rmse"]["value"]
    assert rows["mae_last_100h"]["value"] > 0 and rows["mae_last_100h"]["baseline"] > 0
    assert rows["rmse"]["value_lo"] <= rows["rmse"]["value_hi"]
    entry = catalog[f"{M}.regression.registered_model"].load()
    assert entry["score_name"] == "rmse" and entry["trained_until"]
    importance = catalog[f"{M}.regression.feature_importance"].load()
    assert len(importance) == len(catalog[f"{M}.regression.model"].load()["feature_names"])
