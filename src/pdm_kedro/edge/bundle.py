"""Load a machine's edge bundle: ``manifest.json`` plus one ONNX file per model family.

The bundle is what the ``edge_export`` Kedro stage writes to ``06_models/<machine>/edge/``. Loading
checks the manifest's format version, the machine id and the sha256 of every ONNX file before any
model is handed to onnxruntime. Only numpy, onnxruntime and the standard library are imported.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from pdm_kedro.edge.errors import BundleError, UnknownMachineError
from pdm_kedro.edge.explain import Explainer
from pdm_kedro.edge.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    ManifestError,
    validate_manifest,
    verify_integrity,
)

__all__ = ["FORMAT_VERSION", "INPUT_NAME", "MANIFEST_FILE", "EdgeBundle", "load_bundle"]

INPUT_NAME = "features"
HMAC_KEY_ENV = "PDM_EDGE_HMAC_KEY"


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (what the manifest records for each ONNX file)."""
    return hashlib.sha256(data).hexdigest()


def make_session(model_bytes: bytes, threads: int = 1) -> ort.InferenceSession:
    """A CPU inference session tuned for single-row latency on a small device."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


@dataclass
class EdgeBundle:
    """A loaded bundle: its folder, its manifest and one onnxruntime session per model file.

    ``sessions[family]`` is a session, or a ``{key: session}`` dict for a family exported as
    several files (the manifest entry then has ``files`` instead of ``file``). ``explainer``
    reads the bundle's ``explanation.json`` (None for a bundle exported without one).
    """

    path: Path
    manifest: dict[str, Any]
    sessions: dict[str, Any] = field(default_factory=dict)
    explainer: Explainer | None = None

    @property
    def machine_id(self) -> str:
        """The machine this bundle serves."""
        return str(self.manifest["machine_id"])

    @property
    def families(self) -> list[str]:
        """Model families present in the bundle, in the manifest's (canonical) order."""
        return list(self.manifest["models"])


def _known_machines(root: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in root.glob(f"*/edge/{MANIFEST_FILE}"))


def resolve_bundle_dir(bundle: str | Path, machine_id: str | None = None) -> Path:
    """The bundle folder for ``bundle``: a bundle folder itself, or a ``06_models`` root.

    With a ``06_models``-like root, ``machine_id`` picks ``<root>/<machine_id>/edge``.

    Raises:
        UnknownMachineError: no bundle exists for ``machine_id`` under the root.
        BundleError: the path holds no bundle at all.
    """
    path = Path(bundle)
    if (path / MANIFEST_FILE).is_file():
        return path
    if machine_id is not None:
        candidate = path / machine_id / "edge"
        if (candidate / MANIFEST_FILE).is_file():
            return candidate
        known = _known_machines(path)
        raise UnknownMachineError(
            f"Unknown machine {machine_id!r}: no bundle at {candidate}. "
            f"Machines with a bundle under {path}: {', '.join(known) or 'none'}."
        )
    known = _known_machines(path)
    hint = f" Pass --machine, one of: {', '.join(known)}." if known else ""
    raise BundleError(f"No {MANIFEST_FILE} in {path}: not an edge bundle folder.{hint}")


def check_manifest(manifest: Any, folder: Path) -> dict[str, Any]:
    """The manifest if it matches the schema (:mod:`pdm_kedro.edge.manifest`), else the schema's
    :class:`BundleError` naming the field, prefixed with the bundle folder."""
    try:
        return validate_manifest(manifest)
    except BundleError as err:
        raise type(err)(f"Bundle {folder}: {err}") from None


def _file_entries(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{key: {"file", "sha256", ...}}`` of a model entry (``model`` for single-file families)."""
    if "files" in entry:
        return dict(entry["files"])
    return {"model": entry}


def _read_verified(folder: Path, family: str, key: str, spec: Any) -> bytes:
    if not (
        isinstance(spec, dict)
        and isinstance(spec.get("file"), str)
        and isinstance(spec.get("sha256"), str)
    ):
        raise ManifestError(
            f"Bundle {folder}: manifest field models.{family}.files.{key}: expected an object "
            "with file and sha256 strings."
        )
    if Path(spec["file"]).name != spec["file"]:
        raise ManifestError(
            f"Bundle {folder}: {family} model file {spec['file']!r} is not a file name inside "
            "the bundle folder."
        )
    path = folder / spec["file"]
    if not path.is_file():
        raise BundleError(f"Bundle {folder}: {family} model file {spec['file']} is missing.")
    data = path.read_bytes()
    digest = sha256_hex(data)
    if digest != spec["sha256"]:
        raise BundleError(
            f"Bundle {folder}: {family} file {spec['file']} ({key}) has sha256 {digest[:12]}..., "
            f"the manifest says {spec['sha256'][:12]}...: the file was changed or belongs to "
            "another export. Re-export the bundle."
        )
    return data


def _session(
    folder: Path, family: str, spec: dict[str, Any], data: bytes, threads: int
) -> ort.InferenceSession:
    """An inference session, or a :class:`BundleError` when onnxruntime cannot read the file."""
    try:
        return make_session(data, threads)
    except Exception as err:  # noqa: BLE001 (onnxruntime raises its own, unexported error types)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BundleError(
            f"Bundle {folder}: {family} file {spec['file']} is not a model onnxruntime can load "
            f"({first[:200]}). Re-export the bundle."
        ) from None


def load_bundle(
    bundle: str | Path,
    machine_id: str | None = None,
    families: tuple[str, ...] | None = None,
    threads: int = 1,
    hmac_key: bytes | None = None,
) -> EdgeBundle:
    """Load and verify a bundle; one inference session per model file.

    Args:
        bundle: a bundle folder, or a folder holding ``<machine_id>/edge/`` bundles.
        machine_id: if given, the bundle must belong to this machine.
        families: load only these families (default: every family in the manifest).
        threads: onnxruntime intra-op threads per session.
        hmac_key: the plant key; when given (or set in ``PDM_EDGE_HMAC_KEY``) the manifest's
            HMAC must match it.

    Every load checks the manifest's own digest (``integrity``) and the sha256 of every model
    file, also of the families not loaded (so ``info`` notices a changed or missing file).

    Raises:
        BundleError: missing manifest or file, sha256 or manifest digest mismatch, unsupported
            format version.
        UnknownMachineError: no bundle for ``machine_id``, or the bundle is another machine's.
    """
    folder = resolve_bundle_dir(bundle, machine_id)
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"Bundle {folder}: {MANIFEST_FILE} is not valid JSON ({err}).") from None
    except OSError as err:
        raise BundleError(f"Bundle {folder}: cannot read {MANIFEST_FILE} ({err}).") from None
    manifest = check_manifest(manifest, folder)
    if machine_id is not None and manifest["machine_id"] != machine_id:
        raise UnknownMachineError(
            f"Bundle {folder} serves machine {manifest['machine_id']!r}, not {machine_id!r}."
        )
    key = hmac_key if hmac_key is not None else os.environ.get(HMAC_KEY_ENV, "").encode() or None
    try:
        verify_integrity(manifest, key)
    except ManifestError as err:
        raise ManifestError(f"Bundle {folder}: {err}") from None
    wanted = tuple(manifest["models"]) if families is None else families
    unknown = sorted(set(wanted) - set(manifest["models"]))
    if unknown:
        raise BundleError(
            f"Bundle {folder} has no {', '.join(unknown)} model; it has {', '.join(manifest['models'])}."
        )
    verified = {
        family: {
            part: (spec, _read_verified(folder, family, part, spec))
            for part, spec in _file_entries(manifest["models"][family]).items()
        }
        for family in manifest["models"]
    }
    explainer = _explainer(folder, manifest)
    sessions: dict[str, Any] = {}
    for family in wanted:
        loaded = {
            part: _session(folder, family, spec, data, threads)
            for part, (spec, data) in verified[family].items()
        }
        sessions[family] = loaded["model"] if "files" not in manifest["models"][family] else loaded
    return EdgeBundle(path=folder, manifest=manifest, sessions=sessions, explainer=explainer)


def _explainer(folder: Path, manifest: dict[str, Any]) -> Explainer | None:
    """The explanation file's reader, its sha256 checked like a model file's (issue 13)."""
    spec = manifest.get("explanation")
    if spec is None:
        return None
    data = _read_verified(folder, "explanation", "explanation", spec)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(
            f"Bundle {folder}: {spec['file']} is not valid JSON ({err}). Re-export the bundle."
        ) from None
    if not isinstance(document, dict) or document.get("machine_id") != manifest["machine_id"]:
        raise BundleError(
            f"Bundle {folder}: {spec['file']} does not belong to machine "
            f"{manifest['machine_id']!r}. Re-export the bundle."
        )
    return Explainer(document)
