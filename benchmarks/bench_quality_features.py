"""Which degradation features help the failure classifier? Chosen on VALIDATION only.

Reads the feature tables of a finished default run (``04_feature/<machine>/features_{train,val}
.parquet``; test is never read), adds the candidate groups of
:mod:`pdm_kedro.core.degradation_features` computed per episode from the tables' z-scores, and
for each variant trains the classifier exactly as the pipeline does (early stopping on val) and
reports per machine: val PR-AUC, val F1 at the threshold chosen by grouped CV over the TRAIN
episodes only (the val figure the pipeline's rule would give on unseen episodes) and the
classifier's fit time.

    python benchmarks/bench_quality_features.py --data-root <data root of a default run>

Results: ``<data root>/08_reporting/benchmark_quality_features.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

VARIANTS = {
    # the tables as the feature stage built them (with the configured groups), and without the
    # failure-mode health indicators (the signature group's hi_* columns)
    "as_built": None,
    "as_built-signature": "drop_signature",
    "base": (),
    "long": ("long",),
    "episode": ("episode",),
    "long+episode": ("long", "episode"),
}


def add_groups(frame, sensors, groups, rows_per_hour, long_hours, baseline_hours):
    from pdm_kedro.core.degradation_features import (  # noqa: PLC0415
        degradation_feature_names,
        degradation_features,
    )

    if groups is None:
        return frame
    if groups == "drop_signature":
        return frame.drop(columns=[col for col in frame.columns if col.startswith("hi_")])
    if not groups:
        return frame
    frame = frame.sort_values(["episode_id", "timestamp"], kind="stable").reset_index(drop=True)
    z = frame[[f"{s}__zscore" for s in sensors]].to_numpy(np.float64)
    ep = frame["episode_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
    bounds = np.r_[starts, len(frame)]
    long_rows = max(2, round(long_hours * rows_per_hour))
    base_rows = max(2, round(baseline_hours * rows_per_hour))
    blocks = [
        degradation_features(z[a:b], rows_per_hour, groups, long_rows, base_rows)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    names = degradation_feature_names(sensors, groups, f"{long_hours:g}h", f"{baseline_hours:g}h")
    extra = pd.DataFrame(np.vstack(blocks), columns=names, index=frame.index)
    return pd.concat([frame, extra], axis=1)


def main() -> None:
    from tests.conftest import load_machine  # noqa: PLC0415

    from pdm_kedro.evaluation.classification_metrics import (  # noqa: PLC0415
        ranking_metrics,
        threshold_metrics,
    )
    from pdm_kedro.fleet import parse_machine  # noqa: PLC0415
    from pdm_kedro.pipelines.classification import nodes as n  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--machines", nargs="*", default=None)
    parser.add_argument("--long-hours", type=float, default=168.0)
    parser.add_argument("--baseline-hours", type=float, default=24.0)
    parser.add_argument("--scale-pos-weight", default=None)
    parser.add_argument("--folds", type=int, default=None, help="threshold_selection.folds")
    parser.add_argument(
        "--row-stride", type=int, default=None, help="threshold_selection.row_stride"
    )
    parser.add_argument("--out", default="benchmark_quality_features.json")
    args = parser.parse_args()
    root = args.data_root
    params: dict = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    cp = dict(params["classification"])
    if args.scale_pos_weight is not None:
        cp["scale_pos_weight"] = (
            args.scale_pos_weight
            if args.scale_pos_weight == "auto"
            else float(args.scale_pos_weight)
        )
    selection = dict(cp["threshold_selection"])
    if args.folds is not None:
        selection["folds"] = args.folds
    if args.row_stride is not None:
        selection["row_stride"] = args.row_stride
    cp["threshold_selection"] = selection
    results: dict = {}
    for m in args.machines or params["fleet"]["priority_machines"]:
        folder = root / "04_feature" / m
        if not (folder / "features_val.parquet").exists():
            continue
        spec = parse_machine(load_machine(m))
        raw = {s: pd.read_parquet(folder / f"features_{s}.parquet") for s in ("train", "val")}
        results[m] = {}
        for variant in args.variants:
            f = {
                s: add_groups(
                    raw[s],
                    spec.sensor_names,
                    VARIANTS[variant],
                    spec.rows_per_hour,
                    args.long_hours,
                    args.baseline_hours,
                )
                for s in raw
            }
            t0 = time.perf_counter()
            clf = n.train_failure_classifier(f["train"], f["val"], cp)
            fit_s = time.perf_counter() - t0
            # threshold by grouped CV over the TRAIN episodes only (val stays unseen by it)
            train_only = f["train"]
            t0 = time.perf_counter()
            t_cv = n.choose_threshold_by_grouped_cv(clf, train_only, train_only.iloc[:0], cp)
            cv_s = time.perf_counter() - t0
            p = n.failure_probability(clf, f["val"])
            y = f["val"]["failure_within_horizon"].to_numpy()
            results[m][variant] = {
                "val_pr_auc": ranking_metrics(y, p)["pr_auc"],
                "val_f1_cv_threshold": threshold_metrics(y, p >= t_cv)["f1"],
                "threshold": t_cv,
                "best_iteration": clf["best_iteration"],
                "n_features": len(clf["feature_names"]),
                "fit_seconds": round(fit_s, 1),
                "cv_seconds": round(cv_s, 1),
            }
            r = results[m][variant]
            print(
                f"{m:36s} {variant:14s} PR-AUC {r['val_pr_auc']:.3f} "
                f"F1 {r['val_f1_cv_threshold']:.3f} it {r['best_iteration']:3d} "
                f"fit {fit_s:5.1f}s cv {cv_s:5.1f}s",
                flush=True,
            )
    means = {
        v: {
            k: float(np.mean([results[m][v][k] for m in results]))
            for k in ("val_pr_auc", "val_f1_cv_threshold")
        }
        for v in args.variants
    }
    for v, mv in means.items():
        print(
            f"{'MEAN':36s} {v:14s} PR-AUC {mv['val_pr_auc']:.3f} F1 {mv['val_f1_cv_threshold']:.3f}"
        )
    out = root / "08_reporting" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "split": "val",
                "args": {k: str(v) for k, v in vars(args).items()},
                "machines": results,
                "mean": means,
            },
            indent=2,
        )
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
