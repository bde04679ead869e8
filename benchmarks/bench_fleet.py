"""Scale-out benchmark: registry growth with the fleet size, and Dask speedup on the 10 machines.

    python benchmarks/bench_fleet.py --data-root /tmp/bench_fleet/data [--skip-speedup]

Writes ``<data root>/08_reporting/fleet_benchmark.json``:

- ``registry_build_s[n]``: a fresh process loads the machine list of ``n`` configured machines
  and builds the registry plus ``__default__`` (what ``kedro run`` reads); ``n`` in 20, 200,
  2,000, 10,000 (copies of the base machines with new ids in a generated conf environment);
- ``registry_all_pipelines_s[n]``: building every registered pipeline (``kedro registry list``),
  up to 2,000 machines;
- ``one_machine_startup_s[n]``: ``kedro run -e <generated env> --namespaces <machine>`` from
  process start to its first node;
- ``sequential_s`` / ``dask_s`` / ``speedup`` / ``identical_metrics``: the 10 priority machines
  by one single-threaded ``kedro run`` (``OMP_NUM_THREADS=1``: the same work as the workers do,
  one machine after another) and by ``pdm-kedro fleet run`` on a LocalCluster of 2
  single-threaded workers (a fresh data root: machines in the given order), comparing their
  ``fleet_metrics.csv``; ``default_run_s`` / ``speedup_vs_default_run``: the default
  ``kedro run`` as a user starts it (XGBoost on every core, ``n_jobs: null``), its metrics
  compared too (each machine's seconds and CPU seconds on its worker in
  ``dask_machine_s`` / ``dask_machine_cpu_s``); ``dask_with_history_s`` / ``speedup_with_history``: the fleet run again
  on a fresh root holding only the first fleet run's ``summary.json`` (as a nightly run finds
  the previous night's timings: machines submitted longest first), its metrics compared too;
  and ``projection`` from the measured per-machine cost (a projection, not a measurement).
  About 13 minutes on an idle 2-core host (the single-threaded run alone is about 250 s, the
  default run about 205 s);
- ``isolation`` (``--isolation-compare``, small config, two machines, 2 workers): each
  machine's seconds on its worker with ``--isolation session`` (a KedroSession in the warm
  worker) and ``--isolation process`` (a ``kedro run`` subprocess per machine), and each
  command's total time. About 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
from pdm_kedro.distributed.generated_fleet import make_conf_source, write_generated_fleet  # noqa: E402

COUNTS = (20, 200, 2000, 10000)
ALL_PIPELINES_UP_TO = 2000
ONE_MACHINE = "motor_siemens_1la7_001"
REGISTRY_SNIPPET = """
import sys, time, json
t0 = time.perf_counter()
from pathlib import Path
from kedro.framework.startup import bootstrap_project
bootstrap_project(Path.cwd())
from pdm_kedro import pipeline_registry
t1 = time.perf_counter()
pipeline_registry.use_config_env(sys.argv[1])
registry = pipeline_registry.register_pipelines()
default = registry["__default__"]
t2 = time.perf_counter()
every = None
if sys.argv[2] == "1":
    every = sum(len(registry[name].nodes) for name in registry)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "all_s": t3 - t2 if every else None,
                  "names": len(registry), "default_nodes": len(default.nodes)}))
"""


def base_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true",
        PDM_DATA_ROOT=str(root / "data"), PDM_MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
        PYTHONPATH=os.pathsep.join([str(PROJECT / "src"), env.get("PYTHONPATH", "")]),
    )  # fmt: skip
    env.pop("KEDRO_ENV", None)
    return env


def make_shim(root: Path) -> Path:
    """A project folder: the project's pyproject.toml, and a conf source to add environments to."""
    shim = root / "project"
    (shim / "src").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "pyproject.toml", shim / "pyproject.toml")
    make_conf_source(shim / "conf", PROJECT / "conf")
    return shim


def startup_s(shim: Path, env_name: str, env: dict[str, str], timeout: float = 600) -> float:
    """Seconds from ``kedro run -e env --namespaces m`` starting to its first node."""
    command = [sys.executable, "-m", "kedro", "run", "-e", env_name, "--namespaces", ONE_MACHINE]
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603
        command, cwd=shim, env={**env, "COLUMNS": "400"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Running node" in line or "Loading data from" in line:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                break
        raise RuntimeError(f"no node started ({proc.poll()}):\n{''.join(seen)[-3000:]}")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def registry_growth(counts: list[int], work: Path) -> dict:
    shim = make_shim(work)
    env = base_env(work)
    out: dict = {"registry_build_s": {}, "registry_all_pipelines_s": {},
                 "one_machine_startup_s": {}, "registry_details": {}}  # fmt: skip
    for n in counts:
        env_name = write_generated_fleet(shim / "conf", n)
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", REGISTRY_SNIPPET, env_name, str(int(n <= ALL_PIPELINES_UP_TO))],
            cwd=shim, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        detail = json.loads(result.stdout.strip().splitlines()[-1])
        out["registry_build_s"][str(n)] = round(detail["build_s"], 3)
        if detail["all_s"] is not None:
            out["registry_all_pipelines_s"][str(n)] = round(detail["all_s"], 3)
        out["one_machine_startup_s"][str(n)] = round(startup_s(shim, env_name, env), 3)
        out["registry_details"][str(n)] = detail
        print(n, "machines:", out["registry_build_s"][str(n)], "s registry,",
              out["one_machine_startup_s"][str(n)], "s start-up", flush=True)  # fmt: skip
        shutil.rmtree(shim / "conf" / env_name)
    return out


def fleet_table(path: Path):  # noqa: ANN201
    import pandas as pd

    frame = pd.read_csv(path)
    return frame.sort_values(["machine_id", "family", "metric"]).reset_index(drop=True)


def speedup(work: Path, workers: int) -> dict:
    """The 10 priority machines: one `kedro run` vs `pdm-kedro fleet run` on a LocalCluster."""
    seq_root, dask_root = work / "sequential", work / "dask"
    loads = {"before_sequential": os.getloadavg()[0]}  # 1-min load average: was the host idle?
    # the same work one machine after another on one thread, as each worker does it
    sequential = _kedro_run_s(seq_root, {"OMP_NUM_THREADS": "1"})
    # the default `kedro run`: one machine after another, XGBoost on every core (n_jobs null)
    loads["before_default_run"] = os.getloadavg()[0]
    default_root = work / "default_run"
    default_run = _kedro_run_s(default_root, {"OMP_NUM_THREADS": None})
    priority = _priority()
    loads["before_dask"] = os.getloadavg()[0]
    distributed = _fleet_run_s(priority, workers, dask_root)
    summary_path = dask_root / "data" / "08_reporting" / "fleet_run" / "summary.json"
    # a second fleet run on a fresh data root that holds only the first run's timings (as a
    # nightly run finds the previous night's): machines submitted longest first
    nightly_root = work / "dask_with_history"
    (nightly_root / "data" / "08_reporting" / "fleet_run").mkdir(parents=True)
    shutil.copy(summary_path, nightly_root / "data" / "08_reporting" / "fleet_run" / "summary.json")
    loads["before_dask_with_history"] = os.getloadavg()[0]
    nightly = _fleet_run_s(priority, workers, nightly_root)
    a = fleet_table(seq_root / "data" / "08_reporting" / "fleet_metrics.csv")
    same = all(
        _same_metrics(a, fleet_table(root / "data" / "08_reporting" / "fleet_metrics.csv"))
        for root in (dask_root, nightly_root, default_root)
    )
    summary = json.loads(summary_path.read_text())
    nightly_summary = json.loads(
        (nightly_root / "data" / "08_reporting" / "fleet_run" / "summary.json").read_text()
    )
    machine_s = [m["seconds"] for m in summary["machines"].values() if m["seconds"]]
    per_machine = sum(machine_s) / len(machine_s)
    return {
        "machines": priority,
        "workers": workers,
        "sequential_s": round(sequential, 1),
        "dask_s": round(distributed, 1),
        "speedup": round(sequential / distributed, 3),
        "identical_metrics": same,
        "default_run_s": round(default_run, 1),
        "speedup_vs_default_run": round(default_run / distributed, 3),
        "dask_order": summary.get("order"),
        "dask_with_history_s": round(nightly, 1),
        "speedup_with_history": round(sequential / nightly, 3),
        "dask_with_history_order": nightly_summary.get("order"),
        "dask_with_history_phases_s": nightly_summary.get("phases_s"),
        "metric_rows": len(a),
        "load_average_1min": {**loads, "end": os.getloadavg()[0]},
        "dask_machine_s": {
            m: round(o["seconds"], 1) for m, o in summary["machines"].items() if o["seconds"]
        },  # fmt: skip
        "dask_machine_cpu_s": {  # CPU seconds of each task: the rest of its seconds it waited
            m: round(o["cpu_s"], 1) for m, o in summary["machines"].items() if o.get("cpu_s")
        },
        "dask_fixed_s": round(distributed - summary["wall_s"], 1),
        "dask_phases_s": summary.get("phases_s"),
        "projection": {
            "note": "projection from the measured per-machine cost (mean seconds of a machine "
            "on its worker), assuming perfectly independent machines and one core per worker; "
            "not a measurement",
            "per_machine_worker_s": round(per_machine, 1),
            **{
                f"{m}_machines_on_{w}_workers_h": round(per_machine * m / w / 3600, 2)
                for m in (1000, 10000)
                for w in (2, 16, 64)
            },
        },
    }


def _kedro_run_s(root: Path, threads: dict[str, str | None]) -> float:
    """Seconds of one default ``kedro run`` with data under ``root`` and ``threads`` set in its
    environment (``None``: unset)."""
    env = base_env(root)
    for name, value in threads.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    started = time.perf_counter()
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "kedro", "run"], cwd=PROJECT, env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _fleet_run_s(machines: list[str], workers: int, root: Path) -> float:
    """Seconds of ``pdm-kedro fleet run`` of ``machines`` on ``workers``, data under ``root``."""
    started = time.perf_counter()
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pdm_kedro", "fleet", "run", "--machines", ",".join(machines),
         "--workers", str(workers), "--retries", "0"],
        cwd=PROJECT, env=base_env(root), check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _same_metrics(a, b) -> bool:  # noqa: ANN001 (two fleet tables)
    import numpy as np

    keys = ["machine_id", "family", "metric"]
    return bool(
        a[keys].equals(b[keys])
        and all(
            np.array_equal(a[c].to_numpy(), b[c].to_numpy(), equal_nan=True)
            for c in ("value", "baseline")
        )
    )


ISOLATION_MACHINES = ("motor_siemens_1la7_001", "pump_grundfos_cr3_004")


def isolation_compare(work: Path, workers: int) -> dict:
    """Per-machine seconds on a worker: a KedroSession in the warm worker vs a subprocess."""
    out: dict = {"config": "small", "machines": list(ISOLATION_MACHINES), "workers": workers}
    for isolation in ("session", "process"):
        root = work / f"isolation_{isolation}"
        started = time.perf_counter()
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "pdm_kedro", "fleet", "run", "-e", "small", "--machines",
             ",".join(ISOLATION_MACHINES), "--workers", str(workers), "--retries", "0",
             "--isolation", isolation],
            cwd=PROJECT, env=base_env(root), check=True, capture_output=True,
        )  # fmt: skip
        total = time.perf_counter() - started
        summary = json.loads(
            (root / "data" / "08_reporting" / "fleet_run" / "summary.json").read_text()
        )
        seconds = {m: round(o["seconds"], 1) for m, o in summary["machines"].items()}
        out[isolation] = {
            "machine_s": seconds,
            "mean_machine_s": round(sum(seconds.values()) / len(seconds), 1),
            "dask_wall_s": round(summary["wall_s"], 1),
            "command_s": round(total, 1),
            "phases_s": summary.get("phases_s"),
        }
        print(isolation, out[isolation], flush=True)
    out["per_machine_saving_s"] = round(
        out["process"]["mean_machine_s"] - out["session"]["mean_machine_s"], 1
    )
    return out


def _priority() -> list[str]:
    import yaml

    return yaml.safe_load((PROJECT / "conf/base/parameters.yml").read_text())["fleet"][
        "priority_machines"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--counts", default=",".join(map(str, COUNTS)))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--skip-registry", action="store_true")
    parser.add_argument(
        "--isolation-compare", action="store_true",
        help="also time machines in a warm worker's KedroSession vs a subprocess (small config)",
    )  # fmt: skip
    args = parser.parse_args()
    out_path = args.data_root / "08_reporting" / "fleet_benchmark.json"
    result = json.loads(out_path.read_text()) if out_path.exists() else {}
    result.update(cpu_count=os.cpu_count(), loadavg_at_start=os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench_fleet_") as tmp:
        if not args.skip_registry:
            result.update(registry_growth([int(c) for c in args.counts.split(",")], Path(tmp)))
        if args.isolation_compare:
            result["isolation"] = isolation_compare(Path(tmp), args.workers)
        if not args.skip_speedup:
            result.update(speedup(Path(tmp), args.workers))
    result["loadavg_at_end"] = os.getloadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written {out_path}")


if __name__ == "__main__":
    main()
