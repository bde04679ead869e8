"""``kedro viz build`` works offline and its graph data has the fleet's structure."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

import pytest

pytestmark = pytest.mark.slow  # `kedro viz build` of the whole default pipeline


def test_build_writes_a_static_site(viz_build):
    assert (viz_build / "api" / "pipelines").is_dir()
    assert any((viz_build / "api" / "nodes").iterdir())


def test_each_priority_machine_is_a_modular_pipeline(viz_main, fleet_priority):
    assert viz_main["selected_pipeline"] == "__default__"
    modular = viz_main["modular_pipelines"]
    assert set(fleet_priority) <= set(modular)
    top_level = {c["id"] for c in modular["__root__"]["children"] if c["type"] == "modularPipeline"}
    assert top_level == set(fleet_priority)


def test_families_nest_inside_each_machine(viz_main, fleet_priority, family_namespaces):
    modular = viz_main["modular_pipelines"]
    for machine in fleet_priority:
        children = {c["id"] for c in modular[machine]["children"] if c["type"] == "modularPipeline"}
        assert {f"{machine}.{family}" for family in family_namespaces} == children, machine


def test_every_persisted_dataset_shows_in_a_layer(viz_main):
    assert {"raw", "intermediate", "feature", "models", "reporting"} <= set(viz_main["layers"])
    persisted = [
        n
        for n in viz_main["nodes"]
        if n["type"] == "data" and not n["dataset_type"].endswith("MemoryDataset")
    ]
    assert persisted
    assert not [n["name"] for n in persisted if not n["layer"]]
    raw = [n for n in persisted if n["name"].endswith(("raw_train", "raw_val", "raw_test"))]
    assert raw and all(n["layer"] == "raw" for n in raw)


def test_layers_form_no_cycle(viz_main):
    """kedro-viz draws no layer bands at all when the layers' dependencies form a cycle.

    Like kedro-viz, a layered dataset depends on the layered datasets upstream of it through any
    chain of nodes and unlayered (memory) datasets.
    """
    nodes = {n["id"]: n for n in viz_main["nodes"]}
    children: dict[str, list[str]] = {}
    for edge in viz_main["edges"]:
        children.setdefault(edge["source"], []).append(edge["target"])
    examples: dict[tuple[str, str], str] = {}
    for node_id, node in nodes.items():
        if node["type"] != "data" or not node.get("layer"):
            continue
        stack, seen = list(children.get(node_id, [])), set()
        while stack:
            child = stack.pop()
            if child in seen:
                continue
            seen.add(child)
            layer = nodes[child].get("layer") if nodes[child]["type"] == "data" else None
            if layer:
                if layer != node["layer"]:
                    examples[(node["layer"], layer)] = f"{node['name']} -> {nodes[child]['name']}"
                continue
            stack.extend(children.get(child, []))
    sorter = TopologicalSorter({dst: set() for _, dst in examples})
    for src, dst in examples:
        sorter.add(dst, src)
    try:
        sorter.prepare()
    except CycleError as error:
        cycle = error.args[1]
        culprits = {
            pair: examples[pair] for pair in zip(cycle, cycle[1:], strict=False) if pair in examples
        }
        culprits |= {
            pair: examples[pair] for pair in zip(cycle[1:], cycle, strict=False) if pair in examples
        }
        pytest.fail(f"layer cycle {cycle}: {culprits}")
    assert viz_main["layers"], "kedro-viz found no layer order"
