"""The foundation templates on one namespace, run with an in-memory catalog."""

from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from pdm_kedro.pipeline_registry import discover_templates, namespace_for_machine
from tests.conftest import TEST_MACHINE
from tests.pipelines.family_catalog import LoadsNone


def test_generation_validation_features_on_one_namespace(machine, tiny_params):
    templates = discover_templates()
    pipe = sum(
        (
            namespace_for_machine(templates[stage], TEST_MACHINE)
            for stage in ("data_generation", "data_validation", "feature_engineering")
        ),
        Pipeline([]),
    )
    catalog = DataCatalog(
        {
            f"params:{TEST_MACHINE}.machine": MemoryDataset(machine),
            # no production data yet (a first training): the loop's state loads as {}
            f"{TEST_MACHINE}.prediction_log_seen": MemoryDataset({}),
            f"{TEST_MACHINE}.production_labels_seen": MemoryDataset({}),
            f"{TEST_MACHINE}.served_sensor_baselines": LoadsNone(),  # a first run
            **{
                f"params:{k}": MemoryDataset(tiny_params[k])
                for k in (
                    "simulation",
                    "labels",
                    "splits",
                    "validation",
                    "features",
                    "retraining_data",
                )
            },
        }  # fmt: skip
    )
    SequentialRunner().run(pipe, catalog)
    report = catalog[f"{TEST_MACHINE}.validation_report"].load()
    assert report["machine_id"] == TEST_MACHINE
    assert report["rows_in"] == tiny_params["simulation"]["rows_per_machine"]
    assert report["rows_in"] == report["rows_valid"] + report["rows_quarantined"]
    features = catalog[f"{TEST_MACHINE}.features_test"].load()
    assert len(features) == report["splits"]["test"]["rows_valid"] > 0
    used = catalog[f"{TEST_MACHINE}.retraining_data_report"].load()
    assert used["production_rows"] == 0 and used["source"] == "the source's own splits"
    difficulty = catalog[f"{TEST_MACHINE}.label_difficulty"].load()
    assert difficulty["machine_id"] == TEST_MACHINE
