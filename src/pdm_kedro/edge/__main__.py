"""Command line for technicians: ``python -m pdm_kedro.edge predict|info``.

Examples::

    python -m pdm_kedro.edge predict --bundle data/06_models/motor_siemens_1la7_001/edge \
        --readings recent.csv
    python -m pdm_kedro.edge predict --bundle data/06_models --machine pump_grundfos_cr3_004 \
        --readings recent.csv --all-rows --from-episode-start
    python -m pdm_kedro.edge predict --bundle data/06_models/motor_siemens_1la7_001/edge \
        --readings recent.csv --explain 3
    python -m pdm_kedro.edge info --bundle data/06_models/motor_siemens_1la7_001/edge

The readings CSV has a header row: ``timestamp`` (ISO 8601), ``regime`` and one column per sensor
(see ``info``), oldest reading first. Output is JSON on stdout; errors go to stderr with exit code 2.
``--explain N`` adds why the last reading's answers are what they are (``explanation``: top N
factors per family, per-sensor sums, anomaly deviations, failure-mode diagnosis and action).
"""

from __future__ import annotations

import argparse
import json
import sys

from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.errors import BundleError, EdgeError
from pdm_kedro.edge.readings import read_readings_csv
from pdm_kedro.edge.runtime import predict


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pdm_kedro.edge", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("predict", help="answer the four questions from a readings CSV")
    run.add_argument(
        "--bundle", required=True, help="bundle folder, or a 06_models folder with --machine"
    )
    run.add_argument("--machine", help="machine id (checked against the bundle)")
    run.add_argument(
        "--readings", required=True, help="CSV: timestamp, regime, one column per sensor"
    )
    run.add_argument(
        "--all-rows", action="store_true", help="answer for every row, not only the last"
    )
    run.add_argument(
        "--from-episode-start",
        action="store_true",
        help="the first row is the first reading after a repair (no minimum history then)",
    )
    run.add_argument(
        "--explain",
        metavar="N",
        help="explain the last reading's answers with the top N factors (1 to the model inputs)",
    )
    info = sub.add_parser("info", help="what a bundle expects and contains")
    info.add_argument("--bundle", required=True)
    info.add_argument("--machine")
    return parser


def _info(manifest: dict) -> dict:
    return {
        "machine_id": manifest["machine_id"],
        "created_at": manifest["created_at"],
        "sampling_interval_min": manifest["sampling_interval_min"],
        "columns": [manifest["inputs"]["timestamp_column"], manifest["inputs"]["regime_column"]]
        + [f"{s['name']} [{s['unit']}]" for s in manifest["sensors"]],
        "regimes": list(manifest["regimes"]["codes"]),
        "min_history_rows": manifest["inputs"]["min_history_rows"],
        "models": {
            family: {
                k: v
                for k, v in entry.items()
                if k in ("file", "version", "threshold", "size_bytes")
            }
            for family, entry in manifest["models"].items()
        },
    }


def _info_of(bundle) -> dict:  # noqa: ANN001
    explainer = bundle.explainer
    try:
        return _info(bundle.manifest) | {
            "explains": [f for f in bundle.families if explainer and explainer.explains(f)],
        }
    except (KeyError, TypeError) as err:
        raise BundleError(
            f"Bundle {bundle.path}: manifest entry {err} is missing or malformed: re-export it."
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            bundle = load_bundle(args.bundle, args.machine, families=())
            print(json.dumps(_info_of(bundle), indent=2))
            return 0
        bundle = load_bundle(args.bundle, args.machine)
        keep = None  # only the history the last row needs: bounded memory on long files
        if not (args.all_rows or args.from_episode_start):
            spec = bundle.manifest["inputs"]
            keep = int(spec["min_history_rows"]) + int(spec["max_missing_run"]) + 1
        readings = read_readings_csv(args.readings, keep_last=keep)
        try:
            answer = predict(
                bundle,
                readings,
                all_rows=args.all_rows,
                from_episode_start=args.from_episode_start,
                explain=args.explain,
            )
        except (KeyError, TypeError) as err:  # a manifest entry the checks above do not cover
            raise BundleError(
                f"Bundle {bundle.path}: manifest entry {err} is missing or malformed: "
                "re-export the bundle."
            ) from None
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
