"""``kedro viz build`` works offline and its graph data has the fleet's structure."""

from __future__ import annotations


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
    """kedro-viz draws no layer bands at all when the layers' dependencies form a cycle."""
    nodes = {n["id"]: n for n in viz_main["nodes"]}
    inputs: dict[str, list[dict]] = {}
    outputs: dict[str, list[dict]] = {}
    for edge in viz_main["edges"]:
        source, target = nodes[edge["source"]], nodes[edge["target"]]
        if source["type"] == "data" and target["type"] == "task":
            inputs.setdefault(target["id"], []).append(source)
        elif source["type"] == "task" and target["type"] == "data":
            outputs.setdefault(source["id"], []).append(target)
    graph: dict[str, set[str]] = {}
    examples: dict[tuple[str, str], str] = {}
    for task, ins in inputs.items():
        for src in ins:
            for dst in outputs.get(task, []):
                if src.get("layer") and dst.get("layer") and src["layer"] != dst["layer"]:
                    graph.setdefault(src["layer"], set()).add(dst["layer"])
                    examples[(src["layer"], dst["layer"])] = f"{src['name']} -> {dst['name']}"
    order = {layer: i for i, layer in enumerate(viz_main["layers"])}
    backwards = {
        pair: example for pair, example in examples.items() if order[pair[0]] > order[pair[1]]
    }
    assert viz_main["layers"], "kedro-viz found no layer order (cycle?)"
    assert not backwards, f"layer edges against the drawn order: {backwards}"
