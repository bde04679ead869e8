"""Benchmark the fleet foundation: generation + validation + features for the priority machines.

Runs ``kedro run --pipelines data_generation,data_validation,feature_engineering`` at the default
size (10 machines x 50,000 rows) in a scratch data root and MLflow store, then prints and saves:
wall time of the whole command and of the pipeline itself (Kedro's own figure, without start-up),
peak memory (max RSS of the kedro process), rows and quarantine counts, and the single-row
threshold rule's F1 per machine (the label-difficulty check). Target: under 60 s on 2 cores.

    python benchmarks/bench_foundation.py [--runner SequentialRunner|ParallelRunner] [--data-root DIR]

Results: ``<data root>/08_reporting/benchmark_foundation.json`` (the data root is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAGES = "data_generation,data_validation,feature_engineering"
TARGET_SECONDS = 60.0


def run_kedro(args: list[str], env: dict) -> tuple[float, float | None, int, str]:
    """Run kedro; return (wall seconds, Kedro's pipeline seconds, child max RSS in KiB, log)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"kedro run failed with exit code {proc.returncode}")
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    log = proc.stdout + proc.stderr
    match = re.search(r"completed\s+(?:\S+\.py:\d+\s+)?successfully in ([\d.]+) sec", log)
    return wall, float(match.group(1)) if match else None, peak, log


def main() -> None:
    """Run the benchmark and save its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", default="SequentialRunner")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="pdm_bench_foundation_"))
    data_root = (args.data_root or scratch / "data").resolve()
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "COLUMNS": "200",
        "PDM_DATA_ROOT": str(data_root),
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
    }
    wall, pipeline_s, peak_kib, _ = run_kedro(["--pipelines", STAGES, "--runner", args.runner], env)

    sys.path.insert(0, str(PROJECT_ROOT / "src"))
    from pdm_kedro.fleet import load_project_parameters, priority_machines  # noqa: PLC0415

    machines = priority_machines(load_project_parameters("base", PROJECT_ROOT / "conf"))
    per_machine = {}
    for machine in machines:
        report = json.loads(
            (data_root / "08_reporting" / machine / "validation_report.json").read_text()
        )
        difficulty = json.loads(
            (data_root / "08_reporting" / machine / "label_difficulty.json").read_text()
        )
        rule = difficulty["labels"]["failure_within_horizon"]
        per_machine[machine] = {
            "rows_in": report["rows_in"],
            "rows_quarantined": report["rows_quarantined"],
            "positive_rate_train": round(rule["positive_rate_train"], 4),
            "threshold_rule": f"{rule['rule']['column']} {rule['rule']['direction']} "
            f"{rule['rule']['threshold']:.4g}",
            "threshold_rule_f1_val": round(rule["f1_val"], 3),
        }
    results = {
        "benchmark": "foundation: generation + validation + features",
        "runner": args.runner,
        "machines": len(machines),
        "rows_per_machine": per_machine[machines[0]]["rows_in"],
        "wall_seconds_kedro_command": round(wall, 2),
        "wall_seconds_pipeline": pipeline_s,
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "target_seconds": TARGET_SECONDS,
        "meets_target": wall < TARGET_SECONDS,
        "cpu_count": os.cpu_count(),
        "per_machine": per_machine,
    }
    out = data_root / "08_reporting" / "benchmark_foundation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print(f"foundation benchmark ({args.runner}, {len(machines)} machines, {os.cpu_count()} cores)")
    print(f"  kedro command wall time : {wall:6.1f} s (target < {TARGET_SECONDS:.0f} s)")
    print(f"  pipeline wall time      : {pipeline_s} s (Kedro's figure, without start-up)")
    print(f"  peak memory (max RSS)   : {peak_kib / 1024:6.0f} MB")
    print(
        f"  {'machine':38s} {'rows':>6s} {'quar.':>5s} {'pos.rate':>8s} {'rule F1 (val)':>13s}  rule"
    )
    for machine, m in per_machine.items():
        print(f"  {machine:38s} {m['rows_in']:6d} {m['rows_quarantined']:5d} "
              f"{m['positive_rate_train']:8.3f} {m['threshold_rule_f1_val']:13.3f}  {m['threshold_rule']}")  # fmt: skip
    print(f"saved {out}")


if __name__ == "__main__":
    main()
