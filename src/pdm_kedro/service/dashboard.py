"""The fleet dashboard: a page at ``/dashboard`` and the two JSON views it draws from.

The page (``static/dashboard/``: hand-written HTML, CSS and JS, inline SVG charts, no CDN) holds
no data: it asks for an API key, keeps it in the tab's ``sessionStorage`` and sends it in the
``X-API-Key`` header to

- ``GET /v1/dashboard/fleet``: every served machine's failure risk, RUL, anomaly state and trend
  over its latest readings, sorted by risk, with the diagnosis and monitoring figures when their
  reports exist;
- ``GET /v1/dashboard/machines/{machine_id}``: that machine's readings with the anomaly flags,
  the answers over time (failure probability, RUL), the 24 h forecast with its intervals, the
  served models beside their baselines, monitoring entries and retraining decisions;

and to the service's own routes (``/v1/machines/{id}/performance``, ``/v1/machines/{id}/training``,
``/v1/jobs/{id}``). Every answer is the edge runtime's (:func:`inference.answer`) on the same
bundle as ``/predict``.

The readings: the service keeps no reading store, so the machine's "latest readings" are the
window ``pdm-kedro sample-readings`` writes (the last 48 h of the latest test episode of
``<data root>/01_raw/<machine>/test.parquet``), labelled as such on the page. Reports the page
shows when present (other pipelines write them): ``08_reporting/diagnosis_report.json``,
``08_reporting/<machine>/diagnosis.json``, ``08_reporting/<machine>/monitoring.json``,
``08_reporting/retraining_decisions.jsonl``; otherwise the page says "not available".
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from pdm_kedro import paths
from pdm_kedro.edge.runtime import explained_families
from pdm_kedro.service.errors import ServiceError
from pdm_kedro.service.inference import answer
from pdm_kedro.service.performance import manifest_summary
from pdm_kedro.service.security import require

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static") / "dashboard"
READINGS_SOURCE = "last 48 h of the latest test episode (01_raw/<machine>/test.parquet)"
TREND_HOURS = 6.0  # the trend compares the latest failure risk with the one this long before
TREND_STEADY = 0.02  # a change of the risk below this is "steady"
CACHE_SECONDS = 30.0
MAX_POINTS = 400  # readings sent to the page per sensor (evenly thinned beyond this)
EXPLAIN_TOP_N = 3  # reasons shown per machine (the latest row's top factors, ``?explain=3``)

router = APIRouter(tags=["dashboard"])
PredictKey = Depends(require("predict"))


def _json_value(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def read_json(path: Path) -> Any:
    """A report's JSON, or None when the file is missing or unreadable (logged)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        logger.warning("Dashboard: cannot read %s (%s); shown as not available.", path, err)
        return None


def read_jsonl(path: Path, machine_id: str | None = None) -> list[dict[str, Any]] | None:
    """The JSON lines of ``path`` (only ``machine_id``'s when given), None when missing."""
    if not path.is_file():
        return None
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            logger.warning("Dashboard: %s line %d is not JSON; skipped on the page.", path, number)
            continue
        mine = not isinstance(row, dict) or row.get("machine_id") in (None, machine_id)
        if machine_id is None or mine:
            rows.append(row)
    return rows


class DashboardData:
    """Latest-window answers per machine, cached while bundle and readings stay the same."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, tuple, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def root() -> Path:
        return paths.data_root()

    def window(self, machine: Any) -> pd.DataFrame:
        from pdm_kedro.commands.sample_readings import sample_window  # noqa: PLC0415

        source = self.root() / "01_raw" / machine.machine_id / "test.parquet"
        if not source.is_file():
            raise ServiceError(
                404,
                "no_readings",
                f"Machine {machine.machine_id}: no readings at {source} (the dashboard shows the "
                "latest test window of a run's data root).",
            )
        try:
            return sample_window(pd.read_parquet(source), machine.manifest)
        except Exception as err:  # click.ClickException and parquet errors: one line
            raise ServiceError(
                422, "no_readings", f"Machine {machine.machine_id}: {source}: {err}"
            ) from None

    def latest(self, machine: Any) -> dict[str, Any]:
        """Readings window and the edge runtime's answer for every row of it."""
        source = self.root() / "01_raw" / machine.machine_id / "test.parquet"
        stamp = source.stat().st_mtime if source.is_file() else None
        key = (machine.manifest_sha256, stamp)
        with self._lock:
            hit = self._cache.get(machine.machine_id)
            if hit and hit[1] == key and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[2]
        window = self.window(machine)
        inputs = machine.manifest["inputs"]
        sensors = [s["name"] for s in machine.manifest["sensors"]]
        readings = {
            inputs["timestamp_column"]: [pd.Timestamp(t).isoformat() for t in window["timestamp"]],
            inputs["regime_column"]: window["regime"].astype(str).tolist(),
        }
        for sensor in sensors:
            readings[sensor] = [None if pd.isna(v) else float(v) for v in window[sensor]]
        explain = EXPLAIN_TOP_N if explained_families(machine.bundle) else None
        result = answer(machine, readings, all_rows=True, explain=explain)
        out = {"readings": readings, "sensors": sensors, "result": result}
        with self._lock:
            self._cache[machine.machine_id] = (time.monotonic(), key, out)
        return out

    def reports(self, machine_id: str) -> dict[str, Any]:
        reporting = self.root() / "08_reporting"
        fleet = read_json(reporting / "diagnosis_report.json")
        own = read_json(reporting / machine_id / "diagnosis.json")
        return {
            "diagnosis_report": (fleet or {}).get("machines", {}).get(machine_id)
            if isinstance(fleet, dict)
            else None,
            "diagnosis": _latest_diagnosis(own),
            "monitoring": read_json(reporting / machine_id / "monitoring.json"),
            "retraining": read_jsonl(reporting / "retraining_decisions.jsonl", machine_id),
        }


def _latest_diagnosis(doc: Any) -> dict[str, Any] | None:
    """The most likely failure mode and its action in a machine's diagnosis document."""
    if not isinstance(doc, dict):
        return None
    examples = doc.get("examples") or []
    candidates = (examples[-1].get("diagnosis") if examples else None) or doc.get("diagnosis")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def _series(result: dict[str, Any], key: str, field: str) -> list[Any]:
    part = result.get(key) or {}
    values = part.get(field)
    return values if isinstance(values, list) else ([] if values is None else [values])


def _trend(stamps: list[str], risk: list[float]) -> dict[str, Any]:
    if len(risk) < 2:
        return {"direction": "unknown", "delta": None, "hours": TREND_HOURS}
    times = pd.to_datetime(pd.Series(stamps))
    before = times.iloc[-1] - pd.Timedelta(hours=TREND_HOURS)
    earlier = int((times <= before).to_numpy().nonzero()[0][-1]) if (times <= before).any() else 0
    delta = float(risk[-1]) - float(risk[earlier])
    direction = "steady" if abs(delta) < TREND_STEADY else ("rising" if delta > 0 else "falling")
    return {"direction": direction, "delta": delta, "hours": TREND_HOURS}


def _reasons(result: dict[str, Any]) -> list[str] | None:
    """The top reasons of the latest answer (the runtime's ``explanation``): the failure
    classifier's top factors in words, else the RUL model's or the anomaly deviations; None
    when the answer carries no explanation."""
    explanation = result.get("explanation") or {}
    for key in ("failure", "rul_hours", "anomaly"):
        factors = (explanation.get(key) or {}).get("top_factors")
        if factors:
            return [factor["text"] for factor in factors]
    return None


def fleet_row(machine: Any, data: DashboardData) -> dict[str, Any]:
    """One machine's line of the fleet overview (``error`` set when it cannot be answered)."""
    row: dict[str, Any] = {"machine_id": machine.machine_id, "families": machine.families}
    summary = manifest_summary(machine)
    row["loses_to_baseline"] = {f: s["loses_to_baseline"] for f, s in summary.items()}
    row |= data.reports(machine.machine_id)
    row.pop("retraining")
    monitoring = row.pop("monitoring")
    row["monitoring_latest"] = (
        monitoring[-1]
        if isinstance(monitoring, list) and monitoring
        else (monitoring if isinstance(monitoring, dict) else None)
    )
    try:
        latest = data.latest(machine)
    except ServiceError as err:
        return row | {"error": str(err), "risk": None}
    result = latest["result"]
    stamps = result["timestamp"]
    risk = _series(result, "failure", "probability")
    flags = _series(result, "anomaly", "flag")
    day = 24 * 60 / float(machine.manifest["sampling_interval_min"])
    recent = flags[-int(day) :] if flags else []
    rul = _series(result, "rul_hours", "value")
    row |= {
        "error": None,
        "readings_end": stamps[-1] if stamps else None,
        "risk": _json_value(risk[-1]) if risk else None,
        "decision": _series(result, "failure", "decision")[-1:] or [None],
        "threshold": (result.get("failure") or {}).get("threshold"),
        "horizon_hours": (result.get("failure") or {}).get("horizon_hours"),
        "rul_hours": _json_value(rul[-1]) if rul else None,
        "anomaly": flags[-1] if flags else None,
        "anomaly_score": _series(result, "anomaly", "score")[-1:] or [None],
        "anomalous_share_24h": (sum(bool(f) for f in recent) / len(recent)) if recent else None,
        "trend": _trend(stamps, risk) if risk else None,
        "reasons": _reasons(result),
    }
    row["decision"], row["anomaly_score"] = row["decision"][0], row["anomaly_score"][0]
    return row


def _thin(n: int, limit: int = MAX_POINTS) -> list[int]:
    if n <= limit:
        return list(range(n))
    step = (n - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)} | {n - 1})


def machine_view(machine: Any, data: DashboardData) -> dict[str, Any]:
    latest = data.latest(machine)
    result, readings = latest["result"], latest["readings"]
    keep = _thin(len(result["timestamp"]))

    def pick(values: list[Any]) -> list[Any]:
        return [_json_value(values[i]) for i in keep] if values else []

    units = {s["name"]: s["unit"] for s in machine.manifest["sensors"]}
    anomaly = result.get("anomaly") or {}
    return {
        "machine_id": machine.machine_id,
        "readings_source": READINGS_SOURCE,
        "rows": len(result["timestamp"]),
        "timestamp": pick(result["timestamp"]),
        "regime": pick(readings[machine.manifest["inputs"]["regime_column"]]),
        "sensors": {s: {"unit": units[s], "values": pick(readings[s])} for s in latest["sensors"]},
        "anomaly": {
            "flag": pick(_series(result, "anomaly", "flag")),
            "score": pick(_series(result, "anomaly", "score")),
            "threshold": anomaly.get("threshold"),
            "detector": anomaly.get("detector"),
        },
        "failure": {
            "probability": pick(_series(result, "failure", "probability")),
            **{k: (result.get("failure") or {}).get(k) for k in ("threshold", "horizon_hours")},
        },
        "rul_hours": {
            "value": pick(_series(result, "rul_hours", "value")),
            "cap_hours": (result.get("rul_hours") or {}).get("cap_hours"),
        },
        "forecast": result.get("forecast"),
        "models": manifest_summary(machine),
        "bundle_version": machine.bundle_version,
        "trained_at": machine.created_at,
        "warnings": result.get("warnings", []),
        "reasons": _reasons(result),
        **data.reports(machine.machine_id),
    }


def _served(request: Request, machine_id: str) -> Any:
    from pdm_kedro.service.errors import unknown_machine  # noqa: PLC0415

    registry = request.app.state.service.registry
    if not registry.report.initial_scan_done:
        raise ServiceError(
            503, "not_ready", "The service is still loading the models; retry in a few seconds.",
            headers={"Retry-After": "2"},
        )  # fmt: skip
    machine = registry.get(machine_id)
    if machine is None:
        raise unknown_machine(machine_id, registry.known())
    return machine


@router.get("/v1/dashboard/fleet", dependencies=[PredictKey])
def fleet(request: Request) -> dict[str, Any]:
    """Every served machine with risk, RUL, anomaly state and trend, highest risk first."""
    registry = request.app.state.service.registry
    if not registry.report.initial_scan_done:
        _served(request, "")  # 503 while loading
    data: DashboardData = request.app.state.dashboard
    current = dict(registry.machines)
    rows = [fleet_row(current[m], data) for m in sorted(current)]
    rows.sort(key=lambda r: (r["risk"] is None, -(r["risk"] or 0.0), r["machine_id"]))
    return {
        "generated_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "readings_source": READINGS_SOURCE,
        "trend_hours": TREND_HOURS,
        "machines": rows,
    }


@router.get("/v1/dashboard/machines/{machine_id}", dependencies=[PredictKey])
def machine(machine_id: str, request: Request) -> dict[str, Any]:
    """One machine's readings, answers over time, forecast, models, monitoring, retraining."""
    return machine_view(_served(request, machine_id), request.app.state.dashboard)


@router.get("/dashboard", include_in_schema=False)
def page() -> FileResponse:
    """The page shell (no data: the data come from the key-guarded JSON views)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


@router.get("/dashboard/", include_in_schema=False)
def page_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


def mount(app: FastAPI) -> None:
    """Add the dashboard's routes and static files to the service app."""
    app.state.dashboard = DashboardData()
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
