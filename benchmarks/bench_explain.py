"""Benchmark the cost of an explanation per row, on the trained models of a data root.

For each priority machine with an edge bundle under ``<data root>/06_models/<machine>/edge``
(exported with ``explanation.json``) and its raw test split, it times per row (the service
answers one row per request; batch amortises):

- ``service_ms_per_row`` (the target): what ``?explain=3`` adds to a service answer, on the
  service's own code path: :func:`pdm_kedro.edge.runtime.predict` with ``explain=3`` minus the
  same call without it (numpy TreeSHAP of the classifier and RUL model over the bundle's trees,
  anomaly deviations, diagnosis), median over ``--repeats`` readings windows of the test split,
  and ``service_ms_per_row_p95``;
- ``explain_answers_ms_per_row``: :func:`pdm_kedro.edge.runtime.explain_answers` alone on the
  same rows (the explanation without the answers), median;
- per family (``families``): the numpy TreeSHAP of one row (``treeshap_ms_per_row``), XGBoost's
  own ``pred_contribs`` over every test row at once divided by rows (``xgboost_batch_ms_per_row``),
  and the training-side :func:`pdm_kedro.evaluation.explain.explain_rows` of one row (pandas,
  DMatrix, name mapping), with the number of trees.

Target: an explanation costs <= 2 ms per row in the service.

    python benchmarks/bench_explain.py --data-root DIR [--machines m1,m2] [--repeats 50]

``DIR`` is the data root of a finished ``kedro run`` (``PDM_DATA_ROOT``). Results:
``<data root>/08_reporting/benchmark_explain.json`` (the path is printed).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.features import compute_features, model_inputs
from pdm_kedro.edge.readings import check_readings
from pdm_kedro.edge.runtime import explain_answers, predict
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.fleet import load_project_parameters, machines_in_parameters, priority_machines

TARGET_MS = 2.0
TOP_N = 3


def latest_model(folder: Path) -> dict:
    """The newest version of a versioned pickle (``model.pkl/<version>/model.pkl``)."""
    versions = sorted((folder / "model.pkl").glob("*/model.pkl"))
    path = versions[-1] if versions else folder / "model.pkl"
    with path.open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 (our own run's artefact)


def _ms(fn, *args, **kwargs) -> float:  # noqa: ANN001, ANN002, ANN003
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - t0) * 1e3


def readings_windows(raw: pd.DataFrame, manifest: dict, count: int) -> list[dict]:
    """``count`` readings windows of ``min_history_rows`` rows, each ending at a test row."""
    need = int(manifest["inputs"]["min_history_rows"])
    sensors = [s["name"] for s in manifest["sensors"]]
    ends = []
    for _, episode in raw.groupby(c.EPISODE, sort=True):
        rows = episode.sort_values(c.TIMESTAMP, kind="stable")
        ends += [(rows, end) for end in range(need, len(rows) + 1)]
    picked = [ends[i] for i in np.linspace(0, len(ends) - 1, count).astype(int)] if ends else []
    out = []
    for rows, end in picked:
        part = rows.iloc[end - need : end]
        window = {
            c.TIMESTAMP: part[c.TIMESTAMP].to_numpy(dtype="datetime64[s]"),
            c.REGIME: part[c.REGIME].astype(str).to_numpy(),
        }
        window |= {s: part[s].ffill().bfill().to_numpy(dtype=np.float64) for s in sensors}
        out.append(window)
    return out


def bench_machine(data_root: Path, machine_id: str, machine: dict, repeats: int) -> dict:
    bundle = load_bundle(data_root / "06_models" / machine_id / "edge")
    raw = pd.read_parquet(data_root / "01_raw" / machine_id / "test.parquet")
    windows = readings_windows(raw, bundle.manifest, repeats)
    predict(bundle, windows[0], explain=TOP_N)  # warm: builds the TreeSHAP paths once
    plain, explained, alone, rows = [], [], [], []
    for window in windows:
        plain.append(_ms(predict, bundle, window))
        explained.append(_ms(predict, bundle, window, explain=TOP_N))
        checked = check_readings(
            window, bundle.manifest, int(bundle.manifest["inputs"]["min_history_rows"]), False
        )
        features = compute_features(checked, bundle.manifest, last_row=True)
        rows.append(features)
        alone.append(_ms(explain_answers, bundle, features, TOP_N))
    added = [e - p for e, p in zip(explained, plain, strict=True)]
    out = {
        "rows": len(windows),
        "service_ms_per_row": statistics.median(added),
        "service_ms_per_row_p95": float(np.percentile(added, 95)),
        "predict_ms_median": statistics.median(plain),
        "explain_answers_ms_per_row": statistics.median(alone),
        "families": {},
    }
    features_test = data_root / "04_feature" / machine_id / "features_test.parquet"
    table = pd.read_parquet(features_test) if features_test.is_file() else None
    for family in ex.OUTPUT_SPACE:
        if not bundle.explainer.explains(family):
            continue
        timing = {
            "trees": len(bundle.explainer.families[family]["trees"]["roots"]),
            "features": len(bundle.explainer.families[family]["feature_names"]),
            "treeshap_ms_per_row": statistics.median(
                _ms(
                    bundle.explainer.contributions,
                    family,
                    model_inputs(r, bundle.manifest, family),
                )
                for r in rows
            ),
        }
        model_dir = data_root / "06_models" / machine_id / family
        if table is not None and (model_dir / "model.pkl").exists():
            model = latest_model(model_dir)
            x = table[list(model["feature_names"])].to_numpy(dtype=np.float32)
            timing["xgboost_batch_ms_per_row"] = _ms(ex.tree_contributions, model, x) / len(x)
            sample = table.iloc[np.linspace(0, len(table) - 1, repeats).astype(int)]
            ex.explain_rows(model, sample.iloc[:1], machine, TOP_N)  # warm
            timing["explain_rows_ms_per_row"] = statistics.median(
                _ms(ex.explain_rows, model, sample.iloc[i : i + 1], machine, TOP_N)
                for i in range(len(sample))
            )
        out["families"][family] = timing
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--machines", help="comma-separated machine ids (default: priority)")
    args = parser.parse_args()
    params = load_project_parameters()
    machines = machines_in_parameters(params)
    wanted = args.machines.split(",") if args.machines else priority_machines(params)
    results = {}
    for machine_id in wanted:
        manifest = args.data_root / "06_models" / machine_id / "edge" / "manifest.json"
        if not manifest.is_file() or "explanation" not in json.loads(manifest.read_text()):
            continue  # not exported (with explanations) in this data root
        results[machine_id] = bench_machine(
            args.data_root, machine_id, machines[machine_id], args.repeats
        )
        print(machine_id, json.dumps(results[machine_id]))
    worst = max((m["service_ms_per_row"] for m in results.values()), default=None)
    report = {
        "target_ms_per_row": TARGET_MS,
        "top_n": TOP_N,
        "worst_service_ms_per_row": worst,
        "met": worst is not None and worst <= TARGET_MS,
        "machines": results,
    }
    path = args.data_root / "08_reporting" / "benchmark_explain.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    if worst is not None:
        print(f"worst service explanation: {worst:.3f} ms/row (target {TARGET_MS} ms)")
    print(path)


if __name__ == "__main__":
    main()
