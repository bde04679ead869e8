"""Forecasting fixtures: the tiny splits' hourly series and a forecaster fitted on them."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import CONF_BASE


@pytest.fixture(scope="session")
def fc_params() -> dict:
    """The project's forecasting parameters with a shorter fitting history (fast tests)."""
    import yaml  # noqa: PLC0415

    params = yaml.safe_load((CONF_BASE / "parameters_forecasting.yml").read_text())["forecasting"]
    params = copy.deepcopy(params)
    params["history_hours"] = 240
    params["state_hours"] = 96
    return params


@pytest.fixture(scope="session")
def tiny_hourly(tiny_splits, machine: dict) -> dict:
    """{"train": ..., "val": ..., "test": ...} hourly key-sensor series of the tiny splits."""
    from pdm_kedro.pipelines.forecasting.nodes import resample_hourly  # noqa: PLC0415

    names = ("train", "val", "test")
    return {n: resample_hourly(s, machine) for n, s in zip(names, tiny_splits, strict=True)}


@pytest.fixture(scope="session")
def tiny_forecaster(tiny_hourly: dict, machine: dict, fc_params: dict) -> dict:
    """The forecasting model artefact fitted on the tiny train split."""
    from pdm_kedro.pipelines.forecasting.nodes import fit_forecasters  # noqa: PLC0415

    return fit_forecasters(tiny_hourly["train"], machine, fc_params)


@pytest.fixture(scope="session")
def tiny_backtest(tiny_forecaster: dict, tiny_hourly: dict, fc_params: dict):
    """The test-split backtest (pmdarima forecasts at every origin) of the tiny forecaster."""
    from pdm_kedro.pipelines.forecasting.nodes import backtest_forecasters  # noqa: PLC0415

    return backtest_forecasters(
        tiny_forecaster, tiny_hourly["val"], tiny_hourly["test"], fc_params, split="test"
    )
