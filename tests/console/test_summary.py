"""The run summary: headline metric beside its baseline, the verdict, and its Markdown form."""

from pdm_kedro.console.summary import build_rows, headline, markdown, rich_table

PARAMS = {
    "classification": {"registry": {"champion_metric": "f1", "greater_is_better": True}},
    "forecasting": {"registry": {"champion_metric": "mape", "greater_is_better": False}},
    "regression": {"registry": {"champion_metric": "rmse", "greater_is_better": False}},
}


def report(machine, family, rows):
    return {"machine_id": machine, "family": family, "metrics": rows}


REPORTS = {
    ("m1", "classification"): report(
        "m1",
        "classification",
        [{"metric": "f1", "value": 0.8, "baseline": 0.6, "baseline_name": "rule"}],
    ),
    ("m1", "regression"): report(
        "m1", "regression", [{"metric": "rmse", "value": 40.0, "baseline": 30.0, "ceiling": 10.0}]
    ),
    ("m1", "forecasting"): report(
        "m1",
        "forecasting",
        [
            {"metric": "mape[a]", "value": 10.0, "baseline": 12.0},
            {"metric": "mape[b]", "value": 20.0, "baseline": 16.0},
            {"metric": "smape[a]", "value": 1.0, "baseline": 9.0},
        ],
    ),
}


def test_rows_compare_the_champion_metric_with_its_baseline():
    rows = build_rows(REPORTS, PARAMS, {("m1", "regression"): 2.5})
    by_family = {r.family: r for r in rows}
    assert [r.family for r in rows] == ["classification", "regression", "forecasting"]
    assert by_family["classification"].verdict == "yes"
    assert by_family["regression"].verdict == "no"  # lower is better: 40 loses to 30
    assert by_family["regression"].ceiling == 10.0 and by_family["regression"].seconds == 2.5
    forecast = by_family["forecasting"]  # mean over the sensors, model and baseline alike
    assert (forecast.value, forecast.baseline, forecast.verdict) == (15.0, 14.0, "no")


def test_headline_without_the_metric_is_not_a_verdict():
    value, baseline, _, _ = headline(report("m", "x", [{"metric": "f1", "value": 1.0}]), "f1")
    assert (value, baseline) == (1.0, None)
    rows = build_rows(
        {("m", "classification"): report("m", "classification", [{"metric": "f1", "value": 1.0}])},
        PARAMS,
        {},
    )
    assert rows[0].verdict == "n/a"


def test_markdown_names_the_losers_and_where_to_look():
    rows = build_rows(REPORTS, PARAMS, {})
    text = markdown(rows, "Run summary", [("environment", "small")], [("MLflow UI", "mlflow ui")])
    assert "| m1 | regression | rmse (lower is better) | 40 | 30 | 10 | no |" in text
    assert "2 of 3 models do not beat their baseline: m1/regression, m1/forecasting." in text
    assert "- MLflow UI: `mlflow ui`" in text
    assert rich_table(rows, "t").row_count == 3


def test_without_registry_parameters_the_family_seam_gives_headline_and_direction():
    """The default run has no ``<family>.registry`` parameters: RMSE 131 beats 156 there."""
    reports = {
        ("m1", "regression"): report(
            "m1",
            "regression",
            [
                {"metric": "rmse", "value": 131.0, "baseline": 156.0},
                {"metric": "r2", "value": 0.3, "baseline": 0.0},
            ],
        )
    }
    (row,) = build_rows(reports, {}, {})
    assert row.greater_is_better is False and row.metric.endswith("(lower is better)")
    assert row.verdict == "yes"
