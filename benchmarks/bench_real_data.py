"""Real-data benchmark: NASA C-MAPSS FD001 and SKAB valve1 through the project's pipelines.

    python benchmarks/bench_real_data.py [--data-root DIR] [--datasets ../shared/datasets] [--reuse]

The data root defaults to $PDM_DATA_ROOT, else /tmp/pdm_real_data; ``--data-root data`` writes the
project's ``data/08_reporting/real_data_benchmark.{md,json}``.

1. Runs ``kedro run -e cmapss`` and ``kedro run -e skab`` (stages data_ingestion, data_validation,
   feature_engineering) with ``PDM_DATA_ROOT=<data root>`` and a throw-away MLflow store.
2. Scores the published protocols on those outputs (``pipelines/data_ingestion/
   real_data_evaluation.py``): C-MAPSS RUL (XGBoost on the window features, hyper-parameters and
   early stopping on val engines; one prediction per test engine at its last cycle, truth capped
   at 125; RMSE and NASA score) and failure within 30 cycles (the classification family's nodes);
   SKAB anomaly detection (per file: fit on the first 400 rows, predict the rest; pooled F1, FAR,
   MAR; alarm margin calibrated on anomaly-free.csv only) and h-step forecasts against naive.
3. Writes ``<data root>/08_reporting/real_data_benchmark.{md,json}`` with our figures beside the
   published ones (../shared/docs/REAL_DATA.md) and the training times.

Nothing is chosen on a test part: every choice uses train/val (C-MAPSS training engines) or the
first 400 rows and anomaly-free.csv (SKAB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from kedro.framework.startup import bootstrap_project

from pdm_kedro import contract as c
from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipelines.classification.nodes import (
    choose_decision_threshold,
    failure_probability,
    train_failure_classifier,
)
from pdm_kedro.pipelines.data_ingestion import real_data_evaluation as ev
from pdm_kedro.pipelines.feature_engineering.nodes import feature_columns
from pdm_kedro.pipelines.regression.nodes import predict_rul, train_rul_regressor

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAGES = "data_ingestion,data_validation,feature_engineering"

# Published figures (../shared/docs/REAL_DATA.md)
CMAPSS_PUBLISHED = {
    "CNN (Babu et al., 2016)": 18.45,
    "deep LSTM (Zheng et al., 2017)": 16.14,
    "DCNN (Li et al., 2018)": 12.61,
    "RVE (Costa & Sanchez, 2022)": 13.43,
    "FFVE (2023)": 12.31,
    "STAR transformer (2024)": 10.61,
    "untuned LightGBM, rolling features (independent run)": 15.27,
}
SKAB_PUBLISHED = {  # all 34 SKAB files; ours: valve1 (16 files)
    "Conv-AE": (0.78, 13.55, 28.02),
    "MSET": (0.78, 39.73, 14.13),
    "T-squared+Q (PCA)": (0.76, 26.62, 24.92),
    "LSTM-AE": (0.74, 29.96, 25.92),
    "T-squared": (0.66, 19.21, 42.60),
    "Isolation forest": (0.29, 2.56, 82.89),
    "flag every point": (0.70, 100.0, 0.0),
}

# Choices made before looking at any test part (documented in the report).
RUL_GRID = [  # chosen on val engines (random cut points, 5 seeds)
    {"max_depth": 3, "min_child_weight": 1},
    {"max_depth": 4, "min_child_weight": 10},
]
RUL_XGB = {
    "n_estimators": 2000,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.5,
    "max_bin": 64,
    "tree_method": "hist",
    "early_stopping_rounds": 100,
    "random_state": 42,
}
SKAB = {
    "fit_rows": 400,  # protocol
    "explained": 0.9,  # PCA variance kept
    "window": 30,  # trailing mean of the score, in rows (30 s)
    "target_far": 0.05,  # alarm margin: 5 % false alarms on anomaly-free runs
    "normal_run_rows": 1150,  # anomaly-free.csv cut into runs as long as a valve1 file
    "scale_floor": 1e-6,
    "forecast_horizon": 10,  # steps (10 s)
    "ar_order": 10,
}


def run_kedro(env: str, data_root: Path, mlflow_uri: str, datasets: Path | None) -> float:
    """``kedro run -e env`` of the data stages into ``data_root``; returns the wall time (s)."""
    environ = {
        **os.environ,
        "PDM_DATA_ROOT": str(data_root),
        "PDM_MLFLOW_TRACKING_URI": mlflow_uri,
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    cmd = ["kedro", "run", "-e", env, "--pipelines", STAGES]
    if datasets is not None:
        key = {"cmapss": "cmapss_dir", "skab": "skab_dir"}[env]
        cmd += ["--params", f"{key}={datasets / env}"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=environ, check=True, capture_output=True)
    return time.perf_counter() - start


def _features(data_root: Path, machine: str, split: str) -> pd.DataFrame:
    return pd.read_parquet(data_root / "04_feature" / machine / f"features_{split}.parquet")


def _validated(data_root: Path, machine: str, split: str) -> pd.DataFrame:
    return pd.read_parquet(data_root / "02_intermediate" / machine / f"validated_{split}.parquet")


def bench_cmapss(data_root: Path, datasets: Path, params: dict[str, Any]) -> dict[str, Any]:
    """RUL regression and failure-within-horizon classification, standard protocol."""
    machine = "cmapss_fd001"
    cap = float(params[machine]["machine"]["source"]["rul_cap_hours"])
    train, val, test = (_features(data_root, machine, s) for s in c.SPLITS)
    names = feature_columns(train)
    x_train, x_val = train[names].to_numpy(np.float32), val[names].to_numpy(np.float32)
    val_cuts = pd.concat([ev.truncate_episodes(val, seed) for seed in range(5)])

    start = time.perf_counter()
    candidates = []
    for grid in RUL_GRID:
        settings = {k: v for k, v in RUL_XGB.items()}
        model = xgb.XGBRegressor(**settings, **grid, n_jobs=2)
        model.fit(x_train, train[c.RUL], eval_set=[(x_val, val[c.RUL])], verbose=False)
        val_rmse = ev.rmse(val_cuts[c.RUL], model.predict(val_cuts[names].to_numpy(np.float32)))
        candidates.append((val_rmse, grid, model))
    val_rmse, grid, model = min(candidates, key=lambda t: t[0])
    fit_seconds = time.perf_counter() - start

    last = ev.last_rows(test)
    truth = last[c.RUL].to_numpy()
    published_truth = np.minimum(
        pd.read_csv(datasets / "cmapss" / "RUL_FD001.txt", sep=r"\s+", header=None)[0], cap
    )
    if not np.allclose(np.sort(truth), np.sort(published_truth)):
        raise RuntimeError("test truth at the last cycle differs from RUL_FD001.txt capped")
    start = time.perf_counter()
    pred = np.clip(model.predict(last[names].to_numpy(np.float32)), 0, cap)
    predict_ms = (time.perf_counter() - start) * 1000
    constant = np.full_like(truth, float(train[c.RUL].mean()))

    # the regression family's own node with the environment's `regression` parameters
    start = time.perf_counter()
    family_model = train_rul_regressor(train, val, params["regression"])
    family_seconds = time.perf_counter() - start
    family_pred = np.clip(predict_rul(family_model, last), 0, cap)

    # failure within the horizon, scored at the same last cycles; the family's own nodes
    cls_params = params["classification"]
    horizon = float(params["labels"]["failure_horizon_hours"])
    start = time.perf_counter()
    classifier = train_failure_classifier(train, val, cls_params)
    threshold = choose_decision_threshold(classifier, val, cls_params)
    cls_seconds = time.perf_counter() - start
    y_last = (truth <= horizon).astype(int)
    flags = failure_probability(classifier, last) >= threshold
    from_rul = pred <= horizon  # the regressor read as an alarm, for comparison
    prior = np.ones_like(y_last)  # always alarm
    return {
        "rows": {s: int(len(f)) for s, f in zip(c.SPLITS, (train, val, test), strict=True)},
        "features": len(names),
        "regression": {
            "rmse": ev.rmse(truth, pred),
            "nasa_score": ev.nasa_score(truth, pred),
            "baseline_rmse": ev.rmse(truth, constant),
            "baseline_nasa_score": ev.nasa_score(truth, constant),
            "baseline_name": "constant: mean capped RUL of the training rows",
            "val_rmse_random_cuts": val_rmse,
            "chosen": {**grid, "best_iteration": int(model.best_iteration)},
            "grid": RUL_GRID,
            "xgboost": RUL_XGB,
            "fit_seconds_all_candidates": fit_seconds,
            "predict_ms_100_engines": predict_ms,
            "test_engines": int(len(truth)),
            "family_node": {
                "rmse": ev.rmse(truth, family_pred),
                "nasa_score": ev.nasa_score(truth, family_pred),
                "fit_seconds": family_seconds,
                "best_iteration": int(family_model["best_iteration"]),
                "xgboost": params["regression"]["xgboost"],
            },
            "rul_cap": cap,
        },
        "classification": {
            "horizon_cycles": horizon,
            "threshold_from_val": threshold,
            "test_last_cycle": ev.binary_rates(y_last, flags),
            "baseline_always_alarm": ev.binary_rates(y_last, prior),
            "regressor_rul_below_horizon": ev.binary_rates(y_last, from_rul),
            "fit_seconds": cls_seconds,
        },
    }


def _runs_by_episode(frame: pd.DataFrame, sensors: list[str]) -> dict[int, pd.DataFrame]:
    ordered = frame.sort_values([c.EPISODE, c.TIMESTAMP])
    return {int(e): g for e, g in ordered.groupby(c.EPISODE, sort=True)}


def _ar_forecast(history: np.ndarray, series: np.ndarray, order: int, horizon: int) -> np.ndarray:
    """h-step forecasts of ``series`` (same scale) by a least-squares AR(order) on differences,
    fitted on ``history``; position t holds the forecast made at t - horizon (NaN before)."""
    d = np.diff(history)
    lagged = np.column_stack([d[order - k - 1 : len(d) - k - 1] for k in range(order)])
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(lagged)), lagged], d[order:], rcond=None)
    out = np.full(series.shape, np.nan)
    ds = np.diff(series)
    for t in range(order + 1, len(series) - horizon + 1):
        recent = list(ds[t - order - 1 : t - 1][::-1])  # most recent difference first
        level = series[t - 1]
        for _ in range(horizon):
            step = coef[0] + float(np.dot(coef[1:], recent[:order]))
            level += step
            recent.insert(0, step)
        out[t - 1 + horizon] = level
    return out


def bench_skab(data_root: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Anomaly detection (SKAB protocol) and short-horizon forecasts against naive."""
    machine = "skab_valve1"
    spec = params[machine]["machine"]
    sensors = [s["name"] for s in spec["sensors"]]
    train = _validated(data_root, machine, "train")
    test = _validated(data_root, machine, "test")
    normal = _validated(data_root, machine, "val").sort_values(c.TIMESTAMP)
    fit_rows = SKAB["fit_rows"]
    train_runs, test_runs = _runs_by_episode(train, sensors), _runs_by_episode(test, sensors)
    files = [
        np.vstack([train_runs[e][sensors].to_numpy(), test_runs[e][sensors].to_numpy()])
        for e in sorted(test_runs)
    ]
    if any(len(train_runs[e]) != fit_rows for e in test_runs):
        raise RuntimeError("every valve1 file must give exactly the first 400 rows to train")
    labels = np.concatenate([test_runs[e][c.ANOMALY].to_numpy() for e in sorted(test_runs)])

    readings = normal[sensors].to_numpy()
    n_runs = len(readings) // SKAB["normal_run_rows"]
    normal_runs = [
        readings[i * SKAB["normal_run_rows"] : (i + 1) * SKAB["normal_run_rows"]]
        for i in range(n_runs)
    ]
    start = time.perf_counter()
    calibration = ev.calibrate_alarm_margin(
        normal_runs,
        fit_rows,
        SKAB["explained"],
        SKAB["window"],
        SKAB["target_far"],
        SKAB["scale_floor"],
    )
    flags = np.concatenate(
        ev.detect_per_file(
            files,
            fit_rows,
            SKAB["explained"],
            SKAB["window"],
            calibration["margin"],
            SKAB["scale_floor"],
        )
    )
    detect_seconds = time.perf_counter() - start
    # Looked at only after the calibrated detector above had been scored (see the report):
    # the plain convention of an alarm above the fit rows' own 99th percentile, no margin.
    flags_q99 = np.concatenate(
        ev.detect_per_file(
            files,
            fit_rows,
            SKAB["explained"],
            SKAB["window"],
            1.0,
            SKAB["scale_floor"],
            reference_quantile=0.99,
        )
    )

    horizon, order = SKAB["forecast_horizon"], SKAB["ar_order"]
    forecasts: dict[str, Any] = {}
    start = time.perf_counter()
    for sensor in spec["forecast_sensors"]:
        col = sensors.index(sensor)
        model_err, naive_err = [], []
        for rows in files:
            series = rows[:, col]
            fc = _ar_forecast(series[:fit_rows], series, order, horizon)
            part = slice(fit_rows, None)
            ok = ~np.isnan(fc[part])
            y = series[part][ok]
            naive = series[fit_rows - horizon : len(series) - horizon][ok]
            model_err.append(np.abs(fc[part][ok] - y))
            naive_err.append(np.abs(naive - y))
        mae, mae_naive = (
            float(np.mean(np.concatenate(model_err))),
            float(np.mean(np.concatenate(naive_err))),
        )
        forecasts[sensor] = {"mae": mae, "mae_naive": mae_naive, "mase_vs_naive": mae / mae_naive}
    forecast_seconds = time.perf_counter() - start
    return {
        "files": len(files),
        "test_points": int(labels.size),
        "anomaly": {
            "detector": "per-file PCA T-squared + Q, trailing mean",
            "settings": SKAB,
            "calibration_on_anomaly_free": calibration,
            "test": ev.binary_rates(labels, flags),
            "baseline_flag_everything": ev.binary_rates(labels, np.ones_like(labels)),
            "post_hoc_fit_rows_q99": ev.binary_rates(labels, flags_q99),
            "seconds_calibrate_fit_predict": detect_seconds,
        },
        "forecasting": {
            "horizon_steps": horizon,
            "model": f"AR({order}) on first differences, fitted per file on its first 400 rows",
            "sensors": forecasts,
            "seconds": forecast_seconds,
        },
    }


def render_markdown(result: dict[str, Any]) -> str:
    """The human-readable report."""
    cm, sk = result["cmapss"], result["skab"]
    reg, cls = cm["regression"], cm["classification"]
    an = sk["anomaly"]
    lines = [
        "# Real-data benchmark",
        "",
        f"Produced by `python benchmarks/bench_real_data.py` on {result['generated_utc']} "
        f"({result['cpu_count']} CPU cores, shared). Data: `../shared/datasets` (not copied).",
        "",
        "## NASA C-MAPSS FD001: remaining useful life",
        "",
        "Standard protocol: training target min(RUL, 125); one prediction per test engine at its "
        "last cycle against `RUL_FD001.txt` capped at 125. Features: the project's causal window "
        f"features ({cm['features']} columns, windows 5/10/20/30 cycles). XGBoost; depth and "
        "early stopping chosen on 20 held-out training engines (val), never on test.",
        "",
        "| method | RMSE | NASA score | source |",
        "|---|---|---|---|",
        f"| **this project: XGBoost on window features** | **{reg['rmse']:.2f}** | "
        f"{reg['nasa_score']:.0f} | `kedro run -e cmapss` + this benchmark |",
        f"| regression family node `train_rul_regressor` (its configured settings, untuned) | "
        f"{reg['family_node']['rmse']:.2f} | {reg['family_node']['nasa_score']:.0f} | "
        f"same test engines, fit {reg['family_node']['fit_seconds']:.1f} s |",
        f"| baseline: constant (mean training RUL) | {reg['baseline_rmse']:.2f} | "
        f"{reg['baseline_nasa_score']:.0f} | same test engines |",
    ]
    lines += [f"| {name} | {v:.2f} | | REAL_DATA.md |" for name, v in CMAPSS_PUBLISHED.items()]
    target = "met" if reg["rmse"] <= 12.5 else "NOT met"
    lines += [
        "",
        f"Target RMSE <= 12.5: **{target}** ({reg['rmse']:.2f}). Val RMSE at random cut points "
        f"{reg['val_rmse_random_cuts']:.2f}; chosen {reg['chosen']}. Training time (both grid "
        f"candidates, 2 threads): {reg['fit_seconds_all_candidates']:.1f} s; predicting 100 "
        f"engines: {reg['predict_ms_100_engines']:.1f} ms.",
        "",
        f"Failure within {cls['horizon_cycles']:.0f} cycles, at the last cycle of each test "
        f"engine (classification family nodes; threshold {cls['threshold_from_val']:.3f} from "
        f"val; fit {cls['fit_seconds']:.1f} s):",
        "",
        "| predictor | F1 | false alarms % | missed % |",
        "|---|---|---|---|",
    ]
    for name, key in (
        ("XGBoost classifier", "test_last_cycle"),
        ("RUL regressor <= horizon", "regressor_rul_below_horizon"),
        ("baseline: always alarm", "baseline_always_alarm"),
    ):
        r = cls[key]
        lines.append(f"| {name} | {r['f1']:.3f} | {r['far_pct']:.1f} | {r['mar_pct']:.1f} |")
    t = an["test"]
    lines += [
        "",
        "## SKAB valve1: anomaly detection",
        "",
        "Repository protocol: each of the 16 valve1 files fits its own detector on its first 400 "
        "rows and flags the rest; point-wise predictions pooled "
        f"({sk['test_points']} points, {100 * t['anomalous_share']:.0f} % anomalous). "
        "Detector: PCA T-squared + Q (residual) on standardised sensors, 30-row trailing mean; "
        "alarm margin set for 5 % false alarms on anomaly-free.csv (cut into runs handled like "
        "the test files). No valve1 test row was used for any choice.",
        "",
        "| method | F1 | FAR % | MAR % | source |",
        "|---|---|---|---|---|",
        f"| **this project: per-file PCA T²+Q, smoothed** | **{t['f1']:.3f}** | "
        f"**{t['far_pct']:.1f}** | {t['mar_pct']:.1f} | valve1, this benchmark |",
        f"| baseline: flag every point | {an['baseline_flag_everything']['f1']:.3f} | 100.0 | "
        "0.0 | valve1, same points |",
    ]
    q99 = an["post_hoc_fit_rows_q99"]
    lines.append(
        f"| same detector, threshold = 99th percentile of the fit rows (chosen after seeing the "
        f"row above: not a held-out result) | {q99['f1']:.3f} | {q99['far_pct']:.1f} | "
        f"{q99['mar_pct']:.1f} | valve1, this benchmark |"
    )
    lines += [
        f"| {name} | {f1:.2f} | {far:.2f} | {mar:.2f} | leaderboard, all 34 files |"
        for name, (f1, far, mar) in SKAB_PUBLISHED.items()
    ]
    ok = t["f1"] >= 0.80 and t["far_pct"] <= 15
    lines += [
        "",
        f"Target F1 >= 0.80 with FAR <= 15 %: **{'met' if ok else 'NOT met'}**. Calibration: "
        f"margin {an['calibration_on_anomaly_free']['margin']:.3f} "
        f"(FAR on anomaly-free runs "
        f"{100 * an['calibration_on_anomaly_free']['far_on_normal_runs']:.1f} %). Time to "
        f"calibrate, fit and predict all files: {an['seconds_calibrate_fit_predict']:.2f} s.",
        "",
        f"## SKAB valve1: {sk['forecasting']['horizon_steps']}-step forecasts",
        "",
        f"{sk['forecasting']['model']}; scored on the rest of each file against the naive "
        "forecast (the value h steps earlier) on the same points. MASE < 1 beats naive.",
        "",
        "| sensor | MAE | naive MAE | ratio |",
        "|---|---|---|---|",
    ]
    for sensor, r in sk["forecasting"]["sensors"].items():
        lines.append(
            f"| {sensor} | {r['mae']:.4f} | {r['mae_naive']:.4f} | {r['mase_vs_naive']:.3f} |"
        )
    lines += [
        "",
        "## Pipeline run times",
        "",
        f"`kedro run -e cmapss --pipelines {STAGES}`: {result['kedro_seconds']['cmapss']:.1f} s; "
        f"`kedro run -e skab ...`: {result['kedro_seconds']['skab']:.1f} s (process start included).",
        "",
        "## Notes",
        "",
        "- The SKAB leaderboard covers all 34 files; we have valve1 (16 files), so the rows are "
        "not strictly comparable. C-MAPSS figures are directly comparable (same protocol).",
        "- C-MAPSS: features, grid and early stopping were fixed on val before the first test "
        "score; nothing here was changed to chase the target. The figure moves with the "
        "project's feature set (column subsampling): 13.17 with 327 features, 13.37 after a "
        "constant `regime_code` column was added, 12.84 with 356 after feature_engineering "
        "gained median-residual and repeat-run features (same benchmark code, 2026-11-23).",
        "- SKAB: the calibrated detector was scored once; the 99th-percentile row was added "
        "after seeing it, is labelled as such, and no further variants were tried on test. "
        "Calibrating on anomaly-free.csv transfers badly: that recording is a different operating "
        "point (flow ~125 vs ~32 l/min), so a 5 % false-alarm margin there is far too wide on "
        "valve1; without labelled anomalies outside the test part there is no honest way to set "
        "the margin better.",
        "- Times are from a 2-core machine shared with other jobs (load 5-8): upper bounds.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark and write the report under the data root."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--datasets", type=Path, default=PROJECT_ROOT.parent / "shared/datasets")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the data root's kedro outputs (skip the runs)"
    )
    args = parser.parse_args()
    data_root = args.data_root or Path(os.environ.get("PDM_DATA_ROOT", "/tmp/pdm_real_data"))
    data_root = data_root.resolve()
    datasets = args.datasets.resolve()
    if not (datasets / "cmapss").is_dir() or not (datasets / "skab").is_dir():
        sys.exit(f"data sets not found under {datasets} (need cmapss/ and skab/)")
    mlflow_uri = f"sqlite:///{data_root.parent / (data_root.name + '_mlflow.db')}"
    data_root.mkdir(parents=True, exist_ok=True)

    if args.reuse:
        previous = json.loads((data_root / "08_reporting" / "real_data_benchmark.json").read_text())
        seconds = previous["kedro_seconds"]
    else:
        seconds = {e: run_kedro(e, data_root, mlflow_uri, datasets) for e in ("cmapss", "skab")}
    bootstrap_project(PROJECT_ROOT)  # the project's settings (config loader, resolvers)
    result = {
        "generated_utc": pd.Timestamp.now("UTC").strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(),
        "kedro_seconds": seconds,
        "cmapss": bench_cmapss(data_root, datasets, load_project_parameters(env="cmapss")),
        "skab": bench_skab(data_root, load_project_parameters(env="skab")),
    }
    out = data_root / "08_reporting"
    out.mkdir(parents=True, exist_ok=True)
    (out / "real_data_benchmark.json").write_text(json.dumps(result, indent=2, default=str))
    markdown = render_markdown(result)
    (out / "real_data_benchmark.md").write_text(markdown)
    print(markdown)
    print(f"written: {out / 'real_data_benchmark.md'} and .json")


if __name__ == "__main__":
    main()
