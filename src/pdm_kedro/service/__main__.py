"""``python -m pdm_kedro.service body --readings recent.csv``: a predict request body from a CSV.

The CSV is the edge command line's readings file (``timestamp``, ``regime``, one column per
sensor, oldest first; an empty field is a missing reading). The JSON goes to stdout: ``readings``
as columns, numbers as numbers, empty fields as ``null``.
"""

from __future__ import annotations

import argparse
import json
import sys

from pdm_kedro.edge.errors import EdgeError
from pdm_kedro.edge.readings import MISSING_TOKENS, read_readings_csv

TEXT_COLUMNS = ("timestamp", "regime")


def body_from_csv(path: str, all_rows: bool = False, from_episode_start: bool = False) -> dict:
    """The ``POST /v1/machines/{id}/predict`` body of a readings CSV."""
    columns = read_readings_csv(path)
    readings = {}
    for name, values in columns.items():
        if name in TEXT_COLUMNS:
            readings[name] = [str(v) for v in values]
            continue
        out = []
        for i, value in enumerate(values.tolist()):
            if value.strip() in MISSING_TOKENS:
                out.append(None)
                continue
            try:
                out.append(float(value))
            except ValueError:
                raise EdgeError(
                    f"{path}: column {name!r}, row {i}: {value!r} is not a number."
                ) from None
        readings[name] = out
    body: dict = {"readings": readings}
    if all_rows:
        body["all_rows"] = True
    if from_episode_start:
        body["from_episode_start"] = True
    return body


def main(argv: list[str] | None = None) -> int:
    """Write the request body of a readings CSV to stdout; exit 2 on a bad file."""
    parser = argparse.ArgumentParser(
        prog="python -m pdm_kedro.service", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    body = sub.add_parser("body", help="predict request body (JSON) from a readings CSV")
    body.add_argument("--readings", required=True)
    body.add_argument("--all-rows", action="store_true")
    body.add_argument("--from-episode-start", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = body_from_csv(args.readings, args.all_rows, args.from_episode_start)
    except EdgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
