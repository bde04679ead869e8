"""Shared fixtures and session checks.

- the project's own config, and tiny simulated data built from it (unit tests);
- ``small_run``: ONE real ``kedro run`` on the small config for two machines, run once per session
  in a project shim with its own data root and MLflow store; every test that checks the products
  of a real run (reports, plots, ONNX bundles, the edge runtime, MLflow, notebooks) reads it;
- ``@pytest.mark.requires(<part>, ...)``: a test that needs an installable part (Chromium,
  playwright, jupyterlab, the shared real data sets) skips where it is missing, and FAILS under
  ``CI=true``: CI has no silent skips;
- at session end: the project tree is unchanged (tests write nothing into it), every documented
  command a test runs through ``run_documented`` really ran (when the whole suite ran), and under
  ``CI=true`` no test was skipped. With pytest-xdist (``-n 2`` in pyproject's addopts) the
  controller makes these checks over what every worker did; the real runs (``small_run``,
  ``one_machine_run``, the viz build) are made once per session for all workers
  (``tests/session_share.py``).

Nothing here writes into the project's ``data/``, ``mlflow.db`` or ``mlruns/``: every test that
runs Kedro points ``PDM_DATA_ROOT`` and ``PDM_MLFLOW_TRACKING_URI`` at a temporary folder.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.session_share import RAN_LOG_ENV, is_worker, once_per_session

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_BASE = PROJECT_ROOT / "conf" / "base"
TEST_MACHINE = "motor_siemens_1la7_001"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# two xdist workers share the two cores: one OpenMP thread per process (and per `kedro run` it
# starts). The XGBoost families' n_jobs null reads it (evaluation.model_inputs.thread_budget);
# their trees are the same for any thread count (tests/evaluation/test_model_inputs.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# hypothesis (schemathesis' engine, tests/service) keeps its example database and caches in
# ./.hypothesis by default: inside the project. Keep them in a temporary folder instead.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "pdm_kedro_hypothesis")
)


def in_ci() -> bool:
    """True when the suite runs in CI (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


# ---------------------------------------------------------------------------------------------
# Installable parts a test may need: name -> (is it there?, how to get it)


def _chromium() -> bool:
    from tests.viz.browser import chromium_path  # noqa: PLC0415

    return chromium_path() is not None


def _module(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


REQUIREMENTS: dict[str, tuple[Callable[[], bool], str]] = {
    "chromium": (_chromium, "no Chromium: `apt-get install chromium` (.ci/run installs it)"),
    "playwright": (_module("playwright"), "playwright missing: `pip install -e '.[dev]'`"),
    "prometheus": (
        lambda: bool(shutil.which("prometheus") and shutil.which("promtool")),
        "no prometheus/promtool: `apt-get install prometheus` (.ci/run installs it)",
    ),
    "jupyterlab": (_module("jupyterlab"), "jupyterlab missing: `pip install -e '.[dev]'`"),
    "cmapss": (
        (SHARED_DATASETS / "cmapss" / "train_FD001.txt").is_file,
        f"C-MAPSS FD001 not found in {SHARED_DATASETS / 'cmapss'} (docs/bring_your_own_data.md)",
    ),
    "skab": (
        (SHARED_DATASETS / "skab" / "data" / "valve1").is_dir,
        f"SKAB valve1 not found in {SHARED_DATASETS / 'skab'} (docs/bring_your_own_data.md)",
    ),
}


def require(*parts: str) -> None:
    """Skip the running test when a part is missing; fail it under ``CI=true``."""
    for part in parts:
        present, how = REQUIREMENTS[part]
        if not present():
            if in_ci():
                pytest.fail(f"CI must provide {part}: {how}", pytrace=False)
            pytest.skip(how)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*parts): needs installable parts "
        f"({', '.join(REQUIREMENTS)}); skipped where missing, failed under CI=true",
    )
    config.stash[_DESELECTED_KEY] = 0
    if is_worker(config):  # the controller checks the tree and the documented runs
        config.stash[_TREE_KEY] = None
        return
    config.stash[_TREE_KEY] = _project_tree_state()
    # one log of the documented commands that ran, for this process and every xdist worker
    handle, log = tempfile.mkstemp(prefix="pdm_kedro_documented_ran_", suffix=".jsonl")
    os.close(handle)
    os.environ[RAN_LOG_ENV] = log
    config.stash[_RAN_LOG_KEY] = log


def pytest_unconfigure(config: pytest.Config) -> None:
    log = config.stash.get(_RAN_LOG_KEY, None)
    if log:
        Path(log).unlink(missing_ok=True)
        if os.environ.get(RAN_LOG_ENV) == log:
            del os.environ[RAN_LOG_ENV]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("requires"):
        require(*marker.args)


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_DESELECTED_KEY] = config.stash.get(_DESELECTED_KEY, 0) + len(items)


# ---------------------------------------------------------------------------------------------
# Session-end checks


_TREE_KEY = pytest.StashKey[dict | None]()
_DESELECTED_KEY = pytest.StashKey[int]()
_RAN_LOG_KEY = pytest.StashKey[str]()
# made by pytest itself, Python or pytest-cov, not by the tests
_TOOL_MADE = (".pytest_cache", "__pycache__", ".coverage", ".ruff_cache")


def _project_tree_state() -> dict[str, int] | None:
    """Every untracked, ignored or modified file of the project with its mtime (None: no git)."""
    import subprocess  # noqa: PLC0415

    try:
        listed = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--ignored", "--untracked-files=all"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    state: dict[str, int] = {}
    for entry in filter(None, listed.split("\0")):
        relative = entry[3:]
        if any(part in _TOOL_MADE or part.startswith(".coverage") for part in Path(relative).parts):
            continue
        path = PROJECT_ROOT / relative
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            if any(part in _TOOL_MADE for part in file.relative_to(PROJECT_ROOT).parts):
                continue
            try:
                state[str(file.relative_to(PROJECT_ROOT))] = file.lstat().st_mtime_ns
            except FileNotFoundError:
                state[str(file.relative_to(PROJECT_ROOT))] = -1
    return state


def tree_changes(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Files of the project created, changed or deleted between two states."""
    return sorted(
        f"{'new' if path not in before else 'gone' if path not in after else 'changed'}: {path}"
        for path in set(before) | set(after)
        if before.get(path) != after.get(path)
    )


def _whole_suite_ran(session: pytest.Session) -> bool:
    config = session.config
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not config.stash.get(_DESELECTED_KEY, 0)
        and not session.shouldstop
        and not getattr(config.option, "lf", False)
    )


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001 (pytest-xdist's hook)
    """The controller adds up the tests each xdist worker deselected (``-k``, ``-m``, ...)."""
    config = node.config
    deselected = getattr(node, "workeroutput", {}).get("deselected", 0)
    config.stash[_DESELECTED_KEY] = config.stash.get(_DESELECTED_KEY, 0) + deselected


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if is_worker(session.config):
        session.config.workeroutput["deselected"] = session.config.stash.get(_DESELECTED_KEY, 0)
        return
    problems: list[str] = []
    before = session.config.stash.get(_TREE_KEY, None)
    after = _project_tree_state() if before is not None else None
    if before is not None and after is not None:
        changes = tree_changes(before, after)
        if changes:
            problems.append(
                "the tests wrote into the project tree:\n  " + "\n  ".join(changes[:50])
            )
    if _whole_suite_ran(session) and session.testscollected:
        from tests.docs.coverage import not_run_documented_calls  # noqa: PLC0415

        missing = not_run_documented_calls()
        if missing:
            problems.append(
                "documented commands a test should run through run_documented() never ran:\n  "
                + "\n  ".join(missing)
            )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if in_ci() and reporter is not None and reporter.stats.get("skipped"):
        skipped = [report.nodeid for report in reporter.stats["skipped"]]
        problems.append("tests skipped under CI=true:\n  " + "\n  ".join(skipped))
    if problems:
        if reporter is not None:
            for problem in problems:
                reporter.write_sep("=", "session check failed", red=True)
                reporter.write_line(problem)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---------------------------------------------------------------------------------------------
# Config and tiny data for unit tests


def load_machine(machine_id: str) -> dict:
    """A machine's ``machine:`` block from conf/base."""
    path = CONF_BASE / "parameters" / "machines" / f"{machine_id}.yml"
    return yaml.safe_load(path.read_text())[machine_id]["machine"]


@pytest.fixture(scope="session")
def project_params() -> dict:
    """Fleet-wide parameters as configured in conf/base/parameters*.yml (without machines)."""
    params: dict = {}
    for path in sorted(CONF_BASE.glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    return params


@pytest.fixture(scope="session")
def tiny_params(project_params: dict) -> dict:
    """The project's parameters scaled down: 3,000 rows, short lives (about 10 episodes), 12 h horizon."""
    params = copy.deepcopy(project_params)
    params["simulation"]["rows_per_machine"] = 3000
    params["simulation"]["life_hours"] = {"shape": 3.0, "scale": 150.0, "min": 90.0, "max": 260.0}
    params["simulation"]["regime_mean_duration_hours"] = 4.0
    params["labels"]["failure_horizon_hours"] = 12
    params["features"]["degradation"]["long_window_hours"] = 24  # lives of days, not weeks
    params["features"]["degradation"]["signature"] = {
        "mean_hours": [6, 24],
        "slope_hours": [12, 24],
        "clip": [-0.5, 1.5],
        "reference_hours": 12,
    }
    return params


@pytest.fixture(scope="session")
def fleet_priority() -> list[str]:
    """The priority machines of conf/base: the default pipeline (``kedro run``, kedro-viz)."""
    from pdm_kedro.fleet import load_project_parameters, priority_machines

    return priority_machines(load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf"))


@pytest.fixture(scope="session")
def machine() -> dict:
    """The test machine's config block."""
    return load_machine(TEST_MACHINE)


@pytest.fixture(scope="session")
def tiny_history(machine: dict, tiny_params: dict):
    from pdm_kedro.pipelines.data_generation.nodes import simulate_machine_history

    return simulate_machine_history(machine, tiny_params["simulation"], tiny_params["labels"])


@pytest.fixture(scope="session")
def tiny_hidden_state(machine: dict, tiny_params: dict) -> dict:
    """{"train": ..., "val": ..., "test": ...} simulator hidden state of the tiny history."""
    from pdm_kedro.pipelines.data_generation.nodes import (
        simulate_machine_history_and_hidden_state,
        split_by_episode,
    )

    _, hidden = simulate_machine_history_and_hidden_state(
        machine, tiny_params["simulation"], tiny_params["labels"]
    )
    parts = split_by_episode(hidden, tiny_params["splits"])
    return dict(zip(("train", "val", "test"), parts, strict=True))


@pytest.fixture(scope="session")
def tiny_splits(tiny_history, tiny_params: dict):
    """(train, val, test) raw splits of the tiny history."""
    from pdm_kedro.pipelines.data_generation.nodes import split_by_episode

    return split_by_episode(tiny_history, tiny_params["splits"])


@pytest.fixture(scope="session")
def tiny_baselines(tiny_splits, machine: dict, tiny_params: dict) -> dict:
    from pdm_kedro.pipelines.feature_engineering.nodes import fit_sensor_baselines

    return fit_sensor_baselines(tiny_splits[0], machine, tiny_params["features"])


@pytest.fixture(scope="session")
def tiny_features(tiny_splits, tiny_baselines: dict, machine: dict):
    """{"train": ..., "val": ..., "test": ...} feature tables of the tiny splits."""
    from pdm_kedro.pipelines.feature_engineering.nodes import build_window_features

    names = ("train", "val", "test")
    return {
        name: build_window_features(split, tiny_baselines, machine)
        for name, split in zip(names, tiny_splits, strict=True)
    }


@pytest.fixture(scope="session")
def tiny_models(tiny_features):
    """{family: model dict} trained on the tiny train split (seeded)."""
    from tests.pipelines.edge_export.helpers import train_tiny_models

    return train_tiny_models(tiny_features)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_models, tiny_features, tiny_baselines, machine, tiny_params):
    """(bundle folder, manifest) written from the tiny models into a temporary folder."""
    from tests.pipelines.edge_export.helpers import export_bundle

    folder = tmp_path_factory.mktemp("bundle") / machine["machine_id"] / "edge"
    folder.mkdir(parents=True)
    manifest = export_bundle(
        tiny_models, tiny_features, tiny_baselines, machine, tiny_params, folder
    )
    return folder, manifest


@pytest.fixture(scope="session")
def fc_params() -> dict:
    """The project's forecasting parameters with a shorter fitting history (fast tests)."""
    params = yaml.safe_load((CONF_BASE / "parameters_forecasting.yml").read_text())["forecasting"]
    params = copy.deepcopy(params)
    params["history_hours"] = 240
    params["state_hours"] = 96
    return params


@pytest.fixture(scope="session")
def tiny_hourly(tiny_splits, machine: dict) -> dict:
    """{"train": ..., "val": ..., "test": ...} hourly key-sensor series of the tiny splits."""
    from pdm_kedro.pipelines.forecasting.nodes import resample_hourly

    names = ("train", "val", "test")
    return {n: resample_hourly(s, machine) for n, s in zip(names, tiny_splits, strict=True)}


@pytest.fixture(scope="session")
def tiny_forecaster(tiny_hourly: dict, machine: dict, fc_params: dict) -> dict:
    """The forecasting model artefact fitted on the tiny train split."""
    from pdm_kedro.pipelines.forecasting.nodes import fit_forecasters

    return fit_forecasters(tiny_hourly["train"], machine, fc_params)


@pytest.fixture(scope="session")
def tiny_backtest(tiny_forecaster: dict, tiny_hourly: dict, fc_params: dict):
    """The test-split backtest (pmdarima forecasts at every origin) of the tiny forecaster."""
    from pdm_kedro.pipelines.forecasting.nodes import backtest_forecasters

    return backtest_forecasters(
        tiny_forecaster, tiny_hourly["val"], tiny_hourly["test"], fc_params, split="test"
    )


@pytest.fixture()
def isolated_project_env(tmp_path, monkeypatch) -> Path:
    """Send every catalog write and the MLflow store of this test to ``tmp_path``."""
    monkeypatch.setenv("PDM_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("PDM_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    monkeypatch.chdir(tmp_path)  # MLflow and kedro-viz write relative to the working directory
    return tmp_path


# ---------------------------------------------------------------------------------------------
# The shared real run


SMALL_RUN_ENV = "small_pair"  # conf/small plus a two-machine priority list, in the shim only
SMALL_RUN_MACHINES = (TEST_MACHINE, "pump_grundfos_cr3_004")
SMALL_RUN_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> dict:
    """ONE real ``kedro run`` of the default pipeline on the small config, two machines.

    It runs in a project shim (``tests/docs/kedro_cli.py``) whose ``conf/`` links the project's
    environments and adds ``small_pair``: ``conf/small``'s parameters with
    ``fleet.priority_machines`` set to two machines, so the run ends with the fleet-level
    ``fleet_metrics.csv`` like the default run does. Data root: ``<shim>/data`` (so the docs'
    relative ``data/06_models`` paths hold with the shim as working directory); MLflow store:
    ``<root>/mlflow.db``. Returns ``{"shim", "data", "env", "machines", "mlflow_uri", "stdout"}``.
    Made once for all xdist workers of the session (``tests/session_share.py``).
    """
    from tests.docs.kedro_cli import isolated_env, make_project_shim, run_kedro  # noqa: PLC0415

    def build(root: Path) -> dict:
        small = yaml.safe_load((PROJECT_ROOT / "conf" / "small" / "parameters.yml").read_text())
        small["fleet"] = {"priority_machines": list(SMALL_RUN_MACHINES)}
        shim = make_project_shim(root, extra_envs={SMALL_RUN_ENV: {"parameters.yml": small}})
        env = isolated_env(root, data=shim / "data")
        result = run_kedro(
            f"kedro run -e {SMALL_RUN_ENV}", cwd=shim, env=env, timeout=SMALL_RUN_TIMEOUT_S
        )
        return {
            "shim": shim,
            "data": shim / "data",
            "env": env,
            "machines": list(SMALL_RUN_MACHINES),
            "mlflow_uri": env["PDM_MLFLOW_TRACKING_URI"],
            "stdout": result.stdout + result.stderr,
        }

    return once_per_session(tmp_path_factory, "small_run", build)


@pytest.fixture()
def small_run_copy(small_run, tmp_path) -> dict:
    """A private copy of the shared run's data (for tests that alter files), same shim layout."""
    from tests.docs.kedro_cli import isolated_env, make_project_shim  # noqa: PLC0415

    shim = make_project_shim(tmp_path, conf=small_run["shim"] / "conf")
    shutil.copytree(small_run["data"], shim / "data", symlinks=True)
    env = isolated_env(tmp_path, data=shim / "data")
    return {**small_run, "shim": shim, "data": shim / "data", "env": env}


# ---------------------------------------------------------------------------------------------
# The documented one-machine run


ONE_MACHINE_RUN = f"kedro run -e small --namespaces {TEST_MACHINE}"  # README, docs/user_guide.md


@pytest.fixture(scope="session")
def one_machine_run(tmp_path_factory) -> dict:
    """The documented ``kedro run -e small --namespaces <machine>``, run ONCE, as a user runs it.

    In a project shim, with the environment of a user who set nothing (no ``PDM_DATA_ROOT`` /
    ``PDM_MLFLOW_TRACKING_URI``: the products land in the shim's ``data/small/``, the ``-e small``
    data root, with its ``mlflow.db``), ``COLUMNS=120`` and no ``PDM_PROGRESS``. Read-only: the
    console tests read its output and log, the docs test reruns a family in a copy of it.
    Returns ``{"root", "shim", "data", "env", "machine", "console"}`` (console: stdout + stderr).
    """
    from tests.docs.documented import run_documented  # noqa: PLC0415
    from tests.docs.kedro_cli import make_project_shim, user_env  # noqa: PLC0415

    def build(root: Path) -> dict:
        shim = make_project_shim(root)
        env = user_env(root) | {"COLUMNS": "120"}
        env.pop("PDM_PROGRESS", None)
        result = run_documented(ONE_MACHINE_RUN, cwd=shim, env=env, timeout=SMALL_RUN_TIMEOUT_S)
        return {
            "root": root,
            "shim": shim,
            "data": shim / "data" / "small",  # each config environment has its own data root
            "env": env,
            "machine": TEST_MACHINE,
            "console": result.stdout + result.stderr,
        }

    return once_per_session(tmp_path_factory, "one_machine_run", build)
