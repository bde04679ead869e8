"""Benchmark the anomaly family on every priority machine's synthetic splits.

For each priority machine it runs the namespaced ``anomaly`` template in-process (SequentialRunner,
in-memory catalog: the same nodes as ``kedro run --pipelines anomaly``) on the feature tables of a
data root, and reports: the family's wall time per machine (target <= ~2 s), the detector kept on
val with both detectors' val F1, and the test precision / recall / F1 / false-alarm rate /
missed-alarm rate beside the single-row threshold rule on the same test rows.
Target: anomaly F1 >= 0.85 on every priority machine's test split (reported, never tuned on test).

    python benchmarks/bench_anomaly.py [--data-root DIR]

Without feature tables under ``DIR/04_feature`` (default: a fresh scratch folder) it first runs
``kedro run --pipelines data_generation,data_validation,feature_engineering`` into ``DIR``.
Results: ``<data root>/08_reporting/benchmark_anomaly.json`` (the path is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FOUNDATION = "data_generation,data_validation,feature_engineering"
TARGET_F1 = 0.85
TARGET_SECONDS = 2.0


def ensure_features(data_root: Path, machines: list[str], scratch: Path) -> None:
    """Build the feature tables with the foundation pipelines when any machine lacks them."""
    missing = [
        m for m in machines if not (data_root / "04_feature" / m / "features_test.parquet").exists()
    ]
    if not missing:
        return
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "PDM_DATA_ROOT": str(data_root),
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
    }
    print(f"building features for {len(missing)} machine(s) in {data_root} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipelines", FOUNDATION,
         "--namespaces", ",".join(missing)],
        cwd=PROJECT_ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip


def main() -> None:
    """Run the benchmark and save its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(PROJECT_ROOT / "src"))
    import pandas as pd  # noqa: PLC0415
    from kedro.io import DataCatalog, MemoryDataset  # noqa: PLC0415
    from kedro.runner import SequentialRunner  # noqa: PLC0415

    from pdm_kedro.fleet import (  # noqa: PLC0415
        load_project_parameters,
        machines_in_parameters,
        priority_machines,
    )
    from pdm_kedro.pipeline_registry import namespace_for_machine  # noqa: PLC0415
    from pdm_kedro.pipelines.anomaly import create_pipeline  # noqa: PLC0415
    from pdm_kedro.promotion import PROMOTION_TAG  # noqa: PLC0415

    class KeptDataset(MemoryDataset):
        """In-memory dataset the runner does not release once its consumers have run."""

        def _release(self) -> None:
            pass

    scratch = Path(tempfile.mkdtemp(prefix="pdm_bench_anomaly_"))
    data_root = (args.data_root or scratch / "data").resolve()
    params = load_project_parameters("base", PROJECT_ROOT / "conf")
    machines = priority_machines(params)
    defined = machines_in_parameters(params)
    ensure_features(data_root, machines, scratch)

    per_machine = {}
    for machine_id in machines:
        features = {
            split: pd.read_parquet(
                data_root / "04_feature" / machine_id / f"features_{split}.parquet"
            )
            for split in ("train", "val", "test")
        }
        ns = f"{machine_id}.anomaly"
        catalog = DataCatalog(
            {
                f"params:{machine_id}.machine": MemoryDataset(defined[machine_id]),
                "params:anomaly": MemoryDataset(params["anomaly"]),
                "params:features": MemoryDataset(params["features"]),
                **{f"{machine_id}.features_{s}": MemoryDataset(f) for s, f in features.items()},
                f"{ns}.metrics": KeptDataset(),
            }
        )
        pipe = namespace_for_machine(create_pipeline(), machine_id)
        # the family's training and scoring only: promotion needs the MLflow registry
        pipe = pipe - pipe.only_nodes_with_tags(PROMOTION_TAG)
        start = time.perf_counter()
        SequentialRunner().run(pipe, catalog)
        seconds = time.perf_counter() - start
        metrics = catalog[f"{ns}.metrics"].load()
        rows = {row["metric"]: row for row in metrics["metrics"]}
        per_machine[machine_id] = {
            "seconds": round(seconds, 2),
            "detector": metrics["model"]["detector"],
            "val_f1": {k: round(v, 3) for k, v in metrics["val_metrics"]["detector_f1"].items()},
            "test": {k: round(v["value"], 4) for k, v in rows.items()},
            "test_baseline_rule": {k: round(v["baseline"], 4) for k, v in rows.items()},
            "test_rows": metrics["n_rows"],
            "test_anomaly_rate": round(metrics["positive_rate"], 4),
            "meets_f1_target": rows["f1"]["value"] >= TARGET_F1,
        }
        print(f"  {machine_id:38s} {seconds:5.2f} s  {metrics['model']['detector']:16s} "
              f"F1 {rows['f1']['value']:.3f} (rule {rows['f1']['baseline']:.3f})", flush=True)  # fmt: skip

    f1s = [m["test"]["f1"] for m in per_machine.values()]
    results = {
        "benchmark": "anomaly family on the priority machines' synthetic splits",
        "data_root": str(data_root),
        "cpu_count": os.cpu_count(),
        "target_f1": TARGET_F1,
        "target_seconds_per_machine": TARGET_SECONDS,
        "meets_f1_target_on_every_machine": all(m["meets_f1_target"] for m in per_machine.values()),
        "test_f1_min": min(f1s),
        "test_f1_median": sorted(f1s)[len(f1s) // 2],
        "test_f1_max": max(f1s),
        "seconds_max": max(m["seconds"] for m in per_machine.values()),
        "per_machine": per_machine,
    }
    out = data_root / "08_reporting" / "benchmark_anomaly.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print(f"\nanomaly benchmark ({len(machines)} machines, {os.cpu_count()} cores)")
    header = f"  {'machine':38s} {'s':>5s} {'detector':16s}"
    header += "".join(f" {k:>9s}" for k in ("prec", "recall", "F1", "FAR", "MAR"))
    print(header + "   (test; rule baseline below)")
    keys = ("precision", "recall", "f1", "false_alarm_rate", "missed_alarm_rate")
    for machine_id, m in per_machine.items():
        print(f"  {machine_id:38s} {m['seconds']:5.2f} {m['detector']:16s}"
              + "".join(f" {m['test'][k]:9.3f}" for k in keys))  # fmt: skip
        print(f"  {'':38s} {'':5s} {'rule':16s}"
              + "".join(f" {m['test_baseline_rule'][k]:9.3f}" for k in keys))  # fmt: skip
    print(f"  test F1 min / median / max: {min(f1s):.3f} / {results['test_f1_median']:.3f} / "
          f"{max(f1s):.3f} (target >= {TARGET_F1}: "
          f"{'met' if results['meets_f1_target_on_every_machine'] else 'NOT met'})")  # fmt: skip
    print(f"saved {out}")


if __name__ == "__main__":
    main()
