"""The served models: every machine's edge bundle, loaded, warmed and swapped in atomically.

A bundle is what ``edge_export`` writes to ``<data root>/06_models/<machine>/edge/``: the service
loads it with :func:`pdm_kedro.edge.bundle.load_bundle` (sha256 of every file checked, one
onnxruntime session per file with one intra-op and one inter-op thread) and answers with
:func:`pdm_kedro.edge.runtime.predict`, so the service and the edge share one feature and model
code path.

Hot swap: a watcher thread stats every bundle's files each ``reload_poll_seconds``. A changed
bundle is loaded and warmed *beside* the one in service; only then the machine's entry in the
``machines`` dict is replaced (one reference assignment). A request holds the entry it started
with, so a request in flight finishes on the old models and the next one gets the new models. A
bundle that fails to load (half-written, tampered) leaves the old one in service and is retried.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pdm_kedro.edge.bundle import MANIFEST_FILE, EdgeBundle, load_bundle
from pdm_kedro.edge.errors import EdgeError
from pdm_kedro.edge.runtime import explained_families, predict

logger = logging.getLogger(__name__)

WARMUP_CALLS = 3


def bundle_signature(folder: Path) -> tuple:
    """(name, size, mtime) of every file of a bundle folder: changes when any file is rewritten."""
    entries = []
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


def family_version(machine_id: str, family: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The served version of one family: the registry version when the manifest names one.

    Manifests built from the MLflow champion carry ``registered_model`` and ``registry_version``;
    older ones only the ONNX file's short sha256 (``version``).
    """
    return {
        "family": family,
        "registered_model": str(entry.get("registered_model") or f"{machine_id}-{family}"),
        "registry_version": (
            None if entry.get("registry_version") is None else str(entry["registry_version"])
        ),
        "onnx_version": str(entry.get("version") or entry.get("sha256", "")[:12]),
        "served_version": str(
            entry.get("registry_version") or entry.get("version") or entry.get("sha256", "")[:12]
        ),
    }


def synthetic_readings(manifest: dict[str, Any], rows: int | None = None) -> dict[str, Any]:
    """Readings at every sensor's training median: what warm-up sends through the whole path."""
    n = int(rows or manifest["inputs"]["min_history_rows"])
    step = int(round(float(manifest["sampling_interval_min"]) * 60))
    start = np.datetime64("2026-01-05T00:00:00", "s")
    stamps = start + np.arange(n) * np.timedelta64(step, "s")
    regime = next(iter(manifest["regimes"]["codes"]), "nominal")
    readings: dict[str, Any] = {
        manifest["inputs"]["timestamp_column"]: stamps,
        manifest["inputs"]["regime_column"]: np.full(n, regime),
    }
    for sensor in manifest["sensors"]:
        readings[sensor["name"]] = np.full(n, float(sensor["median"]))
    return readings


@dataclass(frozen=True)
class ServedMachine:
    """One machine's loaded bundle and what the API reports about it (immutable once served)."""

    machine_id: str
    bundle: EdgeBundle
    views: dict[str, EdgeBundle]
    versions: dict[str, dict[str, Any]]
    manifest_sha256: str
    signature: tuple
    loaded_at: str
    created_at: str

    @property
    def manifest(self) -> dict[str, Any]:
        """The bundle's manifest."""
        return self.bundle.manifest

    @property
    def families(self) -> list[str]:
        """Families this machine serves, in the canonical order."""
        return self.bundle.families

    @property
    def bundle_version(self) -> str:
        """Short sha256 of the manifest: changes with every re-export."""
        return self.manifest_sha256[:12]


def load_machine(folder: Path) -> ServedMachine:
    """Load, verify and warm one bundle folder (``<models>/<machine>/edge``)."""
    signature = bundle_signature(folder)
    manifest_bytes = (folder / MANIFEST_FILE).read_bytes()
    bundle = load_bundle(folder, machine_id=folder.parent.name, threads=1)  # refuses another's
    views = {
        family: EdgeBundle(
            path=bundle.path,
            manifest=bundle.manifest,
            sessions={family: bundle.sessions[family]},
            explainer=bundle.explainer,
        )
        for family in bundle.families
    }
    readings = synthetic_readings(bundle.manifest)
    explain = 1 if explained_families(bundle) else None  # builds the TreeSHAP paths once
    for _ in range(WARMUP_CALLS):  # the first onnxruntime calls are slow: pay them before serving
        predict(bundle, readings, explain=explain)
    machine_id = bundle.machine_id
    return ServedMachine(
        machine_id=machine_id,
        bundle=bundle,
        views=views,
        versions={
            f: family_version(machine_id, f, bundle.manifest["models"][f]) for f in bundle.families
        },
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        signature=signature,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        created_at=str(bundle.manifest.get("created_at", "")),
    )


@dataclass
class LoadReport:
    """What the last scan found: failures by machine (message), and whether a scan completed."""

    failures: dict[str, str] = field(default_factory=dict)
    initial_scan_done: bool = False


class ModelRegistry:
    """Every machine's served bundle; :meth:`get` is lock-free (one dict read)."""

    def __init__(
        self,
        models_root: Path,
        poll_seconds: float = 2.0,
        on_swap: Callable[[ServedMachine, ServedMachine | None], None] | None = None,
    ) -> None:
        self.models_root = Path(models_root)
        self.poll_seconds = poll_seconds
        self.machines: dict[str, ServedMachine] = {}
        self.report = LoadReport()
        self._on_swap = on_swap
        self._lock = threading.Lock()  # serialises scans (watcher thread vs. a job's reload)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading -------------------------------------------------------------------------------
    def get(self, machine_id: str) -> ServedMachine | None:
        """The machine's current entry (a request keeps using the entry it got)."""
        return self.machines.get(machine_id)

    def known(self) -> list[str]:
        """Served machine ids, sorted."""
        return sorted(self.machines)

    @property
    def ready(self) -> bool:
        """Every bundle found is loaded and warmed (or still served from its last good load)."""
        unserved = [m for m in self.report.failures if m not in self.machines]
        return self.report.initial_scan_done and not unserved and bool(self.machines)

    # -- loading -------------------------------------------------------------------------------
    def bundle_folders(self) -> dict[str, Path]:
        """``{machine_id: bundle folder}`` for every ``<machine>/edge/manifest.json``."""
        if not self.models_root.is_dir():
            return {}
        return {
            p.parent.parent.name: p.parent
            for p in sorted(self.models_root.glob(f"*/edge/{MANIFEST_FILE}"))
        }

    def scan(self) -> list[str]:
        """Load new and changed bundles; the machine ids swapped in."""
        swapped = []
        with self._lock:
            for machine_id, folder in self.bundle_folders().items():
                current = self.machines.get(machine_id)
                try:
                    signature = bundle_signature(folder)
                except OSError:
                    continue  # a bundle being rewritten right now: next poll
                if current is not None and current.signature == signature:
                    continue
                try:
                    loaded = load_machine(folder)
                except (EdgeError, OSError, ValueError, KeyError) as err:
                    # keep serving the old models; retried on the next poll
                    self.report.failures[machine_id] = f"{type(err).__name__}: {err}"
                    logger.warning("bundle of %s not loaded: %s", machine_id, err)
                    continue
                if loaded.machine_id != machine_id:
                    self.report.failures[machine_id] = (
                        f"bundle folder {folder} holds machine {loaded.machine_id!r}"
                    )
                    continue
                self.report.failures.pop(machine_id, None)
                self.machines = {**self.machines, machine_id: loaded}  # one atomic swap
                swapped.append(machine_id)
                if self._on_swap is not None:
                    self._on_swap(loaded, current)
                logger.info(
                    "serving %s bundle %s (%s)",
                    machine_id,
                    loaded.bundle_version,
                    ", ".join(f"{f} {v['served_version']}" for f, v in loaded.versions.items()),
                )
            self.report.initial_scan_done = True
        return swapped

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.scan()
            except Exception:  # never let the watcher die  # noqa: BLE001
                logger.exception("bundle scan failed")

    def start(self) -> None:
        """Initial load (in a thread, so liveness answers at once), then the watcher."""

        def run() -> None:
            try:
                self.scan()
            except Exception:  # noqa: BLE001
                logger.exception("initial bundle scan failed")
                self.report.initial_scan_done = True
            self._watch()

        self._thread = threading.Thread(target=run, name="bundle-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def age_seconds(created_at: str) -> float | None:
    """Seconds since an ISO 8601 ``created_at`` (``None`` when it cannot be read)."""
    try:
        created = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return max(0.0, time.time() - created.timestamp())


__all__ = ["ModelRegistry", "ServedMachine", "age_seconds", "load_machine"]
