"""One ``kedro viz build`` of the project per test session, built in a project shim under tmp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdm_kedro.pipeline_registry import discover_templates
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import isolated_env, make_project_shim
from tests.session_share import once_per_session

VIZ_BUILD_COMMAND = "kedro viz build"


@pytest.fixture(scope="session")
def viz_root(tmp_path_factory) -> Path:
    """Scratch root of the viz tests: project shim, data root (screenshots) and MLflow store."""
    return tmp_path_factory.mktemp("viz")


@pytest.fixture(scope="session")
def viz_build(tmp_path_factory) -> Path:
    """The static kedro-viz site of the default pipeline (``build/`` of a project shim).

    Built once per session, for every xdist worker (``tests/session_share.py``).
    """

    def build(root: Path) -> dict:
        shim = make_project_shim(root)
        result = run_documented(VIZ_BUILD_COMMAND, cwd=shim, env=isolated_env(root), timeout=600)
        site = shim / "build"
        # kedro-viz reports a failed build on stdout but still exits 0
        assert (site / "index.html").is_file() and (site / "api" / "main").is_file(), (
            f"`{VIZ_BUILD_COMMAND}` wrote no site:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
        return {"build": site}

    return once_per_session(tmp_path_factory, "viz_build", build)["build"]


@pytest.fixture(scope="session")
def viz_main(viz_build: Path) -> dict:
    """The graph data the site serves (``api/main``)."""
    return json.loads((viz_build / "api" / "main").read_text())


@pytest.fixture(scope="session")
def family_namespaces() -> list[str]:
    """Nested namespaces the templates define (model families such as ``classification``)."""
    names = set()
    for template in discover_templates().values():
        names.update(node.namespace.split(".")[0] for node in template.nodes if node.namespace)
    return sorted(names)
