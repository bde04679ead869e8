"""The classification template on one namespace with an in-memory catalog; and no test-split row
reaches any fitting or threshold choice."""

import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pdm_kedro.pipeline_registry import discover_templates, namespace_for_machine
from pdm_kedro.pipelines.data_ingestion.nodes import no_hidden_state
from tests.conftest import TEST_MACHINE
from tests.pipelines.classification.conftest import shrink
from tests.pipelines.edge_export.helpers import train_tiny_models
from tests.pipelines.family_catalog import promotion_datasets

M = TEST_MACHINE


class KeptMemoryDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so tests can read intermediate outputs."""

    def _release(self) -> None:
        pass


def run_family(  # noqa: PLR0913
    family,
    tiny_features,
    machine,
    tiny_params,
    family_params,
    features_test=None,
    hidden=None,
    extra=None,
    classifier=None,
):
    """Run a family template on one namespace; ``hidden`` is the hidden state per split (by
    default empty frames: no ceiling); ``extra``: more input datasets by name; ``classifier``:
    the failure classifier the regression template reads (default: the tiny one)."""
    if classifier is None and family == "regression":
        classifier = train_tiny_models(tiny_features)["classification"]
    pipe = namespace_for_machine(discover_templates()[family], M)
    test = tiny_features["test"] if features_test is None else features_test
    if hidden is None:
        hidden = dict(zip(("train", "val", "test"), no_hidden_state(None), strict=True))
    datasets = {
        **{f"{M}.hidden_state_{split}": frame for split, frame in hidden.items()},
        f"{M}.features_train": tiny_features["train"],
        f"{M}.features_val": tiny_features["val"],
        f"{M}.features_test": test,
        f"params:{M}.machine": machine,
        "params:labels": tiny_params["labels"],
        f"params:{family}": family_params,
        **({f"{M}.classification.model": classifier} if family == "regression" else {}),
        **(extra or {}),
    }
    catalog = DataCatalog(
        {
            **{name: KeptMemoryDataset() for name in pipe.all_outputs()},
            **{name: MemoryDataset(value) for name, value in datasets.items()},
            **promotion_datasets(M, family),
        }
    )
    SequentialRunner().run(pipe, catalog)
    return pipe, catalog


def test_classification_pipeline_on_one_namespace(
    tiny_features, tiny_hidden_state, machine, tiny_params, clf_params
):
    pipe, catalog = run_family(
        "classification", tiny_features, machine, tiny_params, clf_params, None, tiny_hidden_state
    )
    assert {n.namespace for n in pipe.nodes} == {f"{M}.classification"}
    metrics = catalog[f"{M}.classification.metrics"].load()
    assert metrics["machine_id"] == M and metrics["family"] == "classification"
    tracked = catalog[f"{M}.classification.mlflow_metrics"].load()
    assert tracked["f1"]["value"] == metrics["metrics"][0]["value"]
    entry = catalog[f"{M}.classification.registered_model"].load()
    assert entry["score_name"] == "f1" and entry["trained_until"]
    assert entry["model"]["threshold"] == catalog[f"{M}.classification.model"].load()["threshold"]
    assert entry["test_fingerprint"] and entry["score"] == metrics["metrics"][0]["value"]
    assert metrics["ceiling"]["available"]
    rows = {row["metric"]: row for row in metrics["metrics"]}
    assert all(rows[m]["ceiling"] is not None for m in ("pr_auc", "roc_auc"))
    for metric in ("warned_24h_fraction", "false_alarms_per_1000h", "median_lead_time_h"):
        assert rows[metric]["ceiling"] is None and rows[metric]["baseline"] is not None
    assert rows["f1"]["value_lo"] <= rows["f1"]["value_hi"]
    assert metrics["events"]["model"]["episodes"]
    production = catalog[f"{M}.classification.production_model"].load()
    assert production["decision"] == "promote"  # no champion yet: the first version is promoted
    assert production["production"]["model"]["threshold"] == entry["model"]["threshold"]


def scrambled(frame: pd.DataFrame) -> pd.DataFrame:
    """The test split with shuffled labels and noise on every feature."""
    rng = np.random.default_rng(0)
    out = frame.copy()
    out["failure_within_horizon"] = rng.permutation(out["failure_within_horizon"].to_numpy())
    out["rul"] = rng.permutation(out["rul"].to_numpy())
    numeric = out.columns[out.columns.get_loc("regime_code") + 1 :]
    out[numeric] = out[numeric] + rng.normal(0, 5, size=(len(out), len(numeric)))
    return out


def test_no_test_row_reaches_fitting_or_threshold(
    tiny_features, machine, tiny_params, clf_params, project_params
):
    reg_params = shrink(project_params["regression"])
    for family, params in (("classification", clf_params), ("regression", reg_params)):
        _, base = run_family(family, tiny_features, machine, tiny_params, params)
        _, other = run_family(
            family, tiny_features, machine, tiny_params, params, scrambled(tiny_features["test"])
        )
        a = base[f"{M}.{family}.model"].load()
        b = other[f"{M}.{family}.model"].load()
        assert a.get("threshold") == b.get("threshold")
        val = tiny_features["val"][a["feature_names"]].to_numpy(np.float32)
        np.testing.assert_array_equal(a["estimator"].predict(val), b["estimator"].predict(val))
        # ...while the test metrics do see the scrambled split
        assert base[f"{M}.{family}.metrics"].load() != other[f"{M}.{family}.metrics"].load()


def test_only_scoring_nodes_read_the_test_split():
    templates = discover_templates()
    scoring = {
        "predict_test_failures",
        "evaluate_failure_model",
        "register_model",
        "predict_test_rul",
        "evaluate_rul_model",
        "score_for_promotion",
        "measure_ceiling",  # scores its hidden-state model on test
        "assess_alarm_events",  # event-level test figures
    }
    for family in ("classification", "regression"):
        readers = {
            n.name.split(".")[-1] for n in templates[family].nodes if "features_test" in n.inputs
        }
        assert readers and readers <= scoring, (family, readers)
