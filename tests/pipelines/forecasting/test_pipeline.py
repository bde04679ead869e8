"""The forecasting template on one machine namespace with an in-memory catalog."""

from __future__ import annotations

import json

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pdm_kedro.pipeline_registry import discover_templates, namespace_for_machine
from tests.conftest import TEST_MACHINE
from tests.pipelines.family_catalog import production_dataset, promotion_datasets

M = TEST_MACHINE


class KeptMemoryDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test can read intermediate outputs."""

    def _release(self) -> None:
        pass


def test_forecasting_pipeline_on_one_namespace(tiny_splits, machine, fc_params, tmp_path):
    pipe = namespace_for_machine(discover_templates()["forecasting"], M)
    assert {n.namespace for n in pipe.nodes} == {f"{M}.forecasting"}
    assert pipe.inputs() == {
        f"{M}.validated_train",
        f"{M}.validated_val",
        f"{M}.validated_test",
        f"params:{M}.machine",
        "params:forecasting",
        "params:promotion",
        f"{M}.forecasting.champion_model",
    }
    inputs = {
        **{
            f"{M}.validated_{s}": split
            for s, split in zip(("train", "val", "test"), tiny_splits, strict=True)
        },
        f"params:{M}.machine": machine,
        "params:forecasting": fc_params,
    }
    catalog = DataCatalog(
        {
            **{name: KeptMemoryDataset() for name in pipe.all_outputs()},
            **{name: MemoryDataset(value) for name, value in inputs.items()},
            **promotion_datasets(M, "forecasting"),
            **production_dataset(M, "forecasting", tmp_path / "promotions.jsonl"),
        }
    )
    SequentialRunner().run(pipe, catalog)
    metrics = catalog[f"{M}.forecasting.metrics"].load()
    assert metrics["machine_id"] == M and metrics["family"] == "forecasting"
    model = catalog[f"{M}.forecasting.model"].load()
    assert model["family"] == "forecasting" and set(model["sensors"]) == set(
        machine["forecast_sensors"]
    )
    assert (catalog[f"{M}.forecasting.backtest_val"].load()["forecast_source"] == "linear").all()
    assert catalog[f"{M}.forecasting.forecast_vs_actual_plot"].load().axes
    assert metrics["plots"] == ["forecast_vs_actual.png"] and metrics["tracked_by_family"]
    tracked = catalog[f"{M}.forecasting.mlflow_metrics"].load()
    assert any(name.startswith("mape.") for name in tracked)
    (line,) = (tmp_path / "promotions.jsonl").read_text().splitlines()
    decision = json.loads(line)
    assert decision["decision"] == "promote" and decision["challenger_metrics"]["mape"] > 0
    production = catalog[f"{M}.forecasting.production_model"].load()
    # no champion yet: the production forecaster is this run's, and its test backtest the run's
    assert {s: e["coefficients"] for s, e in production["model"]["sensors"].items()} == {
        s: e["coefficients"] for s, e in model["sensors"].items()
    }
    pd.testing.assert_frame_equal(
        catalog[f"{M}.forecasting.production_backtest_test"].load(),
        catalog[f"{M}.forecasting.backtest_test"].load(),
    )


def test_catalog_factories_resolve_every_output(isolated_project_env):
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415
    from kedro.io import DataCatalog  # noqa: PLC0415

    from pdm_kedro.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415
    from tests.conftest import PROJECT_ROOT  # noqa: PLC0415

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)
    catalog = DataCatalog.from_config(loader["catalog"])
    pipe = namespace_for_machine(discover_templates()["forecasting"], M)
    registry = {
        ".registered_model": "MlflowModelRegistryDataset",
        ".production_model": "MlflowPromotionDataset",
        ".mlflow_metrics": "MlflowMetricsBatchDataset",
    }
    for name in pipe.all_outputs() - {f"{M}.forecasting.promotion_scores"}:  # in memory
        dataset = catalog[name]
        assert not isinstance(dataset, MemoryDataset), name
        kind = next((v for k, v in registry.items() if name.endswith(k)), None)
        if kind is not None:  # MLflow, not a file
            assert type(dataset).__name__ == kind, name
            continue
        assert str(isolated_project_env) in str(dataset._describe().get("filepath", "")), name
