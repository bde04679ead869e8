"""In-process figures of issue 10 on the feature tables of a finished default run (seed 42).

For every priority machine whose ``04_feature/<machine>/features_<split>.parquet`` exist under
``--data-root``: the classifier as the pipeline trains it, its test F1 at the val-chosen and at
the grouped-CV threshold, its PR-AUC, the measured ceiling (classification F1/PR-AUC, RUL
R2/RMSE; the hidden state re-simulated with the project's parameters, which is what the run
wrote) and the event figures at the grouped-CV threshold; then the fleet means and the pooled
fleet event figures. No choice is made here: it reports what the pipeline's rules give.

    python benchmarks/bench_thresholds_ceiling.py --data-root <data root of a default run>

Results: ``<data root>/08_reporting/benchmark_thresholds_ceiling.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))


def main() -> None:
    from tests.conftest import load_machine  # noqa: PLC0415

    from pdm_kedro.evaluation.ceiling import (  # noqa: PLC0415
        ceiling_classifier_metrics,
        ceiling_regressor_metrics,
    )
    from pdm_kedro.evaluation.classification_metrics import (  # noqa: PLC0415
        ranking_metrics,
        threshold_metrics,
    )
    from pdm_kedro.evaluation.events import event_summary  # noqa: PLC0415
    from pdm_kedro.pipelines.classification import nodes as n  # noqa: PLC0415
    from pdm_kedro.pipelines.data_generation.nodes import (  # noqa: PLC0415
        simulate_machine_history_and_hidden_state,
        split_by_episode,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    root = parser.parse_args().data_root
    params: dict = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    cp, rp = params["classification"], params["regression"]
    results: dict = {}
    for m in params["fleet"]["priority_machines"]:
        folder = root / "04_feature" / m
        if not (folder / "features_test.parquet").exists():
            continue
        machine = load_machine(m)
        f = {s: pd.read_parquet(folder / f"features_{s}.parquet") for s in ("train", "val", "test")}
        _, hidden = simulate_machine_history_and_hidden_state(
            machine, params["simulation"], params["labels"]
        )
        h = dict(
            zip(("train", "val", "test"), split_by_episode(hidden, params["splits"]), strict=True)
        )
        clf = n.train_failure_classifier(f["train"], f["val"], cp)
        t_val = n.choose_decision_threshold(clf, f["val"], cp)
        t_cv = n.choose_threshold_by_grouped_cv(clf, f["train"], f["val"], cp)
        rule = n.fit_failure_rule(f["train"], machine, cp)
        p = n.failure_probability(clf, f["test"])
        y = f["test"]["failure_within_horizon"].to_numpy()
        preds = n.predict_failures(n.package_failure_model(clf, t_cv, params["labels"]), f["test"])
        events = n.assess_alarm_events(preds, f["test"], rule, machine, params["labels"], cp)
        hs = (h["train"], h["val"], h["test"])
        cc = ceiling_classifier_metrics(f["train"], f["val"], f["test"], *hs, cp)
        cr = ceiling_regressor_metrics(f["train"], f["val"], f["test"], *hs, rp)
        results[m] = {
            "f1_val_threshold": threshold_metrics(y, p >= t_val)["f1"],
            "f1_cv_threshold": threshold_metrics(y, p >= t_cv)["f1"],
            "pr_auc": ranking_metrics(y, p)["pr_auc"],
            "ceiling_f1": cc["metrics"]["f1"],
            "ceiling_pr_auc": cc["metrics"]["pr_auc"],
            "ceiling_rul_r2": cr["metrics"]["r2"],
            "ceiling_rul_rmse": cr["metrics"]["rmse"],
            "events": events["model"]["summary"],
            "events_rule": events["baseline"]["summary"],
            "episodes": events["model"]["episodes"],
        }
        print(m, {k: v for k, v in results[m].items() if k != "episodes"}, flush=True)
    keys = [k for k in next(iter(results.values())) if k.startswith(("f1", "pr", "ceiling"))]
    means = {k: float(np.mean([r[k] for r in results.values()])) for k in keys}
    fleet = event_summary([e for r in results.values() for e in r["episodes"]])
    print("fleet means:", means)
    print("fleet events (grouped-CV threshold):", fleet)
    out = root / "08_reporting" / "benchmark_thresholds_ceiling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"machines": results, "means": means, "fleet_events": fleet}, indent=1, default=str
        )
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
