"""Every command in the docs runs as written in the suite, or the docs say why not.

Each command of a fenced ``bash`` block in ``README.md`` and ``docs/*.md`` is either

- run by a test through ``tests/docs/documented.py::run_documented`` (or ``start_documented``)
  with the command string as written, found by a static scan of ``tests/``
  (``tests/docs/coverage.py``); at the end of a whole-suite session ``tests/conftest.py`` checks
  that each of those calls really ran; or
- in a block followed by a paragraph starting ``Not run by the tests:`` and the reason.

``python`` blocks follow the same rule; the unmarked ones run in the shared small run's project
(``tests/test_end_to_end.py::test_docs_python_blocks_run``). This module also runs the cheap
commands of the user guide (the registry, a run with a ``--params`` override).
"""

from __future__ import annotations

import re
import subprocess

import pandas as pd
import pytest

from pdm_kedro.contract import SPLITS
from tests.conftest import TEST_MACHINE
from tests.docs.coverage import documented_calls
from tests.docs.doc_commands import NOT_RUN, documented_blocks, documented_commands
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import isolated_env, kedro_executable, make_project_shim

REGISTRY_LIST = "kedro registry list"
REGISTRY_DESCRIBE = f"kedro registry describe {TEST_MACHINE}"
PARAMS_RUN = (
    f"kedro run -e small --namespaces {TEST_MACHINE} --params simulation.rows_per_machine=6000"
)
MIN_REASON_CHARS = 20


@pytest.fixture(scope="module")
def blocks():
    return documented_blocks()


@pytest.fixture(scope="module")
def calls() -> dict[str, list[str]]:
    return documented_calls()


def test_docs_have_commands(blocks):
    assert len(documented_commands(blocks)) >= 20


def test_every_documented_command_runs_or_says_why_not(blocks, calls):
    missing = [
        f"{block.path}:{block.line}: {command}"
        for block in blocks
        if block.language == "bash" and block.not_run_reason is None
        for command in block.commands
        if command not in calls
    ]
    assert not missing, (
        "documented commands no test runs as written (call run_documented with the command, or "
        f"start the paragraph after the block with '{NOT_RUN} <why>'):\n" + "\n".join(missing)
    )


def test_not_run_marks_give_a_reason(blocks):
    short = [
        f"{b.path}:{b.line}" for b in blocks if b.not_run_reason is not None
        if len(b.not_run_reason) < MIN_REASON_CHARS
    ]  # fmt: skip
    assert not short, f"'{NOT_RUN}' without a reason after it: {short}"


def test_tests_run_only_documented_commands(blocks, calls):
    """A run_documented call whose command no document holds is a stand-in or a stale copy."""
    documented = set(documented_commands(blocks))
    stale = {command: where for command, where in calls.items() if command not in documented}
    assert not stale, f"run_documented with commands the docs do not hold: {stale}"


def test_no_commands_outside_bash_blocks():
    """Shell commands in other fences (sh, shell, console) would escape this check."""
    from tests.docs.doc_commands import documented_paths

    fences = {
        f"{path.name}: {match}"
        for path in documented_paths()
        for match in re.findall(r"^```(sh|shell|console|zsh)\s*$", path.read_text(), re.M)
    }
    assert not fences, fences


# ---------------------------------------------------------------------------------------------
# The user guide's cheap commands, run as written in a project shim with an isolated data root


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    root = tmp_path_factory.mktemp("doc_commands")
    return make_project_shim(root), isolated_env(root), root / "data"


@pytest.mark.slow
def test_registry_list_names_the_default_fleet_and_machine_pipelines(cli):
    shim, env, _ = cli
    output = run_documented(REGISTRY_LIST, cwd=shim, env=env, timeout=300).stdout
    registered = set(re.findall(r"^- (\S+)$", output, flags=re.MULTILINE))
    assert {"__default__", "fleet", TEST_MACHINE, "cnc_haas_vf2_001"} <= registered
    assert {"data_generation", "classification", "reporting"} <= registered


@pytest.mark.slow
def test_registry_describe_lists_the_machines_nodes(cli):
    shim, env, _ = cli
    output = run_documented(REGISTRY_DESCRIBE, cwd=shim, env=env, timeout=300).stdout
    assert "Nodes:" in output
    for node in ("simulate_machine_history", "split_by_episode", "write_model_card"):
        assert node in output, node


@pytest.mark.slow
def test_params_override_reaches_the_simulator(cli):
    shim, env, data = cli
    run_documented(PARAMS_RUN, cwd=shim, env=env, timeout=900)
    raw = data / "01_raw" / TEST_MACHINE
    assert sum(len(pd.read_parquet(raw / f"{split}.parquet")) for split in SPLITS) == 6000
    report = (data / "08_reporting" / TEST_MACHINE / "model_card.md").read_text()
    assert TEST_MACHINE in report


@pytest.mark.slow
def test_too_short_a_history_stops_with_the_reason_the_user_guide_gives(tmp_path):
    """The user guide: 6,000 rows on the default configuration hold too few machine lives."""
    result = subprocess.run(
        [kedro_executable(), "run", "--pipelines", "data_generation", "--namespaces", TEST_MACHINE,
         "--params", "simulation.rows_per_machine=6000"],
        cwd=make_project_shim(tmp_path), env=isolated_env(tmp_path), capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    assert "split_by_episode needs at least 3 episodes" in result.stdout + result.stderr
