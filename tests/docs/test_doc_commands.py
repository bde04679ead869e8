"""Every command in the docs is exercised, so the docs cannot rot.

Each command of a fenced ``bash`` block in ``docs/*.md`` and ``README.md`` must appear in
``EXERCISED`` with its evidence, checked here:

- ``Runs()``: this module runs it (cheap commands), in a project shim with an isolated data root;
- ``In(path, fragments)``: the named test file (or ``.ci/run``) runs it; the file must contain
  each fragment (the command or the exact arguments it passes);
- ``Pipelines(names)``: a ``kedro run --pipelines`` too long for the suite (the fleet, one more
  machine): the names must be registered pipelines (``kedro registry list``) and the same CLI form
  is run on a small pipeline by ``tests/notebooks``;
- ``Script(path, flags)``: a benchmark script: it must exist and its ``--help`` must list the
  documented flags;
- ``Extra(name)``: ``pip install -e ".[name]"``: the extra must be declared in pyproject.toml;
- ``Env(names)``: ``export`` of the project's environment variables.

A new command without an entry fails ``test_every_documented_command_is_exercised``; an entry no
document uses any more fails ``test_no_stale_entries``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass

import pandas as pd
import pytest

from pdm_kedro.contract import SPLITS
from tests.conftest import TEST_MACHINE
from tests.docs.doc_commands import documented_commands
from tests.docs.kedro_cli import PROJECT_ROOT, isolated_env, make_project_shim, run_kedro


@dataclass(frozen=True)
class Runs:
    """Run by this module."""


@dataclass(frozen=True)
class In:
    path: str
    fragments: tuple[str, ...]


@dataclass(frozen=True)
class Pipelines:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Script:
    path: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Extra:
    name: str


@dataclass(frozen=True)
class Env:
    names: tuple[str, ...]


@dataclass(frozen=True)
class NotRun:
    """Documented, followed in its document by a paragraph starting ``Not run by the tests:``."""

    reason: str


NOTEBOOK_TEST = "tests/notebooks/test_notebooks.py"
CI = ".ci/run"
PROJECT_ENV = ("KEDRO_DISABLE_TELEMETRY", "PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI")
SMALL_PARAMS_RUN = (
    f"kedro run -e small --pipelines data_generation --namespaces {TEST_MACHINE} "
    "--params simulation.rows_per_machine=3000"
)

EXERCISED = {
    # installation and tests
    "pip install -e .": In(CI, ('pip install -q -e ".[dev]"',)),
    'pip install -e ".[dev]"': In(CI, ('pip install -q -e ".[dev]"',)),
    'pip install -e ".[jupyter]"': Extra("jupyter"),
    "python -m pytest": In(CI, ("python -m pytest",)),
    "KEDRO_DISABLE_TELEMETRY=1 python -m pytest": In(
        CI, ("KEDRO_DISABLE_TELEMETRY=1", "python -m pytest")
    ),
    # environment
    "export KEDRO_DISABLE_TELEMETRY=1": Env(("KEDRO_DISABLE_TELEMETRY",)),
    "export PDM_DATA_ROOT=/tmp/pdm/data PDM_MLFLOW_TRACKING_URI=sqlite:////tmp/pdm/mlflow.db": Env(
        ("PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI")
    ),
    "export KEDRO_DISABLE_TELEMETRY=1 PDM_DATA_ROOT=/tmp/edge_bench/data": Env(
        ("KEDRO_DISABLE_TELEMETRY", "PDM_DATA_ROOT")
    ),
    # inspecting and running pipelines
    "kedro registry list": Runs(),
    f"kedro registry describe {TEST_MACHINE}": Runs(),
    f"kedro run --namespaces {TEST_MACHINE} --params simulation.rows_per_machine=6000": Runs(),
    f"kedro run -e small --namespaces {TEST_MACHINE}": In(NOTEBOOK_TEST, ("SMALL_RUN_COMMAND",)),
    f"kedro run -e small --pipelines classification --namespaces {TEST_MACHINE}": In(
        NOTEBOOK_TEST, ("FAMILY_RUN_COMMAND",)
    ),
    f"kedro run --namespaces {TEST_MACHINE}": In(
        "tests/test_end_to_end.py", ('"run"', '"--namespaces"', "TEST_MACHINE")
    ),
    "kedro run": Pipelines(("__default__",)),
    "KEDRO_DISABLE_TELEMETRY=1 kedro run": Pipelines(("__default__",)),
    "kedro run --pipelines fleet": Pipelines(("fleet",)),
    "kedro run --pipelines cnc_haas_vf2_001": Pipelines(("cnc_haas_vf2_001",)),
    # UIs
    "kedro mlflow ui --port 5000": In("tests/docs/test_doc_servers.py", ("MLFLOW_UI_COMMAND",)),
    "kedro viz run": In("tests/viz/test_viz_run.py", ("kedro viz run",)),
    "kedro viz build": In("tests/viz/conftest.py", ('"kedro viz build"',)),
    "kedro jupyter lab --no-browser": In(
        "tests/docs/test_doc_servers.py", ("JUPYTER_LAB_COMMAND",)
    ),
    # bring your own data (docs/bring_your_own_data.md)
    "kedro run -e cmapss": In("tests/real_data/test_real_data.py", ('env="cmapss"',)),
    "kedro run -e skab": In("tests/pipelines/data_ingestion/test_pipeline.py", ('"skab"',)),
    "kedro run -e cmapss --params cmapss_dir=/data/CMAPSSData": In(
        "conf/cmapss/catalog.yml", ("${runtime_params:cmapss_dir",)
    ),
    "kedro run -e skab --params skab_dir=/data/SKAB": In(
        "conf/skab/catalog.yml", ("${runtime_params:skab_dir",)
    ),
    "python benchmarks/bench_real_data.py --data-root /tmp/pdm_real": Script(
        "benchmarks/bench_real_data.py", ("--data-root",)
    ),
    # edge deployment (docs/edge_deployment.md)
    f"python -m pdm_kedro.edge info --bundle data/06_models --machine {TEST_MACHINE}": In(
        "tests/edge/test_cli.py", ('"info"', '"--bundle"', '"--machine"')
    ),
    f"python -m pdm_kedro.edge predict --bundle data/06_models --machine {TEST_MACHINE} "
    "--readings recent.csv": In(
        "tests/edge/test_cli.py", ('"predict"', '"--bundle"', '"--machine"', '"--readings"')
    ),
    f"python -m pdm_kedro.edge predict --bundle data/06_models/{TEST_MACHINE}/edge "
    "--readings episode.csv --all-rows --from-episode-start": In(
        "tests/edge/test_cli.py", ('"predict"', '"--all-rows"', '"--from-episode-start"')
    ),
    "python benchmarks/bench_edge.py": Script("benchmarks/bench_edge.py"),
    # scale-out (docs/scale_out.md)
    f"pdm-kedro fleet run -e small --machines {TEST_MACHINE},pump_grundfos_cr3_004 --workers 2": In(
        "tests/distributed/test_fleet_run.py",
        ("pdm-kedro fleet run -e small --machines", "--workers 2", "run_documented("),
    ),
    f"kedro run -e small --namespaces {TEST_MACHINE} --runner ParallelRunner": In(
        "tests/distributed/test_parallel_runner.py",
        (f"kedro run -e small --namespaces {TEST_MACHINE} --runner ParallelRunner",),
    ),
    "python benchmarks/bench_fleet.py --data-root /tmp/bench_fleet/data": Script(
        "benchmarks/bench_fleet.py", ("--data-root",)
    ),
    "mlflow server --backend-store-uri postgresql://mlflow@db-host:5432/mlflow "
    "--artifacts-destination s3://pdm-mlflow/artifacts --host 0.0.0.0 --port 5000 "
    "--allowed-hosts mlflow-host:5000": NotRun("needs PostgreSQL, S3 and a reachable host"),
    "dask scheduler --port 8786": NotRun("needs several hosts"),
    "dask worker tcp://scheduler-host:8786 --nworkers 4 --nthreads 1": NotRun("several hosts"),
    "pdm-kedro fleet run --machines all --scheduler tcp://scheduler-host:8786 "
    "--tracking-uri http://mlflow-host:5000": NotRun("needs several hosts"),
}

# Commands run here need a cheaper stand-in when the documented one is a full model run.
STAND_INS = {
    f"kedro run --namespaces {TEST_MACHINE} --params simulation.rows_per_machine=6000": SMALL_PARAMS_RUN,
}


@pytest.fixture(scope="module")
def documented() -> dict[str, list[str]]:
    paths = sorted((PROJECT_ROOT / "docs").glob("*.md")) + [PROJECT_ROOT / "README.md"]
    return documented_commands(paths)


@pytest.fixture(scope="module")
def cli_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("doc_commands")
    return make_project_shim(root), isolated_env(root)


@pytest.fixture(scope="module")
def registered(cli_root) -> set[str]:
    shim, env = cli_root
    output = run_kedro("kedro registry list", cwd=shim, env=env).stdout
    return set(re.findall(r"^- (\S+)$", output, flags=re.MULTILINE))


def test_docs_have_commands(documented):
    assert len(documented) >= 20


def test_every_documented_command_is_exercised(documented):
    missing = {cmd: files for cmd, files in documented.items() if cmd not in EXERCISED}
    assert not missing, f"commands in the docs with no test or CI step exercising them: {missing}"


def test_no_stale_entries(documented):
    assert not sorted(set(EXERCISED) - set(documented))


@pytest.mark.parametrize("command", sorted(c for c, e in EXERCISED.items() if isinstance(e, In)))
def test_named_test_runs_the_command(command):
    evidence = EXERCISED[command]
    text = (PROJECT_ROOT / evidence.path).read_text()
    absent = [fragment for fragment in evidence.fragments if fragment not in text]
    assert not absent, f"{evidence.path} does not contain {absent}"
    if evidence.path.startswith("tests/") and evidence.fragments[0].isupper():
        # a command constant: it must hold the documented command itself
        assert (
            f'"{command}"' in text
            or f'f"{command.replace(TEST_MACHINE, "{TEST_MACHINE}")}"' in text
        )


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(c for c, e in EXERCISED.items() if isinstance(e, Runs)))
def test_cheap_command_runs(command, cli_root, registered):
    shim, env = cli_root
    result = run_kedro(STAND_INS.get(command, command), cwd=shim, env=env)
    if command.startswith("kedro registry describe"):
        assert "Nodes:" in result.stdout and "split_by_episode" in result.stdout
    if command.startswith("kedro run"):
        raw = shim.parent / "data" / "01_raw" / TEST_MACHINE
        rows = sum(len(pd.read_parquet(raw / f"{split}.parquet")) for split in SPLITS)
        assert rows == 3000  # the --params override reached the simulator
    if command == "kedro registry list":
        assert {"__default__", "fleet", TEST_MACHINE} <= registered


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", sorted(c for c, e in EXERCISED.items() if isinstance(e, Pipelines))
)
def test_long_run_targets_registered_pipelines(command, registered):
    assert set(EXERCISED[command].names) <= registered
    notebook_test = (PROJECT_ROOT / NOTEBOOK_TEST).read_text()
    assert "--pipelines" in notebook_test  # the same CLI form runs on one family there


@pytest.mark.parametrize(
    "command", sorted(c for c, e in EXERCISED.items() if isinstance(e, Script))
)
def test_benchmark_script_has_the_documented_flags(command):
    evidence = EXERCISED[command]
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / evidence.path), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(flag in result.stdout for flag in evidence.flags)


@pytest.mark.parametrize("command", sorted(c for c, e in EXERCISED.items() if isinstance(e, Extra)))
def test_extra_is_declared(command):
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert EXERCISED[command].name in pyproject["project"]["optional-dependencies"]


@pytest.mark.parametrize("command", sorted(c for c, e in EXERCISED.items() if isinstance(e, Env)))
def test_exported_variables_are_the_projects(command):
    names = set(EXERCISED[command].names)
    assert names <= set(PROJECT_ENV)
    assert {part.split("=")[0] for part in command.split()[1:]} == names
    paths_module = (PROJECT_ROOT / "src" / "pdm_kedro" / "paths.py").read_text()
    assert all(n in paths_module for n in names - {"KEDRO_DISABLE_TELEMETRY"})


@pytest.mark.parametrize("command", [c for c, how in EXERCISED.items() if isinstance(how, NotRun)])
def test_not_run_command_says_why(command, documented):
    for name in documented[command]:
        path = PROJECT_ROOT / ("README.md" if name == "README.md" else f"docs/{name}")
        text = " ".join(path.read_text().split())
        after = text[text.index(" ".join(command.split())) :]
        assert after.split("```", 2)[1].strip().startswith("Not run by the tests:"), (name, command)
