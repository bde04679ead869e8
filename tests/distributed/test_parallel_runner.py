"""`--runner ParallelRunner` over the model stages stops with one line, not a pickling traceback."""

import pytest

from tests.docs.documented import run_documented
from tests.docs.kedro_cli import isolated_env, make_project_shim

pytestmark = pytest.mark.slow
COMMAND = "kedro run -e small --namespaces motor_siemens_1la7_001 --runner ParallelRunner"


def test_parallel_runner_on_model_stages_explains_itself(tmp_path):
    result = run_documented(
        COMMAND, cwd=make_project_shim(tmp_path), env=isolated_env(tmp_path), check=False
    )
    assert result.returncode == 1
    assert "Error: ParallelRunner cannot run these pipelines:" in result.stderr + result.stdout
    assert "pdm-kedro fleet run" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data" / "01_raw").exists()  # stopped before the first node
