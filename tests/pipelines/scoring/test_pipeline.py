"""The scoring stage on one namespace: an incoming batch answered by the production bundle, equal
to the edge runtime on the same rows; a bad batch is quarantined with every row kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.runtime import predict
from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipeline_registry import (
    build_registry,
    discover_templates,
    namespace_for_machine,
    scoring_template,
)
from pdm_kedro.pipelines.data_validation.nodes import fit_plausibility_reference
from tests.conftest import PROJECT_ROOT
from tests.edge.readings_helpers import as_readings

BAD_ROW = 7


class Kept(MemoryDataset):
    def _release(self) -> None:
        pass


def incoming_batch(raw_test: pd.DataFrame, sensor: str) -> dict[str, pd.DataFrame]:
    """One episode of new readings (no labels), one partition per day, one reading impossible."""
    episode = raw_test[c.EPISODE].unique()[0]
    rows = raw_test[raw_test[c.EPISODE] == episode].drop(columns=list(c.LABEL_COLUMNS))
    rows = rows.sort_values(c.TIMESTAMP).reset_index(drop=True)
    rows.loc[BAD_ROW, sensor] = 1e9  # far outside the sensor's physical range
    days = pd.to_datetime(rows[c.TIMESTAMP]).dt.strftime("%Y-%m-%d")
    return {day: part.reset_index(drop=True) for day, part in rows.groupby(days)}


@pytest.fixture()
def scored(tiny_bundle, tiny_splits, tiny_baselines, machine, tiny_params):
    m = machine["machine_id"]
    bundle = load_bundle(tiny_bundle[0])
    sensor = machine["sensors"][0]["name"]
    batch = incoming_batch(tiny_splits[2], sensor)
    pipe = namespace_for_machine(scoring_template(discover_templates()), m)
    inputs = {
        f"{m}.incoming_readings": MemoryDataset({d: (lambda f=f: f) for d, f in batch.items()}),
        f"{m}.edge_bundle": MemoryDataset(bundle, copy_mode="assign"),
        f"{m}.sensor_baselines": MemoryDataset(tiny_baselines),
        f"params:{m}.machine": MemoryDataset(machine),
        "params:validation": MemoryDataset(tiny_params["validation"]),
        f"{m}.plausibility_reference": MemoryDataset(
            fit_plausibility_reference(tiny_splits[0], machine, tiny_params["validation"])
        ),
    }
    assert pipe.inputs() == set(inputs)
    catalog = DataCatalog({**{n: Kept(copy_mode="assign") for n in pipe.all_outputs()}, **inputs})
    SequentialRunner().run(pipe, catalog)
    return m, bundle, batch, catalog


def test_answers_equal_the_edge_runtime_on_the_same_rows(scored):
    m, bundle, batch, catalog = scored
    log = pd.concat(catalog[f"{m}.prediction_log"].load().values(), ignore_index=True)
    assert sorted(catalog[f"{m}.prediction_log"].load()) == sorted(batch)  # a partition per day
    valid = catalog[f"{m}.validated_incoming"].load()
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    edge = predict(bundle, as_readings(valid, sensors), all_rows=True, from_episode_start=True)
    np.testing.assert_allclose(log["failure.probability"], edge["failure"]["probability"], 1e-6)
    np.testing.assert_array_equal(log["failure.decision"], edge["failure"]["decision"])
    np.testing.assert_allclose(log["rul_hours.value"], edge["rul_hours"]["value"], 1e-6)
    np.testing.assert_allclose(log["anomaly.score"], edge["anomaly"]["score"], 1e-6, 1e-9)
    np.testing.assert_array_equal(log["anomaly.flag"], edge["anomaly"]["flag"])
    for family in bundle.families:  # the versions that answered
        entry = bundle.manifest["models"][family]
        assert log[f"{family}.registry_version"].tolist() == [entry["registry_version"]] * len(log)
        assert set(log[f"{family}.registered_model"]) == {entry["registered_model"]}
    assert log[c.TIMESTAMP].tolist() == valid[c.TIMESTAMP].tolist()


def test_a_bad_batch_is_quarantined_with_every_row_kept(scored):
    m, _, batch, catalog = scored
    report = catalog[f"{m}.incoming_validation_report"].load()
    rows = sum(len(f) for f in batch.values())
    assert report["rows_in"] == rows and report["rows_quarantined"] == 1
    quarantine = catalog[f"{m}.quarantine_incoming"].load()
    valid = catalog[f"{m}.validated_incoming"].load()
    assert len(quarantine) + len(valid) == rows
    assert "in_physical_range" in quarantine[c.QUARANTINE_REASON].iloc[0]


def test_scoring_is_its_own_pipeline_and_never_trains():
    params = load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")
    registry = build_registry(discover_templates(), params)
    names = {n.name.split(".")[-1] for n in registry["scoring"].nodes}
    assert "answer_incoming_batch" in names
    assert not any("train" in n or "fit" in n or "register" in n for n in names)
    assert "answer_incoming_batch" not in {
        n.name.split(".")[-1] for n in registry["__default__"].nodes
    }
