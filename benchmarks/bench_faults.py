"""Fault benchmark (issue 18): hostile bundles, readings and config, concurrent store start-up.

Prerequisite: an edge bundle under ``<data root>/06_models/<machine>/edge/`` (a ``kedro run`` with
the same ``PDM_DATA_ROOT``) and its test split ``<data root>/05_model_input/<machine>/test.parquet``
or any raw readings. Then::

    python benchmarks/bench_faults.py [--data-root DIR] [--machine ID] [--concurrent 20]

Raw-file cases validate the run's own raw train split (``01_raw/<machine>/train.parquet``) made
faulty (in ``fail`` and ``quarantine`` mode), plus the cases the contract allows (unsorted rows,
time zones, missing-value tokens: accepted and counted) and bad user CSV files. Run cases
(``--no-runs`` skips them) start real ``kedro run -e small --namespaces <machine>`` runs in a
project shim under a temporary folder: the same machine twice at once, Ctrl-C after a promotion
decision, a run killed during its edge export, and the next run taking the dead run's lock.

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


# --- raw files: validation and ingestion (in-process, on the run's own raw split) ----------------


def _validation_outcome(run, expect_rows: list[int] | None) -> str:  # noqa: ANN001
    """``run()`` validates a faulty split: a named error, or a quarantine that conserves rows
    (and holds the faulty rows when ``expect_rows`` is given); anything accepted is silent."""
    from pdm_kedro.pipelines.data_ingestion.nodes import DataSourceError  # noqa: PLC0415
    from pdm_kedro.pipelines.data_validation.nodes import DataValidationError  # noqa: PLC0415

    try:
        result = run()
    except (DataValidationError, DataSourceError) as err:
        return "clear_error" if str(err).strip() else "crash"
    except Exception:  # noqa: BLE001 (what the benchmark measures)
        traceback.print_exc(limit=2)
        return "traceback"
    valid, quarantined, report = result
    conserved = (
        report["rows_in"]
        == len(valid) + len(quarantined)
        == (report["rows_valid"] + report["rows_quarantined"])
    )
    if not conserved:
        return "crash"
    if quarantined.empty:
        return "silent_wrong"
    if expect_rows is not None and not set(expect_rows) <= set(quarantined["__row"].tolist()):
        return "silent_wrong"
    return "quarantine_rows_conserved"


def _control_outcome(run, check) -> str:  # noqa: ANN001
    """A control case the contract allows: accepted with its count (``check(report)``) is
    handled (``clear_error``); refused, quarantined or uncounted is ``crash``."""
    try:
        valid, quarantined, report = run()
    except Exception:  # noqa: BLE001
        traceback.print_exc(limit=2)
        return "crash"
    return "clear_error" if quarantined.empty and check(report) else "crash"


def raw_cases(root: Path, machine_id: str, work: Path) -> list[dict]:
    """Bad raw splits in ``fail`` and ``quarantine`` mode, corrupted values, and the cases the
    contract allows (unsorted rows, time zones, missing-value tokens); bad user CSV files."""
    import pandas as pd  # noqa: PLC0415

    from pdm_kedro.fleet import load_project_parameters  # noqa: PLC0415
    from pdm_kedro.pipelines.data_validation.nodes import (  # noqa: PLC0415
        fit_plausibility_reference,
        validate_readings,
    )

    params = load_project_parameters()
    machine = params[machine_id]["machine"]
    validation = params["validation"]
    raw = pd.read_parquet(root / "01_raw" / machine_id / "train.parquet")
    raw["__row"] = np.arange(len(raw))  # an extra column (kept, ignored): which input row
    reference = fit_plausibility_reference(raw, machine, validation)
    sensors = [s["name"] for s in machine["sensors"]]
    temperature = next(
        (s["name"] for s in machine["sensors"] if s["kind"] == "temperature"), sensors[0]
    )
    rows = [11, 57, 203]

    def setting(column, value):  # noqa: ANN001, ANN202
        def edit(frame):  # noqa: ANN001, ANN202
            frame[column] = frame[column].astype(float)
            frame.loc[rows, column] = value
            return frame

        return edit

    def out_of_range(frame):  # noqa: ANN001, ANN202
        spec = machine["sensors"][0]
        frame.loc[rows, spec["name"]] = float(spec["max"]) * 10 + 1
        return frame

    def off_by_orders(frame):  # noqa: ANN001, ANN202
        ref = reference["sensors"][sensors[0]]
        spec = machine["sensors"][0]
        value = ref["median"] + 2000 * ref["scale"]  # a unit mix-up (x1000)
        frame.loc[rows, spec["name"]] = value
        return frame

    def nan_burst(frame):  # noqa: ANN001, ANN202
        frame.loc[100 : 100 + int(validation["max_null_run"]), sensors[1]] = np.nan
        return frame

    def duplicates(frame):  # noqa: ANN001, ANN202
        for r in rows:
            frame.loc[r, "timestamp"] = frame.loc[r - 1, "timestamp"]
        return frame

    def bad_labels(frame):  # noqa: ANN001, ANN202
        if "rul" in frame:
            frame.loc[rows, "rul"] = -5.0
        return frame

    row_faults = {
        "out_of_physical_range": (out_of_range, rows),
        "tiny_1e-100_in_temperature": (setting(temperature, 1e-100), rows),
        "orders_of_magnitude_off_train": (off_by_orders, rows),
        "inf": (setting(sensors[0], np.inf), rows),
        "nan_burst": (nan_burst, None),
        "duplicate_timestamps": (duplicates, rows),
        "negative_rul": (bad_labels, rows),
    }
    cases = []
    for name, (edit, expect) in row_faults.items():
        for mode in ("fail", "quarantine"):
            frame = edit(raw.copy())
            spec = {**machine, "on_invalid": mode}

            def run(frame=frame, spec=spec):  # noqa: ANN001, ANN202
                return validate_readings(frame, spec, validation, "train", reference)

            outcome = _validation_outcome(run, expect)
            if mode == "fail" and outcome == "quarantine_rows_conserved":
                outcome = "silent_wrong"  # fail mode must stop
            cases.append({"name": f"raw/{name}/{mode}", "outcome": outcome})
    column_faults = {
        "missing_sensor_column": lambda f: f.drop(columns=[sensors[0]]),
        "text_in_sensor_column": lambda f: f.assign(
            **{sensors[0]: f[sensors[0]].map(repr).where(~f.index.isin(rows), "12,5")}
        ),
        "header_only_split": lambda f: f.iloc[:0],
        "timestamps_as_text": lambda f: f.assign(timestamp=f["timestamp"].astype(str)),
    }
    for name, edit in column_faults.items():
        frame = edit(raw.copy())
        outcome = _validation_outcome(
            lambda frame=frame: validate_readings(frame, machine, validation, "train", reference),
            None,
        )
        cases.append({"name": f"raw/{name}", "outcome": outcome})

    # a parquet page with random bytes (seeded): a read error, or the changed values caught
    path = work / "corrupt.parquet"
    raw.to_parquet(path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    lo, hi = len(data) // 3, len(data) // 3 + 2048
    for pos in rng.integers(lo, hi, size=64):
        data[int(pos)] = int(rng.integers(0, 256))
    path.write_bytes(bytes(data))
    try:
        corrupted = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 (the catalog names the dataset and the file)
        outcome = "clear_error"
    else:
        changed = corrupted[sensors].ne(raw[sensors]) & ~(
            corrupted[sensors].isna() & raw[sensors].isna()
        )
        bad = []
        for sensor in machine["sensors"]:
            col = corrupted[sensor["name"]].astype(float)
            ref = reference["sensors"].get(sensor["name"])
            implausible = (col < sensor["min"]) | (col > sensor["max"]) | ~np.isfinite(col)
            implausible |= (col.abs() < 1e-30) & col.ne(0)
            if ref is not None:
                implausible |= (col - ref["median"]).abs() > 1000 * ref["scale"]
            bad += corrupted.index[changed[sensor["name"]] & implausible & col.notna()].tolist()
        outcome = _validation_outcome(
            lambda: validate_readings(corrupted, machine, validation, "train", reference),
            sorted(set(corrupted.loc[bad, "__row"].tolist())) if bad else None,
        )
        if not bad and not changed.to_numpy().any():
            outcome = "clear_error"  # nothing changed in the sensors
    cases.append({"name": "raw/parquet_page_random_bytes", "outcome": outcome})

    # what the contract allows: accepted and counted, never quarantined
    episode = raw["episode_id"].iloc[0]
    first = raw.index[raw["episode_id"] == episode]
    order = [
        *first[:40],
        *first[40:50][::-1],
        *first[50:],
        *raw.index[raw["episode_id"] != episode],
    ]
    tokens = raw[sensors[0]].map(repr).astype(object)
    tokens.iloc[rows] = ["n/a", "NULL", "-nan"]
    controls = {
        "unsorted_rows_within_episode": (raw.loc[order], lambda r: r["rows_reordered"] == 9),
        "timezone_aware_timestamps": (
            raw.assign(
                timestamp=raw["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
            ),
            lambda r: r["timezone_converted_rows"] == len(raw),
        ),
        "missing_value_tokens": (
            raw.assign(**{sensors[0]: tokens}),
            lambda r: r["missing_tokens"].get(sensors[0], 0) >= 3,
        ),
    }
    for name, (frame, check) in controls.items():
        strict = {**machine, "on_invalid": "fail"}
        cases.append(
            {
                "name": f"raw/{name}_accepted_and_counted",
                "outcome": _control_outcome(
                    lambda frame=frame, strict=strict: validate_readings(
                        frame, strict, validation, "train", reference
                    ),
                    check,
                ),
            }
        )
    return cases + source_file_cases(work, validation)


SOURCE_MACHINE = {
    "machine_id": "bench_pump",
    "category": "pump",
    "manufacturer": "bench",
    "model": "bench",
    "power_kw": 0,
    "rated_speed_rpm": 0,
    "voltage": 0,
    "age_years": 0,
    "sampling_interval_min": 1,
    "on_invalid": "fail",
    "source": {
        "type": "file",
        "files": {"data": "valve*"},
        "columns": {
            "time": "datetime",
            "time_kind": "datetime",
            "sensors": {"s_temp": "Temperature"},
        },
        "split": {"method": "time", "train_rows": 30, "val_rows": 10},
        "families": ["anomaly"],
    },
    "sensors": [
        {
            "name": "s_temp",
            "kind": "temperature",
            "unit": "degC",
            "nominal": 60,
            "noise": 1,
            "min": -20,
            "max": 200,
        },
    ],  # fmt: skip
    "forecast_sensors": [],
}


def source_file_cases(work: Path, validation: dict) -> list[dict]:
    """User CSV files read as the base catalog reads them (``keep_default_na: false``)."""
    import pandas as pd  # noqa: PLC0415

    from pdm_kedro.pipelines.data_ingestion.nodes import (  # noqa: PLC0415
        DataSourceError,
        standardise_source_files,
    )

    def csv(lines: list[str]) -> pd.DataFrame:
        path = work / "source.csv"
        path.write_text("datetime,Temperature\n" + "".join(f"{line}\n" for line in lines))
        return pd.read_csv(path, keep_default_na=False, na_values=[""])

    good = [f"2026-01-01 00:{i:02d}:00,{60 + i % 3}.5" for i in range(50)]
    faults = {
        "header_only_file": [],
        "decimal_comma": [*good[:5], '2026-01-01 00:05:00,"60,5"', *good[6:]],
        "unreadable_date": [*good[:5], "yesterday,60.5", *good[6:]],
        "naive_dates_among_aware": [g.replace(",", "Z,", 1) for g in good[:25]] + good[25:],
    }
    cases = []
    for name, lines in faults.items():
        frame = csv(lines)
        try:
            standardise_source_files({"valve1": frame}, SOURCE_MACHINE, validation)
            outcome = "silent_wrong"
        except DataSourceError as err:
            outcome = "clear_error" if str(err).strip() else "crash"
        except Exception:  # noqa: BLE001
            traceback.print_exc(limit=2)
            outcome = "traceback"
        cases.append({"name": f"source/{name}", "outcome": outcome})
    controls = {
        "missing_value_tokens": (
            [
                *good[:5],
                "2026-01-01 00:05:00,n/a",
                "2026-01-01 00:06:00,NULL",
                "2026-01-01 00:07:00,-nan",
                *good[8:],
            ],  # fmt: skip
            lambda n: sum(n["files"]["valve1"]["missing_tokens"]["Temperature"].values()) == 3,
        ),
        "timezone_aware_dates": (
            [g.replace(",", "+02:00,", 1) for g in good],
            lambda n: n["files"]["valve1"]["timezone_converted_rows"] == len(good),
        ),
    }
    for name, (lines, check) in controls.items():
        try:
            readings, _, notes = standardise_source_files(
                {"valve1": csv(lines)}, SOURCE_MACHINE, validation
            )
            ok = check(notes) and readings["timestamp"].dt.tz is None
            outcome = "clear_error" if ok else "crash"
        except Exception:  # noqa: BLE001
            traceback.print_exc(limit=2)
            outcome = "crash"
        cases.append({"name": f"source/{name}_accepted_and_counted", "outcome": outcome})
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


# --- real runs: the same machine twice, Ctrl-C, a killed export (kedro run in a project shim) ---

PROJECT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 900


def _shim(work: Path) -> tuple[Path, dict]:
    """A project folder (``pyproject.toml``, ``conf`` link, empty ``src``) so ``kedro run`` writes
    nothing into the project; data and MLflow store under ``work``; this tree's package."""
    import os  # noqa: PLC0415

    shim = work / "project"
    (shim / "src").mkdir(parents=True)
    shutil.copy(PROJECT / "pyproject.toml", shim / "pyproject.toml")
    (shim / "conf").symlink_to(PROJECT / "conf", target_is_directory=True)
    env = dict(os.environ)
    env.update(
        {
            "KEDRO_DISABLE_TELEMETRY": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PDM_DATA_ROOT": str(work / "data"),
            "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            "PYTHONPATH": str(PROJECT / "src"),
        }
    )
    env.pop("KEDRO_ENV", None)
    return shim, env


def _kedro(machine: str) -> list[str]:
    kedro = Path(sys.executable).with_name("kedro")
    return [
        str(kedro) if kedro.exists() else "kedro",
        "run",
        "-e",
        "small",
        "--namespaces",
        machine,
    ]


def _wait_for(predicate, process, timeout: float = RUN_TIMEOUT_S) -> bool:  # noqa: ANN001
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.5)
    return False


def _sql(db: Path, query: str) -> list:
    import sqlite3  # noqa: PLC0415

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
            return con.execute(query).fetchall()
    except sqlite3.Error:
        return []


def run_cases(machine: str, work: Path) -> list[dict]:
    """Four cases on real ``kedro run -e small --namespaces <machine>`` runs."""
    import signal  # noqa: PLC0415

    from pdm_kedro.edge.bundle import load_bundle  # noqa: PLC0415
    from pdm_kedro.hooks import fail_stale_run  # noqa: PLC0415
    from pdm_kedro.locks import acquire_run_lock  # noqa: PLC0415

    shim, env = _shim(work)
    data, db = work / "data", work / "mlflow.db"
    lock = data / ".locks" / f"{machine}.lock"
    log = data / "logs" / "kedro_run.log"
    live = data / "06_models" / machine / "edge"
    cases = []

    def start() -> subprocess.Popen:
        return subprocess.Popen(_kedro(machine), cwd=shim, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def log_has(text: str) -> bool:
        return log.exists() and text in log.read_text(errors="replace")

    # 1. the same machine twice at once: the second refuses naming the first; then Ctrl-C
    first = start()
    started = _wait_for(lambda: lock.exists() and "mlflow_run_id" in lock.read_text(), first)
    second = subprocess.run(_kedro(machine), cwd=shim, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S, check=False)  # fmt: skip
    named = [ln for ln in second.stderr.splitlines() if "already being run" in ln]
    if not started:
        outcome = "crash"
    elif second.returncode == 0:
        outcome = "silent_wrong"
    elif second.returncode == 2 and len(named) == 1 and f"pid {first.pid}" in named[0]:
        outcome = "clear_error"
    else:
        outcome = "traceback" if "Traceback" in second.stderr else "crash"
    case = {"name": "runs/same_machine_twice_at_once", "outcome": outcome}
    if outcome != "clear_error":
        case["detail"] = {"exit": second.returncode, "stderr_tail": second.stderr.splitlines()[-5:]}
    cases.append(case)

    # 2. Ctrl-C once a promotion was decided: one line, exit 130, FAILED, no alias
    asked = _wait_for(lambda: log_has(f"Completed node: {machine}.forecasting.decide_promotion"),
                      first)  # fmt: skip
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=RUN_TIMEOUT_S)
    lines = stderr.strip().splitlines()
    statuses = [s for (s,) in _sql(db, "select status from runs")]
    aliases = _sql(db, "select * from registered_model_aliases")
    if not asked or first.returncode == 0:
        outcome = "silent_wrong" if first.returncode == 0 else "crash"
    elif (
        first.returncode == 130
        and lines
        and lines[-1].startswith("Error: Run interrupted by SIGINT")
        and statuses == ["FAILED"]
        and not aliases
    ):
        outcome = "clear_error"
    else:
        outcome = "traceback" if "Traceback" in stderr else "silent_wrong"
    case = {"name": "runs/ctrl_c_run_failed_without_alias", "outcome": outcome}
    if outcome != "clear_error":
        case["detail"] = {"exit": first.returncode, "runs": statuses, "aliases": len(aliases),
                          "stderr_tail": lines[-5:]}  # fmt: skip
    cases.append(case)

    # 3. a good run, then a run killed (SIGKILL) during its edge export: last bundle kept
    good = subprocess.run(_kedro(machine), cwd=shim, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)  # fmt: skip
    before = (live / MANIFEST_FILE).read_bytes() if (live / MANIFEST_FILE).exists() else None
    killed = start()
    exporting = _wait_for(
        lambda: (
            f'"pid": {killed.pid}' in (lock.read_text() if lock.exists() else "")
            and log_has(f"Completed node: {machine}.forecasting.export_to_onnx")
        ),
        killed,
    )  # the log is rewritten by each run: wait for this run's lock first
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    try:
        bundle = load_bundle(live, machine_id=machine)
        kept = before is not None and (live / MANIFEST_FILE).read_bytes() == before
        outcome = (
            "clear_error" if good.returncode == 0 and exporting and kept and bundle else "crash"
        )
    except Exception:  # noqa: BLE001
        traceback.print_exc(limit=1)
        outcome = "crash"
    cases.append({"name": "runs/killed_export_keeps_last_bundle", "outcome": outcome})

    # 4. the next run of the machine takes the dead run's lock and marks its MLflow run FAILED
    running = {r for (r,) in _sql(db, "select run_uuid from runs where status = 'RUNNING'")}
    taken, previous = acquire_run_lock(machine, data, {"pid": 0, "host": "bench"})
    marked = fail_stale_run(previous) if previous else None
    taken.release()
    after = {r for (r,) in _sql(db, "select run_uuid from runs where status = 'RUNNING'")}
    ok = previous.get("pid") == killed.pid and marked in running and marked not in after
    cases.append(
        {
            "name": "runs/killed_run_marked_failed_by_next",
            "outcome": "clear_error" if ok else "silent_wrong",
        }
    )
    return cases


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
    parser.add_argument(
        "--no-runs", action="store_true", help="skip the cases that start real kedro runs"
    )
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
        cases += raw_cases(root, bundle.parent.name, work)
        cases += config_cases()
        more, fig = concurrency_cases(args.concurrent, work)
        cases += more
        figures |= fig
        if not args.no_runs:
            (work / "runs").mkdir()
            cases += run_cases(bundle.parent.name, work / "runs")
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
