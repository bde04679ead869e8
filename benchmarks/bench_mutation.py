"""Mutation testing of the modules that carry the product's promises (mutmut).

One command (documented in ``docs/testing.md``)::

    python benchmarks/bench_mutation.py --budget-minutes 30 [--module PATH ...] [--data-root DIR]
                                        [--max-children 2] [--no-diffs]

What it does: copies ``src/``, ``tests/``, ``conf/`` and ``pyproject.toml`` into a temporary folder
OUTSIDE the project, runs ``mutmut run`` there with the ``[tool.mutmut]`` settings of
``pyproject.toml`` (``only_mutate`` narrowed to ``--module`` when given), stops it when the budget
is spent (mutants not reached count as ``not_checked``), reads mutmut's per-file results and deletes
the temporary folder. mutmut's ``mutants/`` work folder therefore never appears in the project tree.

``--module`` takes a path under ``src/`` or a prefix of one (``src/pdm_kedro/core``,
``pdm_kedro/edge/runtime.py``, ``core``, ``pipelines/regression``); repeatable. Default: every
module listed in ``MODULE_GROUPS`` below.

Targets (issue 17): >= 85 % of mutants killed in ``core/``, ``evaluation/`` and ``edge/``;
>= 75 % in the pipelines' nodes. A killed fraction counts killed + timed-out mutants over the mutants
that were checked (a timeout is a mutant the tests stopped: an endless loop is a caught bug).

Results: ``<data root>/08_reporting/mutation_report.json`` with ``modules`` -> ``<module path>`` ->
``generated``, ``killed``, ``survived``, ``timeout``, ``no_tests``, ``not_checked``, ``suspicious``,
``killed_fraction`` and ``surviving`` (name and diff of each surviving mutant), per-group totals
under ``groups`` and ``overall_killed_fraction``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REPORT_NAME = "mutation_report.json"

# group -> glob patterns of the source files it holds (paths relative to the project root)
MODULE_GROUPS: dict[str, list[str]] = {
    "core": ["src/pdm_kedro/core/*.py"],
    "evaluation": ["src/pdm_kedro/evaluation/*.py"],
    "edge": ["src/pdm_kedro/edge/*.py"],
    "pipelines": [
        "src/pdm_kedro/pipelines/data_validation/*.py",
        "src/pdm_kedro/pipelines/feature_engineering/*.py",
        "src/pdm_kedro/pipelines/classification/*.py",
        "src/pdm_kedro/pipelines/regression/*.py",
        "src/pdm_kedro/pipelines/anomaly/*.py",
        "src/pdm_kedro/pipelines/forecasting/nodes.py",
        "src/pdm_kedro/pipelines/forecasting/pipeline.py",
        "src/pdm_kedro/pipelines/forecasting/arima.py",
    ],
}
# group -> the fast unit tests a mutant of the group is checked against (``--all-tests``: every
# unit-test folder of ``[tool.mutmut]``). Each mutant runs, in a fresh process, the selected tests
# that call the mutated function; the heavier pipeline and bundle tests cost tens of seconds per
# mutant on 2 cores, so the default selection keeps a full run within an afternoon.
GROUP_TESTS: dict[str, list[str]] = {
    "core": ["tests/core", "tests/pipelines/feature_engineering"],
    "evaluation": ["tests/evaluation"],
    "edge": ["tests/edge"],
    "pipelines": [
        "tests/pipelines/test_leakage.py",
        "tests/pipelines/data_validation",
        "tests/pipelines/feature_engineering",
        "tests/pipelines/classification",
        "tests/pipelines/regression",
        "tests/pipelines/anomaly",
        "tests/pipelines/forecasting",
    ],
}
TARGETS = {"core": 0.85, "evaluation": 0.85, "edge": 0.85, "pipelines": 0.75}
KILLED_STATUSES = {"killed", "timeout"}
COPIED = ["src", "tests", "conf", "pyproject.toml"]


def _status_by_exit_code():
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code


def source_files(patterns: list[str]) -> list[str]:
    """Project-relative paths of the non-empty ``.py`` files matched by ``patterns``."""
    found = set()
    for path in (PROJECT_ROOT / "src").rglob("*.py"):
        rel = path.relative_to(PROJECT_ROOT).as_posix()
        if "__pycache__" in rel or path.name == "__init__.py" and not path.read_text().strip():
            continue
        if any(fnmatch.fnmatch(rel, p) for p in patterns):
            found.add(rel)
    return sorted(found)


def module_patterns(modules: list[str] | None) -> list[str]:
    """The ``only_mutate`` globs for ``--module`` arguments (every group when none)."""
    if not modules:
        return [p for patterns in MODULE_GROUPS.values() for p in patterns]
    patterns = []
    for module in modules:
        rel = module.strip("/")
        for prefix in ("src/", "pdm_kedro/"):
            rel = rel.removeprefix(prefix)
        rel = f"src/pdm_kedro/{rel}"
        candidate = PROJECT_ROOT / rel
        if candidate.is_file():
            patterns.append(rel)
        elif candidate.is_dir():
            patterns.append(f"{rel}/*.py")
            patterns.append(f"{rel}/**/*.py")
        else:
            sys.exit(f"--module {module}: no such file or folder under src/ ({rel})")
    return patterns


def group_of(path: str) -> str:
    for group, patterns in MODULE_GROUPS.items():
        if any(fnmatch.fnmatch(path, p) for p in patterns):
            return group
    return "other"


def test_selection(files: list[str], tests: list[str] | None, all_tests: bool) -> list[str] | None:
    """The tests mutants are checked against: ``--tests``, every unit test, or the groups' own."""
    if tests:
        return tests
    if all_tests:
        return None
    chosen: list[str] = []
    for group in sorted({group_of(rel) for rel in files}):
        chosen += [t for t in GROUP_TESTS.get(group, []) if t not in chosen]
    return chosen or None


def prepare_workdir(workdir: Path, patterns: list[str], tests: list[str] | None) -> None:
    """Copy the project into ``workdir``; narrow ``only_mutate`` and the test selection."""
    for name in COPIED:
        source = PROJECT_ROOT / name
        target = workdir / name
        if source.is_dir():
            shutil.copytree(
                source,
                target,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "local"),
            )
        else:
            shutil.copy2(source, target)
    (workdir / "conf" / "local").mkdir(exist_ok=True)
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    lines = ["", "[tool.mutmut]"]
    config["only_mutate"] = patterns
    if tests is not None:
        config["pytest_add_cli_args_test_selection"] = tests
    for key, value in config.items():
        lines.append(f"{key} = {json.dumps(value)}")
    text = (workdir / "pyproject.toml").read_text()
    head, _, tail = text.partition("[tool.mutmut]")
    # drop the original [tool.mutmut] table (up to the next table) and append the narrowed one
    rest = tail.split("\n[", 1)
    text = head + ("[" + rest[1] if len(rest) > 1 else "")
    (workdir / "pyproject.toml").write_text(text + "\n".join(lines) + "\n")


def run_mutmut(workdir: Path, budget_s: float, max_children: int, env: dict) -> tuple[bool, float]:
    """Run ``mutmut run`` in ``workdir``; SIGINT it when the budget is spent. (finished, seconds)"""
    log = (workdir / "mutmut.log").open("w")
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    finished = True
    try:
        proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        finished = False
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log.close()
    return finished and proc.returncode == 0, time.monotonic() - start


def read_results(workdir: Path, files: list[str]) -> dict[str, dict[str, str]]:
    """{source path: {mutant name: status}} from mutmut's ``mutants/<path>.meta`` files."""
    status_by_exit_code = _status_by_exit_code()
    results = {}
    for rel in files:
        meta = workdir / "mutants" / f"{rel}.meta"
        if not meta.exists():
            results[rel] = {}
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        results[rel] = {name: status_by_exit_code[code] for name, code in codes.items()}
    return results


def mutant_diffs(workdir: Path, names: list[str], env: dict) -> dict[str, str]:
    """Unified diff of each named mutant (``mutmut show``'s text), read in one process."""
    if not names:
        return {}
    script = (
        "import json, sys\n"
        "from mutmut.mutation.diff_apply import get_diff_for_mutant\n"
        "out = {}\n"
        "for name in json.load(sys.stdin):\n"
        "    try:\n"
        "        out[name] = get_diff_for_mutant(name)\n"
        "    except Exception as exc:  # a diff we cannot render is reported, not fatal\n"
        "        out[name] = f'(no diff: {exc!r})'\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=workdir,
        env=env,
        input=json.dumps(names),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return dict.fromkeys(names, f"(no diff: {done.stderr.strip()[-300:]})")
    return json.loads(done.stdout)


def summarise(statuses: dict[str, str]) -> dict:
    counts = {
        key: 0 for key in ("killed", "survived", "timeout", "no_tests", "not_checked", "suspicious")
    }
    for status in statuses.values():
        key = status.replace(" ", "_")
        if key in counts:
            counts[key] += 1
        elif status == "caught by type check":
            counts["killed"] += 1
        else:
            counts["suspicious"] += 1
    checked = counts["killed"] + counts["timeout"] + counts["survived"] + counts["no_tests"]
    checked += counts["suspicious"]
    killed = counts["killed"] + counts["timeout"]
    return {
        "generated": len(statuses),
        **counts,
        "killed_fraction": round(killed / checked, 4) if checked else None,
        # a timeout can also be a slow fixture on a loaded machine: the strict figure omits them
        "killed_fraction_timeouts_as_survivors": (
            round(counts["killed"] / checked, 4) if checked else None
        ),
    }


def build_report(results: dict, diffs: dict, meta: dict) -> dict:
    modules = {}
    groups: dict[str, dict[str, str]] = {}
    for rel, statuses in results.items():
        entry = summarise(statuses)
        entry["group"] = group_of(rel)
        entry["surviving"] = [
            {"name": name, "status": status, "diff": diffs.get(name, "")}
            for name, status in sorted(statuses.items())
            if status in {"survived", "no tests", "suspicious"}
        ]
        modules[rel] = entry
        groups.setdefault(entry["group"], {}).update(statuses)
    group_report = {}
    for group, statuses in groups.items():
        entry = summarise(statuses)
        target = TARGETS.get(group)
        entry["target"] = target
        fraction = entry["killed_fraction"]
        # a group with mutants not reached (budget spent) has no verdict, only a partial figure
        complete = entry["not_checked"] == 0
        entry["complete"] = complete
        entry["meets_target"] = (
            None if target is None or fraction is None or not complete else fraction >= target
        )
        group_report[group] = entry
    every = {name: s for statuses in results.values() for name, s in statuses.items()}
    overall = summarise(every)
    return {
        **meta,
        "modules": modules,
        "groups": group_report,
        "totals": overall,
        "overall_killed_fraction": overall["killed_fraction"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--module", action="append", help="path under src/ (repeatable)")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--tests", action="append", help="test path to check mutants against")
    parser.add_argument(
        "--all-tests", action="store_true", help="check mutants against every unit-test folder"
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-diffs", action="store_true", help="omit surviving mutants' diffs")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)

    if args.data_root is not None:
        root = args.data_root.resolve()
    elif os.environ.get("PDM_DATA_ROOT"):
        root = Path(os.environ["PDM_DATA_ROOT"]).resolve()
    else:
        root = PROJECT_ROOT / "data"
    patterns = module_patterns(args.module)
    files = source_files(patterns)
    if not files:
        sys.exit("no source file matched")

    workdir = Path(tempfile.mkdtemp(prefix="pdm_mutation_"))
    scratch = workdir / "scratch"
    env = {
        **os.environ,
        # mutmut puts its mutated copy of src/ first on sys.path (and drops this entry from it);
        # a test's subprocess imports the unmutated copy, so it cannot kill a mutant
        "PYTHONPATH": str(workdir / "src"),
        "PDM_DATA_ROOT": str(scratch / "data"),
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    try:
        tests = test_selection(files, args.tests, args.all_tests)
        prepare_workdir(workdir, patterns, tests)
        scratch.mkdir()
        print(f"mutating {len(files)} files in {workdir} (budget {args.budget_minutes} min)")
        finished, seconds = run_mutmut(workdir, args.budget_minutes * 60, args.max_children, env)
        results = read_results(workdir, files)
        if not any(results.values()):
            log_tail = (workdir / "mutmut.log").read_text()[-3000:]
            print(log_tail)
            sys.exit("mutmut produced no results (see its log above)")
        survivors = [
            name
            for statuses in results.values()
            for name, status in statuses.items()
            if status in {"survived", "no tests", "suspicious"}
        ]
        diffs = {} if args.no_diffs else mutant_diffs(workdir, survivors, env)
        report = build_report(
            results,
            diffs,
            {
                "tool": "mutmut",
                "budget_minutes": args.budget_minutes,
                "wall_seconds": round(seconds, 1),
                "finished_within_budget": finished,
                "max_children": args.max_children,
                "only_mutate": patterns,
                "tests": tests or "[tool.mutmut] pytest_add_cli_args_test_selection",
            },
        )
    finally:
        if args.keep_workdir:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    out = root / "08_reporting" / REPORT_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'module':60s} {'gen':>5s} {'kill':>5s} {'surv':>5s} {'tout':>5s} {'n/c':>5s}  killed")
    for rel, entry in report["modules"].items():
        fraction = entry["killed_fraction"]
        print(
            f"{rel:60s} {entry['generated']:5d} {entry['killed']:5d} {entry['survived']:5d} "
            f"{entry['timeout']:5d} {entry['not_checked']:5d}  "
            f"{'-' if fraction is None else f'{fraction:.1%}'}"
        )
    for group, entry in report["groups"].items():
        fraction = entry["killed_fraction"]
        print(
            f"group {group:12s} killed {'-' if fraction is None else f'{fraction:.1%}'} "
            f"(target {entry['target']}, met: {entry['meets_target']})"
        )
    print(f"overall killed fraction: {report['overall_killed_fraction']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
