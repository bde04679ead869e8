"""The edge runtime runs with numpy and onnxruntime only: heavy packages are blocked and unused,
explanations (``--explain``) included."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from pdm_kedro import contract as c

from .readings_helpers import episode_rows, write_readings_csv

BLOCKED = (
    "pandas",
    "sklearn",
    "xgboost",
    "kedro",
    "kedro_datasets",
    "kedro_mlflow",
    "mlflow",
    "onnx",
    "onnxmltools",
    "skl2onnx",
    "pmdarima",
    "statsmodels",
    "scipy",
    "pyarrow",
    "pydantic",
    "yaml",
)

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = set({blocked!r})

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"edge runtime must not import {{name}}")
            return None

    sys.meta_path.insert(0, Block())
    try:
        import pandas  # noqa: F401  (proves the block works)
        raise SystemExit("the import block does not work")
    except ImportError:
        pass
    from pdm_kedro.edge.__main__ import main

    code = main(["predict", "--bundle", {bundle!r}, "--readings", {readings!r}, "--explain", "2"])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
    """
)


def test_predict_with_heavy_packages_blocked(tiny_bundle, tiny_splits, tmp_path):
    folder, manifest = tiny_bundle
    sensors = [s["name"] for s in manifest["sensors"]]
    raw = tiny_splits[2]
    rows = episode_rows(raw, raw[c.EPISODE].value_counts().idxmax())
    rows = rows.iloc[-manifest["inputs"]["min_history_rows"] :].copy()
    rows[sensors] = rows[sensors].ffill().bfill()
    readings = write_readings_csv(rows, sensors, tmp_path / "recent.csv")
    script = SCRIPT.format(blocked=BLOCKED, bundle=str(folder), readings=str(readings))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stderr.strip().splitlines()[-1])
    assert status == {"code": 0, "heavy": []}
    answer = json.loads(done.stdout)
    assert set(answer) >= {"failure", "rul_hours", "anomaly", "explanation"}
    assert set(answer["explanation"]) >= {"failure", "rul_hours", "anomaly", "diagnosis"}
    assert answer["machine_id"] == manifest["machine_id"]
