"""Planted bugs: does the suite catch each one-line bug that issue 17 says it once missed?

One command (documented in ``docs/testing.md``)::

    python benchmarks/bench_planted_bugs.py [--bug NAME ...] [--data-root DIR] [--list]
                                            [--check-patches] [--keep-workdir]

For every planted bug (``BUGS`` below): copy ``src/``, ``tests/``, ``conf/`` and ``pyproject.toml``
into a temporary folder OUTSIDE the project, apply the bug there as a one-line search/replace on
the current source (the search text must occur exactly once, else the script stops: it can never
silently test an unpatched copy), and run the tests that should catch it::

    python -m pytest -n 0 -q -x -p no:cacheprovider -m "not slow" <paths>

with ``PYTHONPATH=<copy>/src`` (checked: ``pdm_kedro`` is imported from the copy) and the data
root and MLflow store in the temporary folder. The bug is ``caught`` when a test fails. The union
of the bugs' test selections runs once on an unpatched copy first and must pass, otherwise the
figures mean nothing (the script stops). The checkout is never modified.

Each bug names the narrowest tests that pin its behaviour (the unit tests docs/testing.md lists
under "What the unit tests pin"): a whole file where it is cheap, so that any test of the file
may catch the bug, not only the one written for it.

Results: ``<data root>/08_reporting/planted_bugs_report.json`` (``--data-root``, default
``PDM_DATA_ROOT``, else the project's ``data/``) with ``bugs`` (list of ``name``, ``file``,
``caught``, ``failing_tests``, ``seconds`` and the patch), ``caught`` and ``total``, the unpatched
run under ``baseline``. Exit status 0 when the baseline passed and every bug run was caught.

``--check-patches`` only checks that every bug's search text occurs exactly once in the current
source (no tests run, nothing written): the fast guard ``tests/benchmarks`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPORT_NAME = "planted_bugs_report.json"
COPIED = ("src", "tests", "conf", "pyproject.toml")
PYTEST = ["-m", "pytest", "-n", "0", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow"]
# variables of an enclosing pytest session (a test running this script) that must not leak into
# the nested runs: xdist worker identity, the documented-runs log, extra options
OUTER_SESSION_VARS = (
    "PYTEST_ADDOPTS",
    "PYTEST_CURRENT_TEST",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "PDM_TESTS_RAN_LOG",
)
_SUMMARY = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")

PIPELINES = "src/pdm_kedro/pipelines"
LEAKAGE = "tests/pipelines/test_leakage.py"
READINGS_LIMITS = "tests/edge/test_readings_limits.py"
REPORT_AND_TRACKING = "tests/evaluation/test_report_and_tracking.py"


class PatchError(RuntimeError):
    """A planted bug's search text is not in its file exactly once."""


@dataclass(frozen=True)
class PlantedBug:
    """One one-line bug: replace ``search`` (exactly one occurrence) by ``replace`` in ``file``."""

    name: str
    description: str
    file: str  # project-relative
    search: str
    replace: str
    tests: tuple[str, ...]  # project-relative test paths or node ids
    source: str = "issue 17"


BUGS: tuple[PlantedBug, ...] = (
    PlantedBug(
        "sensor_baselines_fitted_on_test",
        "sensor baselines fitted on the test split instead of train",
        f"{PIPELINES}/feature_engineering/pipeline.py",
        'inputs=["validated_train", "params:machine", "params:features"],',
        'inputs=["validated_test", "params:machine", "params:features"],',
        (LEAKAGE,),
    ),
    PlantedBug(
        "forecaster_fitted_on_hourly_test",
        "the ARIMA forecasters fitted on hourly_test instead of hourly_train",
        f"{PIPELINES}/forecasting/pipeline.py",
        'inputs=["hourly_train", "params:machine", "params:forecasting"],',
        'inputs=["hourly_test", "params:machine", "params:forecasting"],',
        (LEAKAGE,),
    ),
    PlantedBug(
        "decision_threshold_chosen_on_train",
        "the decision threshold chosen on train instead of val (threshold_selection.method val)",
        f"{PIPELINES}/classification/nodes.py",
        "return choose_decision_threshold(classifier, features_val, params)",
        "return choose_decision_threshold(classifier, features_train, params)",
        ("tests/pipelines/classification/test_threshold_on_val.py",),
    ),
    PlantedBug(
        "onnx_probability_tolerance_1",
        "the ONNX parity tolerance for probabilities raised from 1e-4 to 1.0",
        "conf/base/parameters_edge_export.yml",
        "probability_atol: 1.0e-4",
        "probability_atol: 1.0",
        ("tests/pipelines/edge_export/test_parity_tolerance.py",),
    ),
    PlantedBug(
        "quarantine_drops_wrong_rows",
        "the quarantine shifted by one row (counts add up; a bad row stays, a good one is lost)",
        f"{PIPELINES}/data_validation/nodes.py",
        "bad_rows.setdefault(int(row), []).append",
        "bad_rows.setdefault(int(row) + 1, []).append",
        ("tests/pipelines/data_validation/test_quarantine_rows.py",),
    ),
    PlantedBug(
        "constant_test_fingerprint",
        "the test-data fingerprint is a constant",
        "src/pdm_kedro/evaluation/report.py",
        "return digest.hexdigest()[:16]",
        'return "0" * 16',
        (REPORT_AND_TRACKING,),
    ),
    PlantedBug(
        "forecasting_champion_one_sensor",
        "the forecasting champion's registered score is one sensor's MAPE, not the mean",
        "src/pdm_kedro/evaluation/tracking.py",
        "values[name] = float(sum(per_sensor) / len(per_sensor))",
        "values[name] = float(per_sensor[0])",
        (REPORT_AND_TRACKING,),
    ),
    PlantedBug(
        "edge_nan_run_one_longer",
        "the edge accepts a NaN run one row longer than max_missing_run",
        "src/pdm_kedro/edge/readings.py",
        "if run > max_gap:",
        "if run > max_gap + 1:",
        (READINGS_LIMITS,),
    ),
    PlantedBug(
        "edge_accepts_minus_inf",
        "the edge accepts -inf readings (only +inf refused)",
        "src/pdm_kedro/edge/readings.py",
        "infinite = np.argwhere(np.isinf(values))",
        "infinite = np.argwhere(np.isposinf(values))",
        (READINGS_LIMITS,),
    ),
    PlantedBug(
        "rul_trained_on_uncapped_target",
        "the RUL regressor trained on the uncapped RUL",
        f"{PIPELINES}/regression/nodes.py",
        "    y_train, y_val = capped_rul(features_train, cap), capped_rul(features_val, cap)\n",
        "    y_train, y_val = features_train[c.RUL].to_numpy(np.float64), capped_rul(features_val, cap)\n",
        ("tests/pipelines/regression/test_capped_target.py",),
    ),
    PlantedBug(
        "precision_recall_swapped",
        "precision and recall swapped in the classification metrics",
        "src/pdm_kedro/evaluation/classification_metrics.py",
        '"precision": float(precision), "recall": float(recall)}',
        '"precision": float(recall), "recall": float(precision)}',
        ("tests/evaluation/test_metrics.py",),
    ),
    PlantedBug(
        "edge_decision_inverted",
        "the edge decision and flag inverted (score >= threshold -> score < threshold)",
        "src/pdm_kedro/edge/runtime.py",
        "flag: _rows(values >= threshold, all_rows),",
        "flag: _rows(values < threshold, all_rows),",
        (READINGS_LIMITS,),
    ),
    # Issue 17 names the twelve above and says 14 were planted; the other two are not named. These
    # two come from its "leakage guard extended to every fitted object" and "champion score pinned".
    PlantedBug(
        "anomaly_detectors_fitted_on_test",
        "the anomaly scaler and detectors fitted on healthy test rows instead of train rows",
        f"{PIPELINES}/anomaly/pipeline.py",
        'inputs=["features_train", "params:anomaly"],',
        'inputs=["features_test", "params:anomaly"],',
        (LEAKAGE,),
        source="added (issue 17 deliverable 2: every fitted object)",
    ),
    PlantedBug(
        "forecasting_promotion_one_sensor",
        "the forecasting champion/challenger comparison scored on one sensor's MAPE, not the mean",
        f"{PIPELINES}/forecasting/nodes.py",
        '"mape": float(np.mean(mapes)) if mapes else float("nan"),',
        '"mape": float(mapes[0]) if mapes else float("nan"),',
        ("tests/pipelines/forecasting/test_champion_score.py",),
        source="added (issue 17 deliverable 2: the champion score pinned)",
    ),
)


def bug_by_name(names: list[str] | None) -> list[PlantedBug]:
    """The bugs named (all when none); an unknown name stops the script."""
    if not names:
        return list(BUGS)
    known = {bug.name: bug for bug in BUGS}
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f"unknown bug(s) {unknown}; known: {sorted(known)}")
    return [known[name] for name in names]


def apply_patch(root: Path, bug: PlantedBug) -> None:
    """Plant ``bug`` in the copy at ``root``; raise PatchError unless the search text occurs once."""
    path = root / bug.file
    if not path.is_file():
        raise PatchError(f"{bug.name}: {bug.file} does not exist")
    text = path.read_text()
    found = text.count(bug.search)
    if found != 1:
        raise PatchError(
            f"{bug.name}: the search text {bug.search!r} occurs {found} times in {bug.file} "
            "(expected exactly once): update the bug to the current source"
        )
    patched = text.replace(bug.search, bug.replace)
    if patched == text:  # pragma: no cover - guarded by search != replace, kept for safety
        raise PatchError(f"{bug.name}: the patch changes nothing in {bug.file}")
    path.write_text(patched)


def check_patches(bugs: list[PlantedBug], root: Path = PROJECT_ROOT) -> list[str]:
    """Problems of the bugs' patches against the source at ``root`` (empty: all apply)."""
    problems = []
    for bug in bugs:
        if bug.search == bug.replace:
            problems.append(f"{bug.name}: search and replace are the same")
            continue
        path = root / bug.file
        found = path.read_text().count(bug.search) if path.is_file() else 0
        if found != 1:
            problems.append(f"{bug.name}: search text occurs {found} times in {bug.file}")
        for test in bug.tests:
            if not (root / test.split("::", 1)[0]).exists():
                problems.append(f"{bug.name}: test path {test} does not exist")
    return problems


def copy_project(target: Path) -> None:
    """Copy the files the tests need into ``target`` (no caches, no conf/local)."""
    target.mkdir(parents=True)
    for name in COPIED:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(
                source,
                target / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "local"),
            )
        else:
            shutil.copy2(source, target / name)
    (target / "conf" / "local").mkdir(exist_ok=True)


def copy_env(root: Path, scratch: Path) -> dict[str, str]:
    """The environment of a run in the copy: its ``src`` first, data and MLflow in ``scratch``."""
    env = {k: v for k, v in os.environ.items() if k not in OUTER_SESSION_VARS}
    env.update(
        {
            "PYTHONPATH": str(root / "src"),
            "PDM_DATA_ROOT": str(scratch / "data"),
            "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
            "COLUMNS": "250",  # pytest cuts the summary's failure messages at the terminal width
        }
    )
    return env


def check_imports_copy(root: Path, env: dict[str, str]) -> None:
    """Stop unless ``pdm_kedro`` is imported from the copy (not the editable install)."""
    done = subprocess.run(
        [sys.executable, "-c", "import pdm_kedro; print(pdm_kedro.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    where = Path(done.stdout.strip() or "?").resolve()
    if done.returncode != 0 or not where.is_relative_to(root.resolve()):
        sys.exit(f"pdm_kedro is imported from {where}, not from the copy {root}: {done.stderr}")


def failing_tests(output: str) -> list[dict[str, str]]:
    """The FAILED / ERROR lines of pytest's short summary: test id and message."""
    found = []
    for line in output.splitlines():
        match = _SUMMARY.match(line.strip())
        if match:
            found.append(
                {
                    "id": match.group(2),
                    "kind": match.group(1),
                    "message": (match.group(3) or "")[:300],
                }
            )
    return found


def run_tests(root: Path, tests: list[str], scratch: Path, timeout_s: float) -> dict[str, object]:
    """Run ``tests`` in the copy at ``root``: exit code, failing tests, seconds, output tail."""
    scratch.mkdir(parents=True, exist_ok=True)
    env = copy_env(root, scratch)
    check_imports_copy(root, env)
    command = [sys.executable, *PYTEST, f"--basetemp={scratch / 'pytest'}", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = None  # TimeoutExpired holds bytes whatever ``text`` says
        output = (exc.stdout or b"").decode(errors="replace")
    seconds = round(time.monotonic() - start, 1)
    return {
        "exit_code": code,
        "failing": failing_tests(output),
        "seconds": seconds,
        "tail": output[-2500:],
    }


def run_bug(bug: PlantedBug, workdir: Path, timeout_s: float) -> dict[str, object]:
    """Plant ``bug`` in a fresh copy, run its tests, return its report entry."""
    root = workdir / bug.name
    copy_project(root)
    try:
        apply_patch(root, bug)
        result = run_tests(root, list(bug.tests), workdir / f"{bug.name}_scratch", timeout_s)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    code = result["exit_code"]
    if code not in (0, 1, None):  # usage error, nothing collected, internal error: not a verdict
        raise RuntimeError(
            f"{bug.name}: pytest exited {code} (not a test failure):\n{result['tail']}"
        )
    failing = result["failing"]
    caught = code == 1 and bool(failing)
    return {
        "name": bug.name,
        "description": bug.description,
        "source": bug.source,
        "file": bug.file,
        "patch": {"search": bug.search, "replace": bug.replace},
        "tests": list(bug.tests),
        "caught": caught,
        "outcome": "caught" if caught else "timeout" if code is None else "missed",
        "failing_tests": [f["id"] for f in failing],
        "first_failure": failing[0]["message"] if failing else None,
        "seconds": result["seconds"],
        **({} if caught else {"output_tail": result["tail"]}),
    }


def data_root(arg: Path | None) -> Path:
    if arg is not None:
        return arg.resolve()
    if os.environ.get("PDM_DATA_ROOT"):
        return Path(os.environ["PDM_DATA_ROOT"]).resolve()
    return PROJECT_ROOT / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bug", action="append", help="plant only this bug (repeatable)")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--timeout-minutes", type=float, default=15.0, help="per pytest run")
    parser.add_argument("--list", action="store_true", help="list the bugs and exit")
    parser.add_argument(
        "--check-patches", action="store_true", help="check every patch applies, run nothing"
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    bugs = bug_by_name(args.bug)

    if args.list:
        for bug in bugs:
            print(f"{bug.name:36s} {bug.file}  <- {' '.join(bug.tests)}")
        return 0
    problems = check_patches(bugs)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    if args.check_patches:
        print(f"all {len(bugs)} patches apply to the current source")
        return 0

    timeout_s = args.timeout_minutes * 60
    selection = list(dict.fromkeys(test for bug in bugs for test in bug.tests))
    workdir = Path(tempfile.mkdtemp(prefix="pdm_planted_"))
    started = time.monotonic()
    entries: list[dict[str, object]] = []
    try:
        print(f"unpatched run of {len(selection)} test paths in {workdir}", flush=True)
        unpatched = workdir / "unpatched"
        copy_project(unpatched)
        base = run_tests(unpatched, selection, workdir / "unpatched_scratch", timeout_s)
        shutil.rmtree(unpatched, ignore_errors=True)
        baseline = {
            "tests": selection,
            "passed": base["exit_code"] == 0,
            "exit_code": base["exit_code"],
            "failing_tests": [f["id"] for f in base["failing"]],
            "seconds": base["seconds"],
        }
        print(f"  unpatched: {'passed' if baseline['passed'] else 'FAILED'} "
              f"in {base['seconds']} s", flush=True)  # fmt: skip
        if baseline["passed"]:
            for bug in bugs:
                entry = run_bug(bug, workdir, timeout_s)
                entries.append(entry)
                print(
                    f"  {bug.name:36s} {entry['outcome']:8s} {entry['seconds']:6.1f} s  "
                    f"{', '.join(entry['failing_tests'][:2])}",
                    flush=True,
                )
        else:
            baseline["output_tail"] = base["tail"]
    finally:
        if args.keep_workdir:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    caught = sum(1 for entry in entries if entry["caught"])
    report = {
        "tool": "benchmarks/bench_planted_bugs.py",
        "command": shlex.join(["python", *PYTEST, "<tests>"]),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(time.monotonic() - started, 1),
        "baseline": baseline,
        "bugs": entries,
        "caught": caught,
        "total": len(entries),
        "missed": [entry["name"] for entry in entries if not entry["caught"]],
    }
    out = data_root(args.data_root) / "08_reporting" / REPORT_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"caught {caught} of {len(entries)} planted bugs; wrote {out}")
    if not baseline["passed"]:
        print(
            f"the unpatched tests fail: the result means nothing\n{base['tail']}", file=sys.stderr
        )
        return 1
    return 0 if caught == len(entries) else 1


if __name__ == "__main__":
    sys.exit(main())
