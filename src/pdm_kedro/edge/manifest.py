"""The edge manifest schema, shared by its writer (the ``edge_export`` stage) and every reader
(the edge runtime, its CLI, the prediction service, the scoring pipeline).

Standard library only, like the rest of ``pdm_kedro.edge``. :func:`validate_manifest` checks a
manifest dict against :data:`MANIFEST_SCHEMA` and raises :class:`ManifestError` naming the first
field that is missing or of the wrong type (``models.classification.threshold: expected a
number, got 'high'``). The writer validates what it writes; :func:`pdm_kedro.edge.bundle.load_bundle`
validates what it reads, so a reader may subscript a loaded manifest without checks of its own.

Per family entry (``models.<family>``), every family has ``registered_model`` and
``registry_version``: the MLflow registered model and the version the bundle was built from (the
champion; ``registry_version`` is null when the bundle was built with tracking off).

The optional top-level ``explanation`` entry names the bundle's ``explanation.json`` with its
sha256 and size, like a model file (read by :mod:`pdm_kedro.edge.explain`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pdm_kedro.edge.errors import BundleError

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
INTEGRITY = "integrity"

NUMBER = (int, float)
OPTIONAL_STR = (str, type(None))


class ManifestError(BundleError):
    """A manifest that does not match the schema (names the field)."""


# Field -> type (a tuple of types), or a nested schema dict. Keys ending in "?" are optional.
ENTRY_COMMON: dict[str, Any] = {
    "family": str,
    "sha256?": str,
    "file?": str,
    "files?": dict,
    "size_bytes": int,
    "version": str,
    "input_name": str,
    "opsets": dict,
    "registered_model": OPTIONAL_STR,
    "registry_version": OPTIONAL_STR,
    "answer": {"key": str, "kind": str, "fields": dict},
    "metrics": dict,
    "parity": {"passed": bool},
}
# Extra fields by answer kind (pdm_kedro.families.Family.answer_kind).
ENTRY_BY_KIND: dict[str, dict[str, Any]] = {
    "probability": {
        "feature_names": list,
        "output": str,
        "positive_column": int,
        "threshold": NUMBER,
    },
    "value": {"feature_names": list, "output": str},
    "score": {"feature_names": list, "output": str, "score_sign": NUMBER, "threshold": NUMBER},
    "forecast": {"sensors": list, "horizon_hours": NUMBER, "spec": dict},
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "format_version": int,
    "machine_id": str,
    "machine": {"category": str, "manufacturer": str, "model": str},
    "created_at": str,
    "producer": {"package": str, "version": str},
    "sampling_interval_min": NUMBER,
    "sensors": list,
    "preprocessing": dict,
    "regimes": {"codes": dict, "unknown_code": int},
    "windows": {"hours": list, "rows": list, "labels": list, "statistics": list},
    "window_feature_names": list,
    "feature_names": list,
    "inputs": {
        "timestamp_column": str,
        "regime_column": str,
        "ignored_columns": list,
        "max_missing_run": int,
        "min_history_rows": int,
        "min_history_hours": NUMBER,
    },
    "models": dict,
    # explanation.json (tree dumps, feature descriptions, anomaly reference, diagnosis): issue 13
    "explanation?": {"file": str, "sha256": str, "size_bytes": int},
    "integrity?": {"algorithm": str, "digest": str},
}
SENSOR_SCHEMA: dict[str, Any] = {
    "name": str,
    "unit": str,
    "kind": str,
    "median": NUMBER,
    "scale": NUMBER,
    "min?": NUMBER,
    "max?": NUMBER,
}


def _type_name(expected: Any) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
             list: "a list", dict: "an object", type(None): "null"}  # fmt: skip
    if set(types) == {int, float}:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check(data: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(data, dict):
        raise ManifestError(f"manifest field {where or '(root)'}: expected an object")
    for key, expected in schema.items():
        optional = key.endswith("?")
        name = key.rstrip("?")
        path = f"{where}.{name}" if where else name
        if name not in data:
            if optional:
                continue
            raise ManifestError(f"manifest field {path} is missing")
        value = data[name]
        if isinstance(expected, dict):
            _check(value, expected, path)
            continue
        types = expected if isinstance(expected, tuple) else (expected,)
        wrong = not isinstance(value, types) or (
            isinstance(value, bool) and bool not in types  # JSON true is not a number
        )
        if wrong:
            raise ManifestError(
                f"manifest field {path}: expected {_type_name(expected)}, got {value!r:.60}"
            )


def validate_entry(family: str, entry: Any) -> dict[str, Any]:
    """Check one ``models.<family>`` entry; returns it."""
    where = f"models.{family}"
    _check(entry, ENTRY_COMMON, where)
    kind = entry["answer"]["kind"]
    if kind not in ENTRY_BY_KIND:
        raise ManifestError(
            f"manifest field {where}.answer.kind: {kind!r} is not one of {', '.join(ENTRY_BY_KIND)}"
        )
    _check(entry, ENTRY_BY_KIND[kind], where)
    if "file" not in entry and "files" not in entry:
        raise ManifestError(f"manifest field {where}.file is missing (or files, for several)")
    if "file" in entry and "sha256" not in entry:
        raise ManifestError(f"manifest field {where}.sha256 is missing")
    if entry["family"] != family:
        raise ManifestError(
            f"manifest field {where}.family: {entry['family']!r} under models.{family}"
        )
    return entry


def validate_manifest(manifest: Any) -> dict[str, Any]:
    """Check a manifest against the schema; returns it unchanged.

    Raises:
        ManifestError: the first field that is missing or of the wrong type, by its path.
    """
    _check(manifest, MANIFEST_SCHEMA, "")
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"manifest field format_version {version!r} is not supported: this runtime reads "
            f"{FORMAT_VERSION}. "
            "Re-export the bundle or update the runtime."
        )
    for i, sensor in enumerate(manifest["sensors"]):
        _check(sensor, SENSOR_SCHEMA, f"sensors[{i}]")
    if not manifest["models"]:
        raise ManifestError("manifest field models: the bundle holds no model")
    for family, entry in manifest["models"].items():
        validate_entry(family, entry)
    return manifest


def answer_spec(entry: dict[str, Any]) -> dict[str, Any]:
    """``{"key", "kind", "fields"}`` of a family entry: how the runtime answers with it."""
    return entry["answer"]


def canonical_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest without its ``integrity`` field as canonical JSON (sorted keys, no spaces).

    The digest covers every field, including each model file's sha256, so it vouches for the
    model files too: :func:`pdm_kedro.edge.bundle.load_bundle` checks each file against its sum.
    """
    body = {k: v for k, v in manifest.items() if k != INTEGRITY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """Hex sha256 of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(manifest)).hexdigest()


def _hmac(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_bytes(manifest), hashlib.sha256).hexdigest()


def seal_manifest(manifest: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """``manifest`` with an ``integrity`` field: its sha256 digest, and an HMAC-SHA256 when a
    ``key`` is given (for plants that keep a shared secret on their devices)."""
    sealed = {k: v for k, v in manifest.items() if k != INTEGRITY}
    integrity: dict[str, Any] = {"algorithm": "sha256", "digest": manifest_digest(sealed)}
    if key:
        integrity["hmac_sha256"] = _hmac(sealed, key)
    sealed[INTEGRITY] = integrity
    return sealed


def verify_integrity(manifest: dict[str, Any], key: bytes | None = None) -> None:
    """Check the manifest's own digest (and HMAC when ``key`` is given).

    Raises:
        ManifestError: no digest, a digest or HMAC that does not match the content (the manifest
            was edited after export), or a key given for a bundle exported without an HMAC.
    """
    integrity = manifest.get(INTEGRITY)
    if integrity is None:
        raise ManifestError(
            "manifest has no integrity digest (exported by an older pdm_kedro or written by "
            "hand): re-export the bundle."
        )
    if integrity["algorithm"] != "sha256":
        raise ManifestError(
            f"manifest field integrity.algorithm {integrity['algorithm']!r} is not supported "
            "(sha256)."
        )
    digest = manifest_digest(manifest)
    if not hmac.compare_digest(digest, str(integrity["digest"])):
        raise ManifestError(
            f"manifest digest is {digest[:12]}..., the manifest says "
            f"{str(integrity['digest'])[:12]}...: manifest.json was changed after export "
            "(tampered with or edited by hand). Re-export the bundle."
        )
    if key:
        recorded = integrity.get("hmac_sha256")
        if not isinstance(recorded, str):
            raise ManifestError(
                "manifest has no HMAC but a key was given: the bundle was exported without "
                "the plant key. Re-export it with the key."
            )
        if not hmac.compare_digest(_hmac(manifest, key), recorded):
            raise ManifestError(
                "manifest HMAC does not match the key: the bundle was signed with another key "
                "or changed after export."
            )
