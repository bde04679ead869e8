"""The regression template on one namespace with an in-memory catalog."""

from tests.conftest import TEST_MACHINE as M
from tests.pipelines.classification.test_pipeline import run_family


def test_regression_pipeline_on_one_namespace(
    tiny_features, tiny_hidden_state, machine, tiny_params, reg_params
):
    test = tiny_features["test"]
    # the failure classifier's test alarms (here a perfect one: on within the 48 h horizon)
    alarms = test[["timestamp", "episode_id"]].assign(alarm=(test["rul"] <= 48).astype("int8"))
    pipe, catalog = run_family(
        "regression", tiny_features, machine, tiny_params, reg_params, None, tiny_hidden_state,
        extra={f"{M}.classification.test_predictions": alarms},
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
    # capped to 48 h where a failure is within 48 h: never further from the truth near failure
    assert rows["answer_mae_last_100h"]["value"] <= rows["mae_last_100h"]["value"]
    predictions = catalog[f"{M}.regression.test_predictions"].load()
    assert metrics["answer"]["rows_capped"] == int(predictions["capped_by_alarm"].sum())
    assert rows["mae_last_100h"]["value"] > 0 and rows["mae_last_100h"]["baseline"] > 0
    assert rows["rmse"]["value_lo"] <= rows["rmse"]["value_hi"]
    entry = catalog[f"{M}.regression.registered_model"].load()
    assert entry["score_name"] == "rmse" and entry["trained_until"]
    importance = catalog[f"{M}.regression.feature_importance"].load()
    assert len(importance) == len(catalog[f"{M}.regression.model"].load()["feature_names"])
