"""Template pipeline: hourly key-sensor series -> ARIMA fit (train) -> rolling-origin backtest."""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from pdm_kedro.contract import SPLITS
from pdm_kedro.evaluation.tracking import registration_entry, tracking_metrics
from pdm_kedro.promotion import promotion_nodes

from .nodes import (
    backtest_forecasters,
    choose_forecasters,
    evaluate_forecasts,
    fit_forecasters,
    plot_forecasts,
    production_backtest,
    resample_hourly,
    score_for_promotion,
)

FAMILY = "forecasting"


def _resample(split: str) -> Node:
    return Node(
        resample_hourly,
        inputs=[f"validated_{split}", "params:machine"],
        outputs=f"hourly_{split}",
        name=f"resample_{split}_hourly",
    )


def _backtest(split: str, before: str, model: str = "model", prefix: str = "") -> Node:
    func = partial(backtest_forecasters, split=split)
    update_wrapper(func, backtest_forecasters)
    return Node(
        func,
        inputs=[model, f"hourly_{before}", f"hourly_{split}", "params:forecasting"],
        outputs=f"{prefix}backtest_{split}",
        name=f"backtest_{split}_{prefix}forecasts",
    )


def create_pipeline(**kwargs) -> Pipeline:  # noqa: ARG001
    """``validated_<split>`` -> ``forecasting.{hourly_<split>, arima_forecasters (train),
    arima_backtest_val, model (mean reversion chosen on val), backtest_<split>, metrics,
    forecast_vs_actual_plot, production_backtest_test}`` inside the machine namespace."""
    nodes = [
        *(_resample(split) for split in SPLITS),
        Node(
            fit_forecasters,
            inputs=["hourly_train", "params:machine", "params:forecasting"],
            outputs="arima_forecasters",
            name="fit_forecasters",
        ),
        _backtest("val", before="train", model="arima_forecasters", prefix="arima_"),
        Node(
            choose_forecasters,
            inputs=["arima_forecasters", "arima_backtest_val", "params:forecasting"],
            outputs="model",
            name="choose_forecasters",
        ),
        _backtest("val", before="train"),
        _backtest("test", before="val"),
        Node(
            evaluate_forecasts,
            inputs=["backtest_val", "backtest_test", "model", "params:forecasting"],
            outputs="metrics",
            name="evaluate_forecasts",
        ),
        Node(
            plot_forecasts,
            inputs=["backtest_test", "model", "params:forecasting"],
            outputs="forecast_vs_actual_plot",
            name="plot_forecasts",
        ),
        Node(tracking_metrics, inputs="metrics", outputs="mlflow_metrics", name="track_metrics"),
        Node(
            registration_entry,
            inputs=["model", "metrics", "validated_test", "validated_val"],
            outputs="registered_model",
            name="register_model",
        ),
        *promotion_nodes(
            FAMILY,
            score_for_promotion,
            ["backtest_test", "hourly_val", "hourly_test", "params:forecasting"],
        ),
        Node(
            production_backtest,
            inputs=[
                "production_model",
                "model",
                "backtest_test",
                "hourly_val",
                "hourly_test",
                "params:forecasting",
            ],
            outputs="production_backtest_test",
            name="backtest_production_model",
        ),
    ]
    return Pipeline(
        nodes,
        namespace=FAMILY,
        inputs={f"validated_{split}" for split in SPLITS},
        parameters={"params:machine", "params:forecasting", "params:promotion"},
    )
