"""The progress display's stage of every node, read from the stage templates."""

from __future__ import annotations

from pathlib import Path

from pdm_kedro.console.hooks import FLEET, node_group, stage_map
from pdm_kedro.pipeline_registry import discover_templates

PROJECT = Path(__file__).resolve().parents[2]


def test_every_node_gets_the_stage_whose_registered_pipeline_holds_it(isolated_project_env) -> None:
    """The templates give each node of ``__default__`` the stage of the registered stage pipeline
    that holds it (what the display grouped by before), fleet-level nodes included."""
    from kedro.framework.project import pipelines  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(PROJECT)
    stages = stage_map()
    expected = {}
    for stage in discover_templates():
        try:
            stage_pipeline = pipelines[stage]
        except KeyError:
            continue
        for node in stage_pipeline.nodes:
            expected.setdefault(node.name, stage)
    default = pipelines["__default__"]
    got = {node.name: node_group(node, stages) for node in default.nodes}
    checked = 0
    for name, (machine, stage) in got.items():
        if name in expected:
            assert stage == expected[name], name
            checked += 1
        assert machine == FLEET or name.startswith(f"{machine}.")
    assert checked == len(default.nodes)


def test_a_fleet_level_node_takes_the_stage_of_its_function_module() -> None:
    """Fleet-level nodes are in no template: their function's module names the stage."""
    from kedro.pipeline import node  # noqa: PLC0415

    from pdm_kedro.pipelines.diagnosis import nodes as diagnosis_nodes  # noqa: PLC0415
    from pdm_kedro.pipelines.reporting import nodes as reporting_nodes  # noqa: PLC0415

    fleet_report = node(reporting_nodes.build_fleet_metrics, "m", "fleet_metrics", name="fleet")
    diagnosis = node(diagnosis_nodes.recommended_action, ["a", "b"], "c", name="diagnosis_x")
    other = node(sorted, "x", "y", name="not_of_a_stage")
    assert node_group(fleet_report, {}) == (FLEET, "reporting")
    assert node_group(diagnosis, {}) == (FLEET, "diagnosis")
    assert node_group(other, {}) == (FLEET, "reporting")
    assert node_group(diagnosis, {"diagnosis_x": "edge_export"}) == (FLEET, "edge_export")
