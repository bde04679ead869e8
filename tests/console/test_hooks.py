"""The progress display's stage of every node, read from the stage templates."""

from __future__ import annotations

from pathlib import Path

from pdm_kedro.console.hooks import FLEET, node_group, stage_map, stage_names

PROJECT = Path(__file__).resolve().parents[2]


def test_every_node_gets_the_stage_whose_registered_pipeline_holds_it(isolated_project_env) -> None:
    """The templates give each node of ``__default__`` the stage of the registered stage pipeline
    that holds it (what the display grouped by before), fleet-level nodes included."""
    from kedro.framework.project import pipelines  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(PROJECT)
    stages = stage_map()
    expected = {}
    for stage in stage_names():
        try:
            stage_pipeline = pipelines[stage]
        except KeyError:
            continue
        for node in stage_pipeline.nodes:
            expected.setdefault(node.name, stage)
    default = pipelines["__default__"]
    got = {node.name: node_group(node, stages) for node in default.nodes}
    assert got["build_fleet_metrics"] == (FLEET, "reporting")
    assert got["build_diagnosis_report"] == (FLEET, "diagnosis")
    checked = 0
    for name, (machine, stage) in got.items():
        if name in expected:
            assert stage == expected[name], name
            checked += 1
        assert machine == FLEET or name.startswith(f"{machine}.")
    assert checked == len(default.nodes)
