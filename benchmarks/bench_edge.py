"""Benchmark the edge bundles: size, load time, latency, throughput, memory; size/accuracy knobs.

Prerequisite: bundles exist under ``<data root>/06_models/<machine>/edge/`` (a ``kedro run`` with
the same ``PDM_DATA_ROOT``; the data root is printed). Then::

    python benchmarks/bench_edge.py [--data-root DIR] [--machines m1,m2] [--repeats 3000]
                                    [--knobs-machine motor_siemens_1la7_001 | --no-knobs]

Per machine and model file: file size, load time (onnxruntime session from the file), single-row
latency p50/p99 (``--repeats`` runs of one test row, one thread), batch throughput (the whole test
split in one call); per machine: end-to-end ``pdm_kedro.edge.runtime.predict`` latency from raw
readings (features + every model + forecast) and the peak RSS of a separate process that imports
only ``pdm_kedro.edge``, loads the bundle and serves ``--serve`` predictions (``resource.getrusage``
in that process). Knobs: the classifier retrained at several (n_estimators, max_depth) settings and
on the top-k features, on the knobs machine's train split (fixed rounds, no early stopping), with
ONNX size, val PR-AUC and val F1 at the val-optimal threshold (validation split, not test).

Targets (issue 4): every model file <= 1 MB (hard limit 10 MB); single-row p99 <= 1 ms per family;
edge process RSS <= 150 MB. Results: ``<data root>/08_reporting/edge_report.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import INPUT_NAME, load_bundle, make_session
from pdm_kedro.edge.runtime import SensorForecastView, predict
from pdm_kedro.paths import data_root

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET_FILE_BYTES = 1_000_000
HARD_LIMIT_BYTES = 10_000_000
TARGET_P99_MS = 1.0
TARGET_RSS_MB = 150.0
KNOBS = [(25, 3), (100, 3), (100, 4), (300, 4), (300, 6), (600, 6)]
TOP_K = (20, 40)

SERVE_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from pdm_kedro.edge.bundle import load_bundle
    from pdm_kedro.edge.readings import read_readings_csv
    from pdm_kedro.edge.runtime import predict

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bundle = load_bundle(sys.argv[1])
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    readings = read_readings_csv(sys.argv[2])
    n = int(sys.argv[3])
    start = time.perf_counter()
    for _ in range(n):
        predict(bundle, readings)
    seconds = time.perf_counter() - start
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in {"pandas", "sklearn", "xgboost", "kedro", "scipy", "onnx"})
    with open("/proc/self/status") as status:
        hwm = [line for line in status if line.startswith("VmHWM")]
    print(json.dumps({
        "rss_after_imports_mb": before / 1024, "rss_after_load_mb": loaded / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vm_hwm_mb": int(hwm[0].split()[1]) / 1024 if hwm else None,
        "predictions": n, "mean_predict_ms": 1000 * seconds / n, "heavy_modules": heavy,
    }))
    """
)


def percentile_ms(samples: list[float], q: float) -> float:
    """Percentile of durations in seconds, as milliseconds."""
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def time_calls(fn, repeats: int) -> list[float]:  # noqa: ANN001
    """Durations (s) of ``repeats`` calls of ``fn`` after a short warm-up."""
    for _ in range(min(50, repeats)):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def model_figures(folder: Path, entry: dict, x: np.ndarray | None, repeats: int) -> dict:
    """Size, load time, single-row latency and batch throughput of one model file."""
    data = (folder / entry["file"]).read_bytes()
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        session = make_session(data)
        loads.append(time.perf_counter() - start)
    figures = {
        "file": entry["file"],
        "size_bytes": len(data),
        "load_ms": 1000 * float(np.median(loads)),
    }
    if entry["family"] == "forecasting":
        views = [SensorForecastView(session, s) for s in entry["sensors"]]
        states = [np.zeros((1, int(v.get_inputs()[0].shape[1]))) for v in views]

        def one() -> None:
            for view, state in zip(views, states, strict=True):
                view.run(None, {view.get_inputs()[0].name: state})

        lat = time_calls(one, repeats)
        figures["single_row_note"] = "one 24-h forecast of every key sensor"
    else:
        row = np.ascontiguousarray(x[:1])
        lat = time_calls(lambda: session.run([entry["output"]], {INPUT_NAME: row}), repeats)
        start = time.perf_counter()
        session.run([entry["output"]], {INPUT_NAME: x})
        batch = time.perf_counter() - start
        figures["batch_rows"] = int(len(x))
        figures["batch_rows_per_s"] = float(len(x) / batch)
    figures["single_row_p50_ms"] = percentile_ms(lat, 50)
    figures["single_row_p99_ms"] = percentile_ms(lat, 99)
    figures["meets_size_target"] = len(data) <= TARGET_FILE_BYTES
    figures["under_hard_limit"] = len(data) <= HARD_LIMIT_BYTES
    figures["meets_latency_target"] = figures["single_row_p99_ms"] <= TARGET_P99_MS
    return figures


def recent_window(root: Path, machine: str, rows: int) -> pd.DataFrame:
    """The last ``rows`` readings of the longest validated test episode (complete first row)."""
    test = pd.read_parquet(root / "02_intermediate" / machine / "validated_test.parquet")
    longest = test[c.EPISODE].value_counts().idxmax()
    episode = test[test[c.EPISODE] == longest].sort_values(c.TIMESTAMP)
    window = episode.iloc[-rows:].copy()
    sensors = [col for col in window.columns if col not in (*c.ID_COLUMNS, *c.LABEL_COLUMNS)]
    window[sensors] = window[sensors].ffill().bfill()
    return window[[c.TIMESTAMP, c.REGIME, *sensors]]


def machine_figures(root: Path, machine: str, repeats: int, serve: int) -> dict:
    """Every figure of one machine's bundle."""
    folder = root / "06_models" / machine / "edge"
    bundle = load_bundle(folder)
    manifest = bundle.manifest
    test = pd.read_parquet(root / "04_feature" / machine / "features_test.parquet")
    models = {}
    for family in bundle.families:
        entry = manifest["models"][family]
        x = (
            test[entry["feature_names"]].to_numpy(dtype=np.float32)
            if "feature_names" in entry
            else None
        )
        models[family] = model_figures(folder, entry, x, repeats)
        models[family]["parity"] = entry.get("parity")
    window = recent_window(root, machine, int(manifest["inputs"]["min_history_rows"]))
    readings = {col: window[col].to_numpy() for col in window.columns}
    readings[c.TIMESTAMP] = window[c.TIMESTAMP].to_numpy(dtype="datetime64[s]")
    readings[c.REGIME] = window[c.REGIME].astype(str).to_numpy()
    lat = time_calls(lambda: predict(bundle, readings), max(50, repeats // 20))
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "recent.csv"
        window.to_csv(csv_path, index=False)
        # Linux carries a parent's peak RSS into ru_maxrss across fork+exec: start the server from
        # a small shell that forks (not execs) it, so getrusage measures the edge process alone.
        done = subprocess.run(
            ["/bin/sh", "-c", '"$0" "$@"; exit $?', sys.executable, "-c", SERVE_SCRIPT,
             str(folder), str(csv_path), str(serve)],
            capture_output=True, text=True, check=True, cwd=tmp,
        )  # fmt: skip
    process = json.loads(done.stdout.strip().splitlines()[-1])
    process["meets_rss_target"] = process["peak_rss_mb"] <= TARGET_RSS_MB
    return {
        "models": models,
        "bundle_bytes": sum(p.stat().st_size for p in folder.iterdir()),
        "end_to_end_predict": {
            "readings_rows": len(window),
            "p50_ms": percentile_ms(lat, 50),
            "p99_ms": percentile_ms(lat, 99),
            "note": "checks + window features + every model + 24-h forecast, from raw readings",
        },
        "edge_process": process,
    }


def classifier_knobs(root: Path, machine: str) -> dict:
    """Classifier size vs validation accuracy at several tree counts/depths and feature counts."""
    import xgboost as xgb  # noqa: PLC0415
    from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: PLC0415

    from pdm_kedro.pipelines.edge_export.converters import xgboost_to_onnx  # noqa: PLC0415
    from pdm_kedro.pipelines.feature_engineering.nodes import feature_columns  # noqa: PLC0415

    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_classification.yml").read_text())
    base = dict(params["classification"]["xgboost"])
    for key in ("n_estimators", "max_depth", "eval_metric"):
        base.pop(key, None)
    train = pd.read_parquet(root / "04_feature" / machine / "features_train.parquet")
    val = pd.read_parquet(root / "04_feature" / machine / "features_val.parquet")
    names = feature_columns(train)
    y_train = train[c.FAILURE_WITHIN_HORIZON].to_numpy()
    y_val = val[c.FAILURE_WITHIN_HORIZON].to_numpy()
    spw = float((y_train == 0).sum() / max(1, (y_train == 1).sum()))

    def fit(n_estimators: int, depth: int, cols: list[str]) -> dict:
        start = time.perf_counter()
        model = xgb.XGBClassifier(
            **base, n_estimators=n_estimators, max_depth=depth, scale_pos_weight=spw,
            random_state=int(params["classification"]["seed"]),
        )  # fmt: skip
        model.fit(train[cols].to_numpy(dtype=np.float32), y_train)
        seconds = time.perf_counter() - start
        proba = model.predict_proba(val[cols].to_numpy(dtype=np.float32))[:, 1]
        precision, recall, _ = precision_recall_curve(y_val, proba)
        f1 = np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12))
        size = xgboost_to_onnx(model, len(cols), 15).ByteSize()
        return {
            "n_estimators": n_estimators, "max_depth": depth, "n_features": len(cols),
            "onnx_bytes": int(size), "val_pr_auc": float(average_precision_score(y_val, proba)),
            "val_best_f1": float(f1), "fit_seconds": seconds, "model": model,
        }  # fmt: skip

    rows = [fit(n, d, names) for n, d in KNOBS]
    ref = next(r for r in rows if (r["n_estimators"], r["max_depth"]) == (300, 4))
    gains = ref["model"].get_booster().get_score(importance_type="total_gain")
    order = sorted(range(len(names)), key=lambda i: -gains.get(f"f{i}", 0.0))
    for k in TOP_K:
        rows.append(fit(300, 4, [names[i] for i in sorted(order[:k])]))
    for row in rows:
        row.pop("model")
    return {
        "machine_id": machine,
        "split": "val (fit on train with fixed rounds; no early stopping, test untouched)",
        "metric_note": "val_best_f1 uses the val-optimal threshold: optimistic, for comparing knobs",
        "settings": rows,
    }


def main() -> None:
    """Measure every bundle found (or the ones asked for) and write edge_report.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--machines", default=None, help="comma list (default: every bundle)")
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--serve", type=int, default=200)
    parser.add_argument("--knobs-machine", default="motor_siemens_1la7_001")
    parser.add_argument("--no-knobs", action="store_true")
    args = parser.parse_args()
    root = (args.data_root or data_root()).resolve()
    print(f"data root: {root}")
    found = sorted(p.parent.parent.name for p in root.glob("06_models/*/edge/manifest.json"))
    machines = args.machines.split(",") if args.machines else found
    if not machines:
        sys.exit(
            f"no edge bundle under {root}/06_models: run `kedro run` with this data root first"
        )
    report = {"data_root": str(root), "targets": {
        "file_bytes": TARGET_FILE_BYTES, "hard_limit_bytes": HARD_LIMIT_BYTES,
        "single_row_p99_ms": TARGET_P99_MS, "edge_rss_mb": TARGET_RSS_MB}, "machines": {}}  # fmt: skip
    for machine in machines:
        figures = machine_figures(root, machine, args.repeats, args.serve)
        report["machines"][machine] = figures
        for family, f in figures["models"].items():
            print(
                f"{machine:36s} {family:15s} {f['size_bytes'] / 1024:8.1f} KiB  load "
                f"{f['load_ms']:6.2f} ms  p50 {f['single_row_p50_ms'] * 1000:7.1f} us  p99 "
                f"{f['single_row_p99_ms'] * 1000:7.1f} us  batch "
                f"{f.get('batch_rows_per_s', float('nan')):10.0f} rows/s"
            )
        e2e, proc = figures["end_to_end_predict"], figures["edge_process"]
        print(
            f"{machine:36s} end-to-end predict p50 {e2e['p50_ms']:.2f} ms p99 {e2e['p99_ms']:.2f} ms"
            f"; edge process peak RSS {proc['peak_rss_mb']:.1f} MB"
        )
    all_models = [f for m in report["machines"].values() for f in m["models"].values()]
    report["summary"] = {
        "machines": len(report["machines"]),
        "max_file_bytes": max(f["size_bytes"] for f in all_models),
        "max_single_row_p99_ms": max(f["single_row_p99_ms"] for f in all_models),
        "max_edge_rss_mb": max(
            m["edge_process"]["peak_rss_mb"] for m in report["machines"].values()
        ),
        "all_files_within_target": all(f["meets_size_target"] for f in all_models),
        "all_latency_within_target": all(f["meets_latency_target"] for f in all_models),
        "all_rss_within_target": all(
            m["edge_process"]["meets_rss_target"] for m in report["machines"].values()
        ),
        "parity_failures": sorted(
            f"{m}/{fam}"
            for m, fig in report["machines"].items()
            for fam, f in fig["models"].items()
            if (f.get("parity") or {}).get("passed") is False
        ),  # fmt: skip
    }
    print(json.dumps(report["summary"], indent=2))
    if not args.no_knobs and args.knobs_machine in found:
        report["classifier_knobs"] = classifier_knobs(root, args.knobs_machine)
        for row in report["classifier_knobs"]["settings"]:
            print(
                f"knob n_estimators={row['n_estimators']:4d} depth={row['max_depth']} "
                f"features={row['n_features']:3d}: {row['onnx_bytes'] / 1024:8.1f} KiB, val PR-AUC "
                f"{row['val_pr_auc']:.3f}, val best F1 {row['val_best_f1']:.3f}"
            )
    out = root / "08_reporting" / "edge_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
