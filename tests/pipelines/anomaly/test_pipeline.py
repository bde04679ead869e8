"""The anomaly template on one namespace, and proof that the test split only gets scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pdm_kedro import contract as c
from pdm_kedro.pipeline_registry import namespace_for_machine
from pdm_kedro.pipelines.anomaly import create_pipeline
from tests.conftest import TEST_MACHINE
from tests.pipelines.family_catalog import promotion_datasets

NS = f"{TEST_MACHINE}.anomaly"
WINDOWS_HOURS = [3, 12, 48]  # conf/base/parameters.yml features.windows_hours (the tiny tables')
# Everything the family fits or chooses: none of it may depend on the test split.
FITTED = ("healthy_train_rows", "isolation_forest", "one_class_svm", "pca_t2q", "detector_selection",
          "model", "baseline_rule")  # fmt: skip


@pytest.fixture(scope="module")
def params(project_params: dict) -> dict:
    out = {**project_params["anomaly"]}
    out["healthy"] = {**out["healthy"], "max_rows": 1500}
    out["detectors"] = {k: {**v, "fit_rows": 1200} for k, v in out["detectors"].items()}
    return out


class KeptDataset(MemoryDataset):
    """An in-memory dataset the runner does not release, to inspect intermediate results."""

    def _release(self) -> None:
        pass


def run_family(features: dict[str, pd.DataFrame], machine: dict, params: dict) -> DataCatalog:
    """Run the namespaced template on in-memory feature tables; return the catalog."""
    pipe = namespace_for_machine(create_pipeline(), TEST_MACHINE)
    catalog = DataCatalog(
        {
            f"params:{TEST_MACHINE}.machine": MemoryDataset(machine),
            "params:anomaly": MemoryDataset(params),
            "params:features": MemoryDataset({"windows_hours": WINDOWS_HOURS}),
            **promotion_datasets(TEST_MACHINE, "anomaly"),
            **{
                f"{TEST_MACHINE}.features_{split}": MemoryDataset(frame)
                for split, frame in features.items()
            },
            **{
                f"{NS}.{name}": KeptDataset(copy_mode="assign")
                for name in (*FITTED, "test_scores", "metrics", "score_distribution_plot")
            },
        }
    )
    SequentialRunner().run(pipe, catalog)
    return catalog


def test_pipeline_on_one_namespace(tiny_features, machine, params):
    catalog = run_family(tiny_features, machine, params)
    model = catalog[f"{NS}.model"].load()
    assert model["family"] == "anomaly"
    assert model["detector"] in {"isolation_forest", "one_class_svm", "pca_t2q"}
    metrics = catalog[f"{NS}.metrics"].load()
    assert metrics["machine_id"] == TEST_MACHINE
    assert metrics["n_rows"] == len(tiny_features["test"])
    assert {row["metric"] for row in metrics["metrics"]} >= {"f1", "false_alarm_rate"}
    assert catalog[f"{NS}.test_scores"].load()["score"].notna().all()
    assert catalog[f"{NS}.score_distribution_plot"].load() is not None


def test_no_fitting_or_choice_depends_on_the_test_split():
    pipe = namespace_for_machine(create_pipeline(), TEST_MACHINE)
    downstream = pipe.from_inputs(f"{TEST_MACHINE}.features_test")
    touched = downstream.all_outputs()
    assert not touched & {f"{NS}.{name}" for name in FITTED}
    assert touched >= {f"{NS}.test_scores", f"{NS}.metrics"}


def test_scrambled_test_split_changes_no_fitted_value(tiny_features, machine, params):
    """Replace every test reading and label by noise: the fitted artefacts stay identical."""
    rng = np.random.default_rng(0)
    test = tiny_features["test"].copy()
    numeric = [col for col in test.columns if col not in c.ID_COLUMNS]
    test[numeric] = rng.normal(size=(len(test), len(numeric))) * 1e3
    test[c.ANOMALY] = rng.integers(0, 2, size=len(test))
    real = run_family(tiny_features, machine, params)
    scrambled = run_family({**tiny_features, "test": test}, machine, params)
    assert real[f"{NS}.detector_selection"].load() == scrambled[f"{NS}.detector_selection"].load()
    assert real[f"{NS}.baseline_rule"].load() == scrambled[f"{NS}.baseline_rule"].load()
    pd.testing.assert_frame_equal(
        real[f"{NS}.healthy_train_rows"].load(), scrambled[f"{NS}.healthy_train_rows"].load()
    )
    model_a, model_b = real[f"{NS}.model"].load(), scrambled[f"{NS}.model"].load()
    x = tiny_features["val"][model_a["feature_names"]].to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(
        model_a["estimator"].decision_function(x), model_b["estimator"].decision_function(x)
    )
    # ...while the test metrics do see the scrambled split.
    assert real[f"{NS}.metrics"].load() != scrambled[f"{NS}.metrics"].load()
