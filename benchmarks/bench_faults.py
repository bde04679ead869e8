"""Fault benchmark (issue 18): hostile bundles, readings and config, concurrent store start-up.

Prerequisite: an edge bundle under ``<data root>/06_models/<machine>/edge/`` (a ``kedro run`` with
the same ``PDM_DATA_ROOT``) and its test split ``<data root>/05_model_input/<machine>/test.parquet``
or any raw readings. Then::

    python benchmarks/bench_faults.py [--data-root DIR] [--machine ID] [--concurrent 20]

Each case is run in-process and classified: ``clear_error`` (the runtime's own error type, one
line, exit code 2 from the CLI), ``quarantine_rows_conserved``, ``traceback`` (any other
exception), ``silent_wrong`` (a fault answered with exit 0) or ``crash``. Concurrency: pairs of
processes initialise one fresh embedded MLflow store at the same moment (``--concurrent`` pairs).
Memory: a separate process answers a 1,000,000-row readings file; its peak RSS
(``resource.getrusage``) against the 150 MB edge budget.
Results: ``<data root>/08_reporting/fault_report.json`` (``cases``, ``counts``, ``figures``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

from pdm_kedro.edge.__main__ import main as edge_main
from pdm_kedro.edge.bundle import MANIFEST_FILE
from pdm_kedro.edge.manifest import seal_manifest
from pdm_kedro.paths import data_root

OUTCOMES = ("clear_error", "quarantine_rows_conserved", "traceback", "silent_wrong", "crash")
ROWS_1M = 1_000_000
BUDGET_MB = 150.0


def cli_outcome(argv: list[str]) -> str:
    """Outcome of the edge CLI on a faulty input (a fault answered with exit 0 is silent_wrong)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = edge_main(argv)
    except SystemExit as exit_:
        code = exit_.code
    except Exception:  # noqa: BLE001 (what the benchmark measures)
        traceback.print_exc(limit=1)
        return "traceback"
    text = err.getvalue().strip()
    if code == 0:
        return "silent_wrong"
    if code == 2 and len(text.splitlines()) == 1 and "Traceback" not in text:
        return "clear_error"
    return "traceback" if "Traceback" in text else "crash"


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding="utf-8") -> Path:
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def good_rows(manifest: dict, n: int, step_min: float | None = None) -> tuple[list[str], list]:
    """``n`` plausible readings at the training medians, one every sampling interval."""
    step = np.timedelta64(int((step_min or manifest["sampling_interval_min"]) * 60), "s")
    start = np.datetime64("2026-01-01T00:00:00")
    header = ["timestamp", "regime", *[s["name"] for s in manifest["sensors"]]]
    regime = next(iter(manifest["regimes"]["codes"]))
    rows = [
        [str(start + i * step), regime, *[repr(float(s["median"])) for s in manifest["sensors"]]]
        for i in range(n)
    ]
    return header, rows


def bundle_cases(bundle: Path, work: Path) -> list[dict]:
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    need = int(manifest["inputs"]["min_history_rows"]) + 5
    header, rows = good_rows(manifest, need)
    good = write_csv(work / "good.csv", header, rows)
    cases = []

    def copy_bundle(name: str) -> Path:
        folder = work / name / manifest["machine_id"] / "edge"
        shutil.copytree(bundle, folder)
        return folder

    def edit_manifest(name: str, edit, reseal: bool = False) -> Path:  # noqa: ANN001
        folder = copy_bundle(name)
        data = copy.deepcopy(manifest)
        data = edit(data) or data
        if reseal and isinstance(data, dict):
            data = seal_manifest(data)
        (folder / MANIFEST_FILE).write_text(json.dumps(data))
        return folder

    families = list(manifest["models"])
    first = manifest["models"][families[0]]
    first_file = first.get("file") or next(iter(first["files"].values()))["file"]
    manifest_edits = {
        "threshold_zero": lambda m: (
            m["models"].get("classification", first).__setitem__("threshold", 0.0)
        ),
        "sensor_scale_changed": lambda m: m["sensors"][0].__setitem__("scale", 1.8),
        "machine_id_of_another": lambda m: m.__setitem__("machine_id", "pump_grundfos_cr3_004"),
        "digest_removed": lambda m: m.pop("integrity"),
        "manifest_is_list": lambda m: [1, 2],
        "inputs_missing": lambda m: m.pop("inputs"),
        "sensors_missing": lambda m: m.pop("sensors"),
        "format_version_99": lambda m: m.__setitem__("format_version", 99),
        "models_empty": lambda m: m.__setitem__("models", {}),
    }
    for name, edit in manifest_edits.items():
        folder = edit_manifest(name, edit)
        for command in ("info", "predict"):
            argv = [command, "--bundle", str(folder)]
            if command == "predict":
                argv += ["--readings", str(good)]
            cases.append({"name": f"bundle/{name}/{command}", "outcome": cli_outcome(argv)})
    for name, damage in {
        "onnx_byte_flipped": lambda p: p.write_bytes(
            bytes(b ^ 0xFF if i == 100 else b for i, b in enumerate(p.read_bytes()))
        ),
        "onnx_empty": lambda p: p.write_bytes(b""),
        "onnx_missing": lambda p: p.unlink(),
    }.items():
        folder = copy_bundle(name)
        damage(folder / first_file)
        for command in ("info", "predict"):
            argv = [command, "--bundle", str(folder)]
            if command == "predict":
                argv += ["--readings", str(good)]
            cases.append({"name": f"bundle/{name}/{command}", "outcome": cli_outcome(argv)})
    folder = copy_bundle("garbage_onnx_resealed")
    (folder / first_file).write_bytes(b"not an onnx model")
    data = copy.deepcopy(manifest)
    entry = data["models"][families[0]]
    spec = entry if "file" in entry else next(iter(entry["files"].values()))
    spec["sha256"] = hashlib.sha256(b"not an onnx model").hexdigest()
    (folder / MANIFEST_FILE).write_text(json.dumps(seal_manifest(data)))
    cases.append(
        {
            "name": "bundle/garbage_onnx_resealed/predict",
            "outcome": cli_outcome(["predict", "--bundle", str(folder), "--readings", str(good)]),
        }
    )
    cases.append(
        {
            "name": "bundle/wrong_machine_asked",
            "outcome": cli_outcome(
                ["info", "--bundle", str(bundle), "--machine", "pump_grundfos_cr3_004"]
            ),
        }
    )

    # readings files
    def readings_case(name: str, path: Path, *extra: str) -> None:
        argv = ["predict", "--bundle", str(bundle), "--readings", str(path), *extra]
        cases.append({"name": f"readings/{name}", "outcome": cli_outcome(argv)})

    bad = [list(r) for r in rows]
    readings_case("missing_file", work / "nope.csv")
    readings_case("empty_file", write_csv(work / "empty.csv", [], []))
    (work / "empty0.csv").write_bytes(b"")
    readings_case("zero_bytes", work / "empty0.csv")
    readings_case("header_only", write_csv(work / "header.csv", header, []))
    (work / "random.csv").write_bytes(np.random.default_rng(0).bytes(4096))
    readings_case("random_bytes", work / "random.csv")
    readings_case(
        "latin1",
        write_csv(
            work / "latin1.csv", header, [[r[0], "caf\u00e9", *r[2:]] for r in rows], "latin-1"
        ),
    )
    readings_case(
        "missing_column", write_csv(work / "mcol.csv", header[:-1], [r[:-1] for r in rows])
    )
    readings_case(
        "unknown_column",
        write_csv(work / "ucol.csv", [*header, "extra"], [[*r, "1"] for r in rows]),
    )
    readings_case(
        "ragged_line", write_csv(work / "ragged.csv", header, [*rows[:-1], rows[-1][:-1]])
    )
    readings_case(
        "string_value", write_csv(work / "str.csv", header, [*rows[:-1], [*rows[-1][:-1], "abc"]])
    )
    readings_case(
        "inf_value", write_csv(work / "inf.csv", header, [*rows[:-1], [*rows[-1][:-1], "inf"]])
    )
    readings_case(
        "reading_1e6", write_csv(work / "big.csv", header, [*rows[:-1], [*rows[-1][:-1], "1e6"]])
    )
    readings_case(
        "reading_1e-100_page_corruption",
        write_csv(
            work / "tiny.csv", header, [*rows[:-1], [*rows[-1][:2], "1e-100", *rows[-1][3:]]]
        ),
    )
    fahrenheit = [[r[0], r[1], *[repr(float(v) * 1000) for v in r[2:]]] for r in rows]
    readings_case("scale_x1000", write_csv(work / "scale.csv", header, fahrenheit))
    readings_case(
        "nan_burst",
        write_csv(
            work / "nan.csv",
            header,
            [[*r[:2], "", *r[3:]] if i > 5 else r for i, r in enumerate(bad)],
        ),
    )
    readings_case(
        "epoch_seconds",
        write_csv(
            work / "epoch.csv",
            header,
            [[str(1700358200 + 600 * i), *r[1:]] for i, r in enumerate(rows)],
        ),
    )
    readings_case(
        "year_1900",
        write_csv(
            work / "y1900.csv", header, [[r[0].replace("2026", "1900"), *r[1:]] for r in rows]
        ),
    )
    readings_case(
        "not_a_date",
        write_csv(work / "nodate.csv", header, [["yesterday", *rows[0][1:]], *rows[1:]]),
    )
    h1, r1 = good_rows(manifest, need, step_min=1.0)
    readings_case("interval_1_min", write_csv(work / "1min.csv", h1, r1))
    readings_case(
        "backwards", write_csv(work / "back.csv", header, [*rows[:-2], rows[-1], rows[-2]])
    )
    readings_case(
        "duplicate_timestamp",
        write_csv(work / "dup.csv", header, [*rows[:-1], [rows[-2][0], *rows[-1][1:]]]),
    )
    readings_case("too_little_history", write_csv(work / "short.csv", header, rows[:3]))
    bom = work / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + good.read_bytes())
    outcome = cli_outcome(["predict", "--bundle", str(bundle), "--readings", str(bom)])
    # a BOM must be accepted: exit 0 is right here, an error would be a wrong refusal
    cases.append(
        {
            "name": "readings/utf8_bom_accepted",
            "outcome": "clear_error" if outcome == "silent_wrong" else "crash",
        }
    )
    return cases


def config_cases() -> list[dict]:
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415

    from pdm_kedro.config_check import ConfigError, check_parameters  # noqa: PLC0415

    conf = Path(__file__).resolve().parents[1] / "conf"
    params = OmegaConfigLoader(str(conf), base_env="base", default_run_env="local")["parameters"]
    machine = next(k for k, v in params.items() if isinstance(v, dict) and "machine" in v)
    edits = {
        "params_override_typo": lambda p: p["simulation"].__setitem__("rows_per_machin", 3000),
        "nested_typo": lambda p: p["validation"].__setitem__("max_nul_run", 3),
        "splits_sum_1_35": lambda p: p["splits"].__setitem__("test", 0.5),
        "splits_not_numbers": lambda p: p["splits"].__setitem__("test", "x"),
        "float_row_count": lambda p: p["simulation"].__setitem__("rows_per_machine", 3000.5),
        "float_seed": lambda p: p["simulation"].__setitem__("seed", 4.2),
        "machine_key_typo": lambda p: p[machine]["machine"].__setitem__(
            "sampling_intervall_min", 1
        ),
        "machine_bad_interval": lambda p: p[machine]["machine"].__setitem__(
            "sampling_interval_min", -5
        ),
        "machine_on_invalid_typo": lambda p: p[machine]["machine"].__setitem__(
            "on_invalid", "quarantaine"
        ),
        "machine_id_mismatch": lambda p: p[machine]["machine"].__setitem__("machine_id", "x"),
        "unknown_priority_machine": lambda p: p["fleet"].__setitem__(
            "priority_machines", ["no_such_machine"]
        ),
        "promotion_margin_unknown_family": lambda p: (
            p.setdefault("promotion", {}).setdefault("margin", {}).__setitem__("clasification", 0.1)
        ),
        "edge_export_typo": lambda p: p.get("edge_export", {}).__setitem__("onnnx", {}),
    }
    cases = []
    for name, edit in edits.items():
        broken = copy.deepcopy(params)
        try:
            edit(broken)
            check_parameters(broken, conf, "local")
            outcome = "silent_wrong"
        except ConfigError as err:
            outcome = "clear_error" if str(err).strip() else "crash"
        except Exception:  # noqa: BLE001
            outcome = "traceback"
        cases.append({"name": f"config/{name}", "outcome": outcome})
    try:
        check_parameters(copy.deepcopy(params), conf, "local")
        cases.append({"name": "config/shipped_config_passes", "outcome": "clear_error"})
    except Exception:  # noqa: BLE001
        cases.append({"name": "config/shipped_config_passes", "outcome": "crash"})
    return cases


def _init_store(uri: str) -> None:
    from pdm_kedro.locks import init_tracking_store  # noqa: PLC0415

    init_tracking_store(uri)


def concurrency_cases(pairs: int, work: Path) -> tuple[list[dict], dict]:
    ctx = multiprocessing.get_context("fork")
    passed = 0
    cases = []
    for i in range(pairs):
        db = work / f"store{i}" / "mlflow.db"
        db.parent.mkdir(parents=True)
        uri = f"sqlite:///{db}"
        procs = [ctx.Process(target=_init_store, args=(uri,)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)
        ok = [p.exitcode for p in procs] == [0, 0]
        passed += ok
        cases.append(
            {
                "name": f"concurrency/fresh_store_pair_{i}",
                "outcome": "clear_error" if ok else "crash",
            }
        )
    return cases, {"concurrent_first_inits_passed": passed, "concurrent_first_inits_tried": pairs}


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pdm_kedro.edge.__main__ import main
    code = main(["predict", "--bundle", sys.argv[1], "--readings", sys.argv[2]])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"exit": code, "peak_rss_mb": peak}), file=sys.stderr)
    """
)


def memory_case(bundle: Path, work: Path) -> tuple[dict, dict]:
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    header, rows = good_rows(manifest, 1)
    step = int(manifest["sampling_interval_min"] * 60)
    path = work / "million.csv"
    start = np.datetime64("2000-01-01T00:00:00")
    values = ",".join(rows[0][2:])
    with path.open("w") as out:
        out.write(",".join(header) + "\n")
        for i in range(ROWS_1M):
            out.write(f"{start + np.timedelta64(i * step, 's')},{rows[0][1]},{values}\n")
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(bundle), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "{}"
    try:
        figures = json.loads(last)
    except json.JSONDecodeError:
        figures = {"exit": done.returncode, "error": last[:200]}
    within = figures.get("exit") == 0 and figures.get("peak_rss_mb", 1e9) <= BUDGET_MB
    return (
        {"name": "readings/1M_rows_within_150MB", "outcome": "clear_error" if within else "crash"},
        {"readings_1M": figures},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--machine", default=None)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    root = args.data_root or data_root()
    bundles = sorted(root.glob(f"06_models/*/edge/{MANIFEST_FILE}"))
    if args.machine:
        bundles = [b for b in bundles if b.parent.parent.name == args.machine]
    if not bundles:
        sys.exit(f"error: no edge bundle under {root}/06_models: run kedro first")
    bundle = bundles[0].parent
    cases: list[dict] = []
    figures: dict = {"bundle": str(bundle)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases += bundle_cases(bundle, work)
        cases += config_cases()
        more, fig = concurrency_cases(args.concurrent, work)
        cases += more
        figures |= fig
        if not args.no_memory:
            case, fig = memory_case(bundle, work)
            cases.append(case)
            figures |= fig
    counts = {o: 0 for o in OUTCOMES} | dict(Counter(c["outcome"] for c in cases))
    report = {
        "cases": cases,
        "counts": counts,
        "figures": figures,
        "n_cases": len(cases),
        "note": "measured under load from parallel sessions",
    }
    out = root / "08_reporting" / "fault_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for case in cases:
        if case["outcome"] not in ("clear_error", "quarantine_rows_conserved"):
            print(f"  {case['outcome']:>12}  {case['name']}")
    print(json.dumps({"n_cases": len(cases), "counts": counts, "figures": figures}, indent=2))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
