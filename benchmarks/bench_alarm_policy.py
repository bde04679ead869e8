"""The sustained-alarm rule of the event figures, chosen on TRAIN+VAL only.

A maintenance planner acts on a sustained alarm, not on one reading: the event figures
(``warned_24h_fraction``, ``false_alarms_per_1000h``, :mod:`pdm_kedro.evaluation.events`) count
an alarm once the row alarm is on at ``k`` of the last ``n`` readings
(``classification.events.sustained_readings`` / ``window_readings``; ``n = k``: k in a row).
This script measures every rule of a grid on out-of-fold probabilities: for each machine of a
finished default run, the classifier is trained as the pipeline trains it
(``train_failure_classifier`` on ``features_train``, early-stopped on ``features_val``) and
every train+val row is scored by a fold model that never saw its episode
(``out_of_fold_probability``, the same folds that choose the decision threshold); the alarm is
the out-of-fold probability at the threshold those scores choose (``best_f1_threshold``, as
``choose_threshold_by_grouped_cv``). The event figures are pooled over the fleet's train+val
episodes. The chosen rule (``chosen``) is k readings in a row, the event definition issue 10
names: the k that warns the most failures >= ``warning_lead_hours`` ahead with at most
``--budget`` false alarms per 1,000 operating hours (ties: fewer false alarms). The k-of-n rules
(an off-delay: the alarm holds through a few readings below the threshold) are measured beside
it for information (``chosen_k_of_n``), not used for the reported figures. The test split is
never read.

    python benchmarks/bench_alarm_policy.py --data-root <data root of a default run>

Results: ``<data root>/08_reporting/benchmark_alarm_policy.json``. Not run by the tests: about
2 minutes for the 10 priority machines on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))


def out_of_fold_alarms(features: Path, params: dict, machine: dict) -> dict:
    """One machine's out-of-fold alarm inputs over its train+val rows (test never read)."""
    from pdm_kedro import contract as c  # noqa: PLC0415
    from pdm_kedro.evaluation.classification_metrics import best_f1_threshold  # noqa: PLC0415
    from pdm_kedro.fleet import parse_machine  # noqa: PLC0415
    from pdm_kedro.pipelines.classification import nodes as cls  # noqa: PLC0415

    train, val = (pd.read_parquet(features / f"features_{s}.parquet") for s in ("train", "val"))
    classifier = cls.train_failure_classifier(train, val, params)
    pooled, oof = cls.out_of_fold_probability(classifier, train, val, params)
    y = pooled[c.FAILURE_WITHIN_HORIZON].to_numpy(np.int8)
    threshold = best_f1_threshold(y, oof, float(params["min_decision_threshold"]))["threshold"]
    return {
        "alarm": oof >= threshold,
        "episode": pooled[c.EPISODE].to_numpy(),
        "rul": pooled[c.RUL].to_numpy(np.float64),
        "hours_per_row": 1.0 / parse_machine(machine).rows_per_hour,
        "threshold": float(threshold),
        "episodes": int(pooled[c.EPISODE].nunique()),
    }


def fleet_events(inputs: dict, k: int, n: int, horizon: float, lead: float) -> dict:
    """The event figures of rule ``k`` of ``n`` pooled over every machine's episodes."""
    from pdm_kedro.evaluation.events import episode_events, event_summary  # noqa: PLC0415

    records = []
    for one in inputs.values():
        records += episode_events(
            one["alarm"], one["episode"], one["rul"], one["hours_per_row"], horizon, k, lead, n
        )
    summary = event_summary(records)
    return {"k": k, "n": n, **{m: round(float(v), 4) for m, v in summary.items()}}


def choose(rows: list[dict], budget: float) -> dict | None:
    """The rule warning the most failures within the false-alarm budget (ties: fewer false
    alarms, then the smaller window and k); None when no rule keeps the budget."""
    within = [r for r in rows if r["false_alarms_per_1000h"] <= budget]
    if not within:
        return None
    return min(
        within,
        key=lambda r: (-r["warned_24h_fraction"], r["false_alarms_per_1000h"], r["n"], r["k"]),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--env", default=None)
    parser.add_argument("--machines", default=None, help="comma-separated (default: priority)")
    parser.add_argument("--budget", type=float, default=1.0, help="false alarms per 1,000 h")
    parser.add_argument("--max-k", type=int, default=8)
    parser.add_argument("--max-n", type=int, default=12)
    args = parser.parse_args(argv)
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    from pdm_kedro.fleet import (  # noqa: PLC0415
        family_parameters,
        load_project_parameters,
        machines_in_parameters,
        priority_machines,
    )

    params = load_project_parameters(env=args.env)
    blocks = machines_in_parameters(params)
    machines = args.machines.split(",") if args.machines else priority_machines(params)
    horizon = float(params["labels"]["failure_horizon_hours"])
    lead = float(params["classification"]["events"]["warning_lead_hours"])
    inputs = {}
    for machine in machines:
        features = args.data_root / "04_feature" / machine
        if not (features / "features_val.parquet").is_file():
            print(f"{machine}: no feature tables under {features}, skipped", flush=True)
            continue
        family = family_parameters(params, blocks[machine], "classification")
        inputs[machine] = out_of_fold_alarms(features, family, blocks[machine])
        print(f"{machine}: out-of-fold threshold {inputs[machine]['threshold']:.3f}", flush=True)
    if not inputs:
        raise SystemExit(f"no feature tables under {args.data_root / '04_feature'}")
    rows = [
        fleet_events(inputs, k, n, horizon, lead)
        for k in range(1, args.max_k + 1)
        for n in range(k, args.max_n + 1)
    ]
    chosen = choose([r for r in rows if r["n"] == r["k"]], args.budget)
    chosen_k_of_n = choose(rows, args.budget)
    configured = params["classification"]["events"]
    k0 = int(configured["sustained_readings"])
    n0 = int(configured.get("window_readings") or k0)
    current = fleet_events(inputs, k0, n0, horizon, lead)
    for row in rows:
        if row["n"] == row["k"] or row is chosen_k_of_n:
            print(json.dumps(row), flush=True)
    print("configured:", json.dumps(current))
    print("chosen (k in a row, max warned within the budget):", json.dumps(chosen))
    print("k of n, for information:", json.dumps(chosen_k_of_n))
    out = {
        "split": "train+val, out of fold (test never read)",
        "machines": {
            m: {"threshold": v["threshold"], "episodes": v["episodes"]} for m, v in inputs.items()
        },  # fmt: skip
        "budget_false_alarms_per_1000h": args.budget,
        "horizon_hours": horizon,
        "warning_lead_hours": lead,
        "configured": current,
        "chosen": chosen,
        "chosen_k_of_n": chosen_k_of_n,
        "grid": rows,
    }
    path = args.data_root / "08_reporting" / "benchmark_alarm_policy.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"written: {path}")
    return out


if __name__ == "__main__":
    main()
