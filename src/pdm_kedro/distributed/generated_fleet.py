"""Fleets of any size for scale tests: copies of the configured machines under new ids.

``write_generated_fleet(conf_root, n)`` writes a Kedro configuration environment
``<conf_root>/<env>/parameters/machines/`` holding ``n - len(base)`` copies of the machines of
``conf/base`` (same sensors, failure modes and source; only the id changes), so base plus the
environment define ``n`` machines. The priority list is the base one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

BASE_MACHINES = Path("base") / "parameters" / "machines"


def generated_id(template_id: str, index: int) -> str:
    """The id of the ``index``-th copy of ``template_id`` (keeps the machine-id pattern)."""
    return f"{template_id}_g{index:05d}"


def make_conf_source(target: Path, project_conf: Path) -> Path:
    """A conf source at ``target`` whose ``base`` and named environments link to the project's."""
    target.mkdir(parents=True, exist_ok=True)
    for child in project_conf.iterdir():
        link = target / child.name
        if child.is_dir() and not link.exists():
            link.symlink_to(child.resolve(), target_is_directory=True)
    return target


def write_generated_fleet(conf_root: Path, n_machines: int, env: str | None = None) -> str:
    """Write an environment of ``conf_root`` that makes the fleet ``n_machines`` machines long.

    Returns the environment's name (``fleet_<n>`` unless given).
    """
    env = env or f"fleet_{n_machines}"
    templates = sorted((conf_root / BASE_MACHINES).glob("*.yml"))
    if n_machines < len(templates):
        raise ValueError(f"a generated fleet has at least the {len(templates)} base machines")
    folder = conf_root / env / "parameters" / "machines"
    if (conf_root / env).exists():
        shutil.rmtree(conf_root / env)
    folder.mkdir(parents=True)
    blocks = [yaml.safe_load(path.read_text()) for path in templates]
    for index in range(n_machines - len(templates)):
        ((template_id, block),) = blocks[index % len(blocks)].items()
        new_id = generated_id(template_id, index)
        machine = dict(block["machine"], machine_id=new_id)
        (folder / f"{new_id}.yml").write_text(
            yaml.safe_dump({new_id: {"machine": machine}}, sort_keys=False)
        )
    return env
