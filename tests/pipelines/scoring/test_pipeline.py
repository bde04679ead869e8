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
from pdm_kedro.pipelines.scoring.gate import NoNewBatchError
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


def run_scoring(
    m, bundle, batch, machine, baselines, validation, seen=None, log=None, reference=None
):
    """One scoring run over ``batch`` (partitions) with the loop's state ``seen`` (accounts)
    and ``log`` (prediction log partitions) of earlier runs; returns the catalog.
    ``reference``: the training run's plausibility reference (default: none fitted, only the
    range and magnitude checks)."""
    pipe = namespace_for_machine(scoring_template(discover_templates()), m)
    inputs = {
        f"{m}.incoming_readings": MemoryDataset({d: (lambda f=f: f) for d, f in batch.items()}),
        f"{m}.scoring_batches_seen": MemoryDataset(dict(seen or {})),
        f"{m}.prediction_log_seen": MemoryDataset(dict(log or {})),
        f"{m}.edge_bundle": MemoryDataset(bundle, copy_mode="assign"),
        f"{m}.sensor_baselines": MemoryDataset(baselines),
        f"params:{m}.machine": MemoryDataset(machine),
        "params:validation": MemoryDataset(validation),
        f"{m}.plausibility_reference": MemoryDataset(reference or {"sensors": {}}),
    }
    assert pipe.inputs() == set(inputs)
    catalog = DataCatalog({**{n: Kept(copy_mode="assign") for n in pipe.all_outputs()}, **inputs})
    SequentialRunner().run(pipe, catalog)
    return catalog


@pytest.fixture()
def scored(tiny_bundle, tiny_splits, tiny_baselines, machine, tiny_params):
    m = machine["machine_id"]
    bundle = load_bundle(tiny_bundle[0])
    sensor = machine["sensors"][0]["name"]
    batch = incoming_batch(tiny_splits[2], sensor)
    reference = fit_plausibility_reference(tiny_splits[0], machine, tiny_params["validation"])
    catalog = run_scoring(
        m, bundle, batch, machine, tiny_baselines, tiny_params["validation"], reference=reference
    )
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
    # the RUL as answered (capped while the alarm is on) and the model's own, as the edge has them
    np.testing.assert_allclose(log["rul_hours.model_value"], edge["rul_hours"]["model_value"], 1e-6)
    np.testing.assert_array_equal(
        log["rul_hours.capped_by_alarm"], edge["rul_hours"]["capped_by_alarm"]
    )
    np.testing.assert_allclose(log["anomaly.score"], edge["anomaly"]["score"], 1e-6, 1e-9)
    np.testing.assert_array_equal(log["anomaly.flag"], edge["anomaly"]["flag"])
    for family in bundle.families:  # the versions that answered
        entry = bundle.manifest["models"][family]
        assert log[f"{family}.registry_version"].tolist() == [entry["registry_version"]] * len(log)
        assert set(log[f"{family}.registered_model"]) == {entry["registered_model"]}
    assert log[c.TIMESTAMP].tolist() == valid[c.TIMESTAMP].tolist()
    assert set(log["batch_file"]) == set(batch)  # each row names the file it came from


def test_a_bad_batch_is_quarantined_with_every_row_kept(scored):
    m, _, batch, catalog = scored
    report = catalog[f"{m}.incoming_validation_report"].load()
    rows = sum(len(f) for f in batch.values())
    assert report["rows_in"] == rows and report["rows_quarantined"] == 1
    quarantine = catalog[f"{m}.quarantine_incoming"].load()
    valid = catalog[f"{m}.validated_incoming"].load()
    assert len(quarantine) + len(valid) == rows
    assert "in_physical_range" in quarantine[c.QUARANTINE_REASON].iloc[0]
    accounts = catalog[f"{m}.scoring_batches"].load()
    assert sorted(accounts) == sorted(batch)
    assert all(a["rows_conserved"] for a in accounts.values())
    assert sum(a["rows_quarantined"] for a in accounts.values()) == 1
    assert sum(a["rows_in"] for a in accounts.values()) == rows


def test_a_later_cycle_scores_only_the_new_file_and_equals_a_full_run(
    scored, machine, tiny_baselines, tiny_params
):
    """Incremental: the first days scored, then the last day alone with the earlier rows of its
    episode as context: its answers equal those of the run over every day."""
    m, bundle, batch, full = scored
    days = sorted(batch)
    first = {d: batch[d] for d in days[:-1]}
    args = (machine, tiny_baselines, tiny_params["validation"])
    early = run_scoring(m, bundle, first, *args)
    later = run_scoring(
        m, bundle, batch, *args,
        seen=early[f"{m}.scoring_batches"].load(), log=early[f"{m}.prediction_log"].load(),
    )  # fmt: skip
    assert later[f"{m}.incoming_files"].load() == [days[-1]]
    new = later[f"{m}.prediction_log"].load()
    assert sorted(new) == [days[-1]]
    expected = full[f"{m}.prediction_log"].load()[days[-1]]
    pd.testing.assert_frame_equal(new[days[-1]], expected)


def test_bad_files_are_rejected_rows_conserved_and_nothing_scored_twice(
    scored, machine, tiny_baselines, tiny_params
):
    m, bundle, batch, full = scored
    sensor = machine["sensors"][0]["name"]
    days = sorted(batch)
    last = batch[days[-1]]
    shuffled = last.iloc[[1, 0, *range(2, len(last))]].reset_index(drop=True)  # out of order
    nxt = last.assign(**{c.TIMESTAMP: last[c.TIMESTAMP] + pd.Timedelta(days=1)})
    later = {
        **{d: batch[d] for d in days[:-1]},
        days[-1]: shuffled,
        f"{days[-2]}-resent": batch[days[-2]],  # a day that arrives twice
        "z-unknown": nxt.assign(mystery_sensor=1.0),
        "z-dtype": nxt.assign(**{sensor: nxt[sensor].astype(str)}),
    }
    args = (machine, tiny_baselines, tiny_params["validation"])
    first = {d: batch[d] for d in days[:-1]}
    early = run_scoring(m, bundle, first, *args)
    catalog = run_scoring(
        m, bundle, later, *args,
        seen=early[f"{m}.scoring_batches"].load(), log=early[f"{m}.prediction_log"].load(),
    )  # fmt: skip
    accounts = catalog[f"{m}.scoring_batches"].load()
    assert sorted(accounts) == sorted([days[-1], f"{days[-2]}-resent", "z-dtype", "z-unknown"])
    for name, account in accounts.items():
        assert account["rows_in"] == len(later[name]), name
        assert account["rows_in"] == account["rows_scored"] + account["rows_quarantined"], name
        assert account["rows_conserved"]
    resent = accounts[f"{days[-2]}-resent"]
    assert resent["rows_scored"] == 0 and resent["rows_rejected_by_gate"] == len(batch[days[-2]])
    assert "already received" in resent["reasons"][0]
    assert accounts["z-unknown"]["rows_scored"] == 0
    assert "unknown column(s) ['mystery_sensor']" in accounts["z-unknown"]["reasons"][0]
    assert f"column '{sensor}' has dtype" in accounts["z-dtype"]["reasons"][0]
    assert accounts[days[-1]]["rows_rejected_by_gate"] == 1
    assert any("out of order" in r for r in accounts[days[-1]]["reasons"])
    log = catalog[f"{m}.prediction_log"].load()
    assert sorted(log) == [days[-1]]  # the resent day is not scored again
    assert not log[days[-1]].duplicated([c.EPISODE, c.TIMESTAMP]).any()
    rejected = catalog[f"{m}.rejected_incoming"].load()
    assert len(rejected["z-unknown"]) == len(nxt) and c.QUARANTINE_REASON in rejected["z-dtype"]


def test_scoring_is_its_own_pipeline_and_never_trains():
    params = load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")
    registry = build_registry(discover_templates(), params)
    names = {n.name.split(".")[-1] for n in registry["scoring"].nodes}
    assert "answer_incoming_batch" in names
    assert not any("train" in n or "fit" in n or "register" in n for n in names)
    assert "answer_incoming_batch" not in {
        n.name.split(".")[-1] for n in registry["__default__"].nodes
    }


def test_a_run_whose_only_new_file_is_rejected_still_writes_its_account(
    scored, machine, tiny_baselines, tiny_params
):
    m, bundle, batch, full = scored
    sensor = machine["sensors"][0]["name"]
    last = batch[max(batch)]
    broken = last.assign(**{sensor: last[sensor].astype(str)})
    catalog = run_scoring(
        m, bundle, {**batch, "z-dtype": broken}, machine, tiny_baselines, tiny_params["validation"],
        seen=full[f"{m}.scoring_batches"].load(), log=full[f"{m}.prediction_log"].load(),
    )  # fmt: skip
    account = catalog[f"{m}.scoring_batches"].load()
    assert list(account) == ["z-dtype"]
    assert account["z-dtype"]["rows_in"] == account["z-dtype"]["rows_quarantined"] == len(broken)
    assert catalog[f"{m}.prediction_log"].load() == {}  # nothing answered again
    with pytest.raises(NoNewBatchError, match="every row of the new incoming file"):
        run_scoring(
            m, bundle, {"z-dtype": broken}, machine, tiny_baselines, tiny_params["validation"]
        )
