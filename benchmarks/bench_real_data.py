"""Real-data benchmark for any configuration environment, by each source's declared protocol.

    python benchmarks/bench_real_data.py --env cmapss --env skab [--data-root DIR]
        [--namespaces m1,m2] [--params key=value] [--reuse]

For every ``--env``:

1. runs ``kedro run -e <env>`` (every stage: the headline figures are the pipeline's own) with
   ``PDM_DATA_ROOT=<data root>/<env>`` and a throw-away MLflow store under the data root;
2. reads, for every machine the run trained (the environment's priority machines, or
   ``--namespaces``), each family's ``metrics.json``: the headline test metrics beside their
   baseline, the protocol they follow (``source.protocol``), the secondary all-rows figures, and
   ``source_report.json`` for file sources;
3. puts the published anchors beside them where the machine's config declares them
   (``source.protocol.anchors``: family -> metric -> {method: figure}, quoted from
   ../shared/docs/REAL_DATA.md).

The report is named after the environments: ``<data root>/08_reporting/
real_data_benchmark_<env>[+<env>...].{md,json}``. The data root defaults to $PDM_DATA_ROOT, else
/tmp/pdm_real_data. Nothing here names a file, a machine or a data set: whatever the
environments configure is scored. Wall time and peak memory of each run are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pdm_kedro.fleet import load_project_parameters, machines_in_parameters, priority_machines

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_environment(
    env: str, data_root: Path, namespaces: list[str], params: list[str], cwd: Path
) -> dict[str, Any]:
    """``kedro run -e env`` into ``data_root``; wall time, exit code and the log's tail."""
    environ = {
        **os.environ,
        "PDM_DATA_ROOT": str(data_root),
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{data_root / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    cmd = ["kedro", "run", "-e", env]
    if namespaces:
        cmd += ["--namespaces", ",".join(namespaces)]
    for value in params:
        cmd += ["--params", value]
    data_root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=environ, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SystemExit(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{tail}")
    return {
        "command": " ".join(cmd),
        "wall_seconds": seconds,
        "peak_rss_mb_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def machine_results(data_root: Path, machine_id: str, machine: dict[str, Any]) -> dict[str, Any]:
    """Headline metrics (with baselines and protocol) of every family a machine's run wrote."""
    reports = data_root / "08_reporting" / machine_id
    source = dict(machine.get("source") or {})
    anchors = dict((source.get("protocol") or {}).get("anchors") or {})
    families = {}
    for path in sorted(reports.glob("*/metrics.json")):
        doc = json.loads(path.read_text())
        family = doc["family"]
        metrics = {
            row["metric"]: {
                "value": row.get("value"),
                "baseline": row.get("baseline"),
                "baseline_name": row.get("baseline_name"),
            }
            for row in doc.get("metrics", [])
        }
        secondary = doc.get("all_rows_metrics")
        families[family] = {
            "n_rows": doc.get("n_rows"),
            "protocol": doc.get("protocol")
            or {"name": (source.get("protocol") or {}).get("name") or "every test row"},
            "metrics": metrics,
            "secondary": (
                {
                    "label": secondary["label"],
                    "n_rows": secondary["n_rows"],
                    "metrics": {r["metric"]: r.get("value") for r in secondary["metrics"]},
                }
                if secondary
                else None
            ),
            "threshold_rule": doc.get("threshold_rule"),
            "anchors": anchors.get(family, {}),
        }
    return {
        "source": source.get("type", "synthetic"),
        "source_report": _read_json(reports / "source_report.json"),
        "families": families,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_markdown(result: dict[str, Any]) -> str:
    """The report: per environment, machine and family, ours beside baseline and anchors."""
    lines = [
        f"# Real-data benchmark: {' + '.join(result['environments'])}",
        "",
        "_Generated by `benchmarks/bench_real_data.py`; figures are the pipeline's own "
        "`metrics.json` headline (the source's declared protocol)._",
        "",
    ]
    for env, block in result["environments"].items():
        run = block["run"]
        lines += [
            f"## Environment `{env}`",
            "",
            f"`{run['command']}`: {run['wall_seconds']:.0f} s wall, peak child RSS "
            f"{run['peak_rss_mb_children']:.0f} MB.",
            "",
        ]
        for machine_id, machine in block["machines"].items():
            lines += [f"### {machine_id} ({machine['source']} source)", ""]
            for family, fam in machine["families"].items():
                protocol = fam["protocol"]
                lines += [
                    f"**{family}**: protocol {protocol.get('name')}"
                    + (f" (scored on {protocol['scored_on']})" if protocol.get("scored_on") else "")
                    + f"; {fam['n_rows']} test rows.",
                    "",
                    "| metric | ours | baseline | baseline name |",
                    "|---|---|---|---|",
                ]
                for metric, row in fam["metrics"].items():
                    lines.append(
                        f"| {metric} | {_fmt(row['value'])} | {_fmt(row['baseline'])} | "
                        f"{row.get('baseline_name') or ''} |"
                    )
                lines.append("")
                if fam["secondary"]:
                    shown = ", ".join(
                        f"{k} {_fmt(v)}" for k, v in fam["secondary"]["metrics"].items()
                    )
                    lines += [
                        f"Secondary ({fam['secondary']['label']}, {fam['secondary']['n_rows']} "
                        f"rows): {shown}.",
                        "",
                    ]
                if fam["threshold_rule"]:
                    lines += [f"Threshold rule: `{json.dumps(fam['threshold_rule'])}`.", ""]
                for metric, published in fam["anchors"].items():
                    ours = fam["metrics"].get(metric, {}).get("value")
                    lines += [
                        f"Published anchors, {metric} (ours {_fmt(ours)}):",
                        "",
                        "| method | " + metric + " |",
                        "|---|---|",
                        *(f"| {name} | {_fmt(value)} |" for name, value in published.items()),
                        "",
                    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", action="append", required=True, help="configuration environment")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--namespaces", default="", help="machines to run (default: the env's)")
    parser.add_argument("--params", action="append", default=[], help="passed to kedro run")
    parser.add_argument("--reuse", action="store_true", help="score an earlier run's outputs")
    parser.add_argument("--project", type=Path, default=PROJECT_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.data_root or Path(os.environ.get("PDM_DATA_ROOT", "/tmp/pdm_real_data"))
    root = root.resolve()
    wanted = [n for n in args.namespaces.split(",") if n]
    result: dict[str, Any] = {"environments": {}}
    for env in args.env:
        parameters = load_project_parameters(env, conf_source=args.project / "conf")
        defined = machines_in_parameters(parameters)
        machines = wanted or priority_machines(parameters) or sorted(defined)
        env_root = root / env
        if args.reuse and (env_root / "08_reporting").is_dir():
            run = {
                "command": f"(reused) kedro run -e {env}",
                "wall_seconds": float("nan"),
                "peak_rss_mb_children": float("nan"),
            }
        else:
            run = run_environment(env, env_root, wanted, args.params, args.project)
        result["environments"][env] = {
            "run": run,
            "machines": {m: machine_results(env_root, m, defined[m]) for m in machines},
        }
    name = "real_data_benchmark_" + "+".join(args.env)
    out = root / "08_reporting"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    markdown = render_markdown(result)
    (out / f"{name}.md").write_text(markdown)
    print(markdown)
    print(f"\nwritten: {out / name}.{{md,json}}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
