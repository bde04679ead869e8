"""The simulator's hidden state reaches the metrics only: no model, feature, threshold or choice
reads it (structural, on the registered pipelines of the project's own config)."""

from __future__ import annotations

import re

from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipeline_registry import build_registry, discover_templates

HIDDEN = re.compile(r"(^|\.)hidden_state_(train|val|test)$")
# the ceiling nodes of the classification and regression families; the diagnosis' evaluation
READERS = {"measure_ceiling", "evaluate_diagnosis"}
# Nodes that fit, choose or build what a model uses (features, trees, thresholds, baselines).
FITTING_NODE = re.compile(r"^(train|fit|choose|package|select|build_\w+_window_features)")
NEVER_DOWNSTREAM = re.compile(
    r"\.(model|classifier|decision_threshold|baseline|baseline_rule|features_\w+|test_predictions|"
    r"sensor_baselines|detector_selection|test_scores|backtest_\w+|hourly_\w+)$"
)


def registry():
    return build_registry(discover_templates(), load_project_parameters())


def test_only_ceiling_nodes_read_the_hidden_state():
    pipe = registry()["__default__"]
    hidden = {name for name in pipe.all_outputs() if HIDDEN.search(name)}
    assert hidden, "the simulator writes hidden_state_<split> for every simulated machine"
    readers = {n.name.split(".")[-1] for n in pipe.nodes if set(n.inputs) & hidden}
    assert readers == READERS, readers


def test_nothing_a_model_uses_is_downstream_of_the_hidden_state():
    pipe = registry()["__default__"]
    hidden = sorted(name for name in pipe.all_outputs() if HIDDEN.search(name))
    downstream = pipe.from_inputs(*hidden)
    produced = set(downstream.all_outputs())
    assert not {name for name in produced if NEVER_DOWNSTREAM.search(name)}
    # the metrics documents carry the ceiling on to reports, the registry entry and the edge
    # manifest, but no node that fits or chooses anything is downstream of it
    assert any(FITTING_NODE.match(n.name.split(".")[-1]) for n in pipe.nodes)
    fitting = {n.name for n in downstream.nodes if FITTING_NODE.match(n.name.split(".")[-1])}
    assert not fitting, fitting
    assert {n.name.split(".")[-1] for n in downstream.nodes} >= {
        "measure_ceiling",
        "write_model_card",
    }
