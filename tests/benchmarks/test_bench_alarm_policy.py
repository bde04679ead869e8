"""``benchmarks/bench_alarm_policy.py`` on the tiny fixtures: the sustained-alarm rule is chosen
on out-of-fold train+val alarms (no test table exists in its data root), within the budget."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks import load_benchmark
from tests.conftest import TEST_MACHINE


def _row(k, n, warned, false_alarms):
    return {"k": k, "n": n, "warned_24h_fraction": warned, "false_alarms_per_1000h": false_alarms}


def test_choose_warns_most_within_the_budget_and_breaks_ties_on_false_alarms():
    choose = load_benchmark("bench_alarm_policy").choose
    rows = [
        _row(1, 1, 0.9, 1.4),  # warns most, over the budget
        _row(2, 2, 0.8, 0.9),
        _row(3, 3, 0.8, 0.7),  # as many warned, fewer false alarms
        _row(4, 4, 0.6, 0.2),
    ]
    assert choose(rows, 1.0) == rows[2]
    assert choose(rows, 2.0) == rows[0]
    assert choose(rows, 0.1) is None


def test_main_measures_out_of_fold_rules_on_train_and_val_only(tiny_features, tmp_path):
    bench = load_benchmark("bench_alarm_policy")
    folder = tmp_path / "04_feature" / TEST_MACHINE
    folder.mkdir(parents=True)
    for split in ("train", "val"):  # no features_test.parquet: reading test would fail
        tiny_features[split].to_parquet(folder / f"features_{split}.parquet")
    argv = ["--data-root", str(tmp_path), "--machines", TEST_MACHINE, "--max-k", "3"]
    argv += ["--budget", "1000"]  # the tiny fixture alarms often: any rule keeps this budget
    out = bench.main([*argv, "--max-n", "4"])
    assert {(r["k"], r["n"]) for r in out["grid"]} == {
        (k, n) for k in (1, 2, 3) for n in range(k, 5)
    }
    assert out["machines"][TEST_MACHINE]["episodes"] == sum(
        tiny_features[s]["episode_id"].nunique() for s in ("train", "val")
    )
    in_a_row = [r for r in out["grid"] if r["n"] == r["k"]]  # the figures' definition
    assert out["chosen"] == bench.choose(in_a_row, 1000.0) and out["chosen"] is not None
    assert out["chosen_k_of_n"] == bench.choose(out["grid"], 1000.0)
    assert out["configured"]["k"] == out["configured"]["n"] == 4  # conf/base, n null = k
    saved = json.loads((tmp_path / "08_reporting" / "benchmark_alarm_policy.json").read_text())
    assert saved["grid"] == out["grid"]
    assert bench.main(argv + ["--max-n", "4"])["grid"] == out["grid"]  # seeded: same numbers
    with pytest.raises(SystemExit, match="no feature tables"):
        bench.main(["--data-root", str(tmp_path / "empty"), "--machines", TEST_MACHINE])
