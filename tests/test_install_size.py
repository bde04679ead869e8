"""The install-size figures in the user guide are the recorded ones; the markers pick xgboost-cpu
exactly where it exists (Linux x86-64)."""

import json
import re
import tomllib

from packaging.requirements import Requirement

from tests.conftest import PROJECT_ROOT

RECORD = PROJECT_ROOT / "benchmarks" / "install_size.json"


def xgboost_requirements() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    return [r for r in reqs if r.name in ("xgboost", "xgboost-cpu")]


def picked(system: str, machine: str) -> list[str]:
    env = {"platform_system": system, "platform_machine": machine}
    return [r.name for r in xgboost_requirements() if r.marker is None or r.marker.evaluate(env)]


def test_cpu_build_on_linux_x86_64_only():
    assert picked("Linux", "x86_64") == ["xgboost-cpu"]
    for system, machine in (("Linux", "aarch64"), ("Darwin", "arm64"), ("Windows", "AMD64")):
        assert picked(system, machine) == ["xgboost"], (system, machine)


def test_user_guide_shows_the_recorded_sizes():
    record = json.loads(RECORD.read_text())
    guide = (PROJECT_ROOT / "docs" / "user_guide.md").read_text()
    before, after = record["before_xgboost"], record["after_xgboost_cpu"]
    assert after["nvidia_mb"] == 0 and before["nvidia_mb"] > 400
    assert re.search(
        rf"\| `xgboost` \(before\) \| {before['venv_mb']:,} MB \| {before['nvidia_mb']} MB", guide
    )
    assert re.search(
        rf"\| `xgboost-cpu` on Linux x86-64 \(now\) \| {after['venv_mb']:,} MB \| none", guide
    )
