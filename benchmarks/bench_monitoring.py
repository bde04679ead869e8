"""Continuous-training benchmark: N days of production stream for each machine, one scenario
each, then one cycle (score + monitor + decide); figures in
``<data root>/08_reporting/monitoring_benchmark.json``.

    python benchmarks/bench_monitoring.py                     # 60 days, 10 priority machines, base config
    python benchmarks/bench_monitoring.py --env small --machines motor_siemens_1la7_001 \
        --days 30 --data-root /tmp/bench_mon/data

Machines without an edge bundle in the data root are trained first (``kedro run --pipelines
<machine>``). Scenarios are assigned in turn (none, sensor_offset, new_regime, faster_wear,
sensor_noise) unless ``--scenarios`` names one per machine. Keys: ``false_retrains_none`` (machines
on ``none`` with a drift or performance trigger on any day), ``false_drift_alarms_per_machine_month``
(runs of ``drift_consecutive_windows`` flagged windows on ``none``, per 30 machine-days),
``detection_delay_days`` (per scenario: mean days from the change to the first drift-flagged or
performance-worse window, performance judged as the trigger does: beyond both uncertainties,
with ``retraining.performance_min_failures``; null where every machine missed it; a window is
drift-flagged by a drifted sensor or ``monitoring.min_drifted_features`` drifted features.
Prediction drift of the failure probability and RUL is not counted: it is recorded per window,
but on the base config its KS and PSI thresholds are mostly above what they can reach, it flagged
no window of any scenario, and where it is not blind it already passed 2 of 3 thresholds on
healthy windows before the change (hydraulic_beckwood_press_011's failure probability)), ``backlog_cycle_s`` (the first cycle: N-1 days),
``daily_cycle_s`` (the next cycle, when the last day arrives: score + monitor + decide the one new
day of every machine, no retraining).

Then every ``faster_wear`` machine is retrained twice on its training data plus the matured
production data (``retraining_data.use_production``; the newest matured episodes held out, the
window promotion re-scores champion and challenger on): once as ``cycle --retrain`` does, once
deliberately worse (``retraining_data.train_episodes`` = ``--worse-episodes``, 1: only the
oldest train episode, the fewest a training run accepts; ``--worse-fraction`` a share instead).
Both challengers' figures on the val split (the same episodes for both, many more than the
holdout) are reported (``val_figures``; ``worse_challenger_worse_on_val``: the control is worse
there in every headline family, i.e. it really is worse). ``recovered_fraction_faster_wear``: per headline family
(classification F1, regression RMSE), (metric of the model champion after the promotion decision
- old champion's metric) / (old champion's own test figure - old champion's metric), both
metrics on the fresh holdout window; the mean over machines and families where the old champion
lost something on the fresh window (null where it lost nothing: nothing to recover);
``relative_gain_faster_wear``: the mean relative improvement of that model over the old
champion's headline metric on the fresh window (0 where the challenger was kept).
``worse_challenger_promoted``: whether the deliberately worse challenger was promoted in any
family (per family in ``retraining``). ``--no-retrain`` skips this part.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SCENARIOS = ("none", "sensor_offset", "new_regime", "faster_wear", "sensor_noise")
SIZES = {
    "none": 0.0,
    "sensor_offset": 20.0,
    "new_regime": 0.2,
    "faster_wear": 1.0,
    "sensor_noise": 3.0,
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None)
    parser.add_argument("--machines", default=None, help="comma-separated (default: priority)")
    parser.add_argument("--scenarios", default=None, help="comma-separated, one per machine")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--start-day", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-root", default=None, help="PDM_DATA_ROOT for this run")
    parser.add_argument(
        "--worse-fraction", type=float, default=1.0, help="train share of the worse challenger"
    )
    parser.add_argument(
        "--worse-episodes",
        type=int,
        default=1,
        help="at most this many (oldest) train episodes for the worse challenger "
        "(1: the fewest a training run accepts)",
    )
    parser.add_argument("--retrain", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    if args.data_root:
        os.environ["PDM_DATA_ROOT"] = args.data_root
        os.environ.setdefault(
            "PDM_MLFLOW_TRACKING_URI", f"sqlite:///{Path(args.data_root).parent / 'mlflow.db'}"
        )
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    from pdm_kedro.commands.cycle import RETRAIN_PARAMS, run_cycle, run_session  # noqa: PLC0415
    from pdm_kedro.fleet import load_project_parameters, priority_machines  # noqa: PLC0415
    from pdm_kedro.paths import data_root, project_root  # noqa: PLC0415
    from pdm_kedro.pipelines.monitoring.nodes import (  # noqa: PLC0415
        min_failures_of,
        performance_verdict,
    )

    params = load_project_parameters(env=args.env)
    machines = args.machines.split(",") if args.machines else priority_machines(params)
    scenarios = (
        args.scenarios.split(",")
        if args.scenarios
        else [SCENARIOS[i % len(SCENARIOS)] for i in range(len(machines))]
    )
    bootstrap_project(project_root())
    root = data_root()
    for machine in machines:
        if not (root / "06_models" / machine / "edge" / "manifest.json").is_file():
            print(f"training {machine} ...", flush=True)
            run_session(args.env, machine, None)
    held = Path(root) / "_held_last_day"
    for machine, scenario in zip(machines, scenarios, strict=True):
        stream = {
            "production_stream": {
                "days": args.days,
                "scenario": scenario,
                "start_day": args.start_day,
                "size": SIZES[scenario],
                "seed": args.seed,
                "sensor": None,
            }
        }  # nested: a session's runtime_params are not split on dots like --params
        run_session(args.env, "production_stream", [machine], stream)
        # the last day arrives later: the backlog cycle sees N-1 days, the timed daily cycle one
        for kind in ("incoming", "labels"):
            files = sorted((root / "01_raw" / machine / kind).glob("*.parquet"))
            (held / machine / kind).mkdir(parents=True, exist_ok=True)
            files[-1].rename(held / machine / kind / files[-1].name)
    start = time.perf_counter()
    run_cycle(args.env, machines)
    backlog_cycle_s = time.perf_counter() - start
    for machine in machines:
        for kind in ("incoming", "labels"):
            for f in (held / machine / kind).glob("*.parquet"):
                f.rename(root / "01_raw" / machine / kind / f.name)
    start = time.perf_counter()
    cycle = run_cycle(args.env, machines)
    daily_cycle_s = time.perf_counter() - start
    retraining = params["retraining"]
    n = int(retraining["drift_consecutive_windows"])
    false_retrains, alarms, delays = 0, 0, {s: [] for s in SCENARIOS if s != "none"}
    none_days = 0
    per_machine = {}
    for machine, scenario in zip(machines, scenarios, strict=True):
        reporting = root / "08_reporting" / machine
        report = json.loads((reporting / "monitoring.json").read_text())
        info = json.loads((reporting / "production_stream.json").read_text())
        windows = report["windows"]
        flagged = [bool((w.get("drift") or {}).get("flagged")) for w in windows]
        worse = [
            any(
                (v := performance_verdict(f, (w.get("performance") or {}).get(f), report["champion"]["test"],
                             float(retraining["performance_drop"]), min_failures_of(retraining, f)))
                and v["worse"]
                for f in ("classification", "regression")
            )
            for w in windows
        ]  # fmt: skip
        runs, run = 0, 0
        for f in flagged:
            run = run + 1 if f else 0
            runs += run == n
        per_machine[machine] = {
            "scenario": scenario,
            "flagged_windows": sum(flagged),
            "drift_alarms": runs,
            "performance_worse_windows": sum(worse),
            "performance_judged_windows": sum(
                any((w.get("performance") or {}).get(f) for f in ("classification", "regression"))
                for w in windows
            ),  # windows with enough labelled rows (and positives, for F1) to be judged
            "rows_conserved": bool(report.get("rows_conserved")),
            "change_day": info["change_day"],
        }
        if scenario == "none":
            none_days += len(windows)
            alarms += runs
            false_retrains += bool(runs or any(worse))
        else:
            change = info["change_day"]
            hit = [
                w["day"] for w, f, b in zip(windows, flagged, worse, strict=True)
                if (f or b) and w["day"] >= change
            ]  # fmt: skip
            from datetime import date  # noqa: PLC0415

            delay = (date.fromisoformat(hit[0]) - date.fromisoformat(change)).days if hit else None
            per_machine[machine]["detection_delay_days"] = delay
            delays[scenario].append(delay)
    retraining_out = {}
    retrain_start = time.perf_counter()
    if args.retrain:
        for machine, scenario in zip(machines, scenarios, strict=True):
            if scenario == "faster_wear":
                test = json.loads((root / "08_reporting" / machine / "monitoring.json").read_text())
                retraining_out[machine] = retrain_twice(
                    args.env, machine, test["champion"]["test"], args.worse_fraction, run_session,
                    RETRAIN_PARAMS, args.worse_episodes,
                )  # fmt: skip
    retrain_s = time.perf_counter() - retrain_start
    fractions = [
        f["recovered_fraction"]
        for r in retraining_out.values()
        for f in r["families"].values()
        if f.get("recovered_fraction") is not None
    ]
    gains = [
        f["relative_gain"]
        for r in retraining_out.values()
        for f in r["families"].values()
        if f.get("relative_gain") is not None
    ]
    out = {
        "env": args.env or "base",
        "machines": len(machines),
        "days": args.days,
        "start_day": args.start_day,
        "false_retrains_none": false_retrains,
        "false_drift_alarms_per_machine_month": (alarms / (none_days / 30.0))
        if none_days
        else None,
        "detection_delay_days": {
            s: (
                None
                if not d or all(x is None for x in d)
                else sum(x for x in d if x is not None) / sum(x is not None for x in d)
            )
            for s, d in delays.items()
            if d
        },  # fmt: skip
        "detection_missed": {s: sum(x is None for x in d) for s, d in delays.items() if d},
        "recovered_fraction_faster_wear": sum(fractions) / len(fractions) if fractions else None,
        "relative_gain_faster_wear": (sum(gains) / len(gains)) if gains else None,
        "worse_challenger_promoted": any(r["worse_promoted"] for r in retraining_out.values())
        if retraining_out
        else None,
        "worse_challenger_worse_on_val": all(
            r["worse_is_worse_on_val"] for r in retraining_out.values()
        )
        if retraining_out
        else None,
        "retraining": retraining_out,
        "retraining_s": round(retrain_s, 2),
        "rows_conserved": all(m["rows_conserved"] for m in per_machine.values()),
        "daily_cycle_s": round(daily_cycle_s, 2),
        "daily_cycle": "one new day for every machine: score + monitor + decide, no retraining "
        "(incremental: earlier days neither re-scored nor re-monitored)",
        "backlog_cycle_s": round(backlog_cycle_s, 2),
        "cpu_count": os.cpu_count(),
        "per_machine": per_machine,
        "decisions": cycle["decisions"],
        # what else ran on the machine: timings mean something only when it was idle
        "load_average_at_end": list(os.getloadavg()),
    }
    path = root / "08_reporting" / "monitoring_benchmark.json"
    path.write_text(json.dumps(out, indent=2))
    print(
        json.dumps(
            {k: v for k, v in out.items() if k not in ("per_machine", "decisions")}, indent=2
        )
    )
    print(f"written: {path}")
    return out


def _last_promotions(root: Path, machine: str) -> dict[str, dict]:
    """The newest promotion decision of each family of ``machine`` (promotions.jsonl)."""
    path = root / "08_reporting" / "promotions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["family"]: r for r in rows if r.get("machine_id") == machine}


def recovered_fraction(row: dict, test_value: float | None) -> dict:
    """The share of the headline metric the old champion lost on the fresh window (against its
    own test figure) that the model champion after the decision has back (1: all of it)."""
    from pdm_kedro.promotion import improvement  # noqa: PLC0415

    headline = row["headline"]
    old = (row.get("champion_metrics") or {}).get(headline)
    new = (row.get("challenger_metrics") or {}).get(headline) if row["promote"] else old
    lost = improvement(headline, test_value, old)  # > 0: the champion is worse on the window
    out = {
        "headline": headline,
        "champion_test": test_value,
        "champion_fresh": old,
        "challenger_fresh": (row.get("challenger_metrics") or {}).get(headline),
        "promoted": row["promote"],
        "reason": row["reason"],
    }
    after = improvement(headline, new, old)
    if after is not None and old:
        out["relative_gain"] = after / abs(old)  # of the model champion after the decision
    if lost is None or lost <= 0:
        return out | {"recovered_fraction": None, "note": "the champion lost nothing here"}
    return out | {"recovered_fraction": improvement(headline, new, old) / lost}


def _val_figures(root: Path, machine: str) -> dict:
    """The headline figures of the last training run's models on its val split (the metrics
    documents' ``val_metrics``): every episode between the train split and the holdout, the
    larger evaluation on which a control can be shown to be worse."""
    out = {}
    for family, metric in (("classification", "f1"), ("regression", "rmse")):
        path = root / "08_reporting" / machine / family / "metrics.json"
        if not path.is_file():
            continue
        val = (json.loads(path.read_text()).get("val_metrics") or {}).get("model") or {}
        out[family] = {metric: val.get(metric)}
    return out


def retrain_twice(  # noqa: PLR0913
    env,
    machine,
    champion_test,
    worse_fraction,
    run_session,
    retrain_params,
    worse_episodes=None,  # noqa: ANN001
) -> dict:
    """A retraining on training + matured production data as ``cycle --retrain`` does, then a
    deliberately worse one (the oldest ``worse_fraction`` of the train episodes, at most
    ``worse_episodes`` of them); both promoted or not by the promotion rule on the same fresh
    holdout window, and both reported on the larger val split."""
    from pdm_kedro.paths import data_root  # noqa: PLC0415

    root = data_root()
    print(f"retraining {machine} on training + production data ...", flush=True)
    run_session(env, machine, None, retrain_params)
    good = _last_promotions(root, machine)
    good_val = _val_figures(root, machine)
    used = json.loads((root / "08_reporting" / machine / "retraining_data.json").read_text())
    fresh = bool(used.get("production_rows"))  # else it retrained on the source splits
    families = {
        family: recovered_fraction(good[family], (champion_test.get(family) or {}).get(
            good[family]["headline"]))
        for family in ("classification", "regression")
        if family in good and fresh
    }  # fmt: skip
    print(
        f"retraining {machine} on the oldest {worse_fraction:.0%} of its train episodes "
        f"(at most {worse_episodes}) ...",
        flush=True,
    )
    worse_params = {
        "retraining_data": retrain_params["retraining_data"]
        | {"train_fraction": worse_fraction, "train_episodes": worse_episodes}
    }
    run_session(env, machine, None, worse_params)
    worse = _last_promotions(root, machine)
    worse_used = json.loads((root / "08_reporting" / machine / "retraining_data.json").read_text())
    worse_val = _val_figures(root, machine)
    return {
        "note": None
        if fresh
        else "no matured production rows: retrained on the source splits, "
        "promotion judged on the source's test split (no fresh window)",
        "holdout": used["test"],
        "production_rows_trained": used.get("production_rows_trained"),
        "families": families,
        "promoted": {f: r["promote"] for f, r in good.items()},
        "worse_challenger": {
            f: {"promoted": r["promote"], "reason": r["reason"]} for f, r in worse.items()
        },  # fmt: skip
        "worse_promoted": any(r["promote"] for r in worse.values()),
        # the control's figures on the larger val split (the same episodes for both challengers,
        # its train split is the oldest share of the good one's): it must be worse there
        "worse_train_episodes": worse_used.get("train_episodes_kept"),
        "good_train_episodes": used.get("train_episodes_kept"),
        "val": used.get("val"),
        "val_figures": {"good": good_val, "worse": worse_val},
        "worse_is_worse_on_val": _worse_on_val(good_val, worse_val),
    }


def _worse_on_val(good: dict, worse: dict) -> bool | None:
    """Whether the control is worse than the good challenger on val in every headline family."""
    from pdm_kedro.promotion import improvement  # noqa: PLC0415

    verdicts = []
    for family, figures in good.items():
        for metric, value in figures.items():
            change = improvement(metric, (worse.get(family) or {}).get(metric), value)
            if change is not None:
                verdicts.append(change < 0)
    return all(verdicts) if verdicts else None


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
