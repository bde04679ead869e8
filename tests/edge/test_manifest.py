"""The edge manifest schema: what the exporter writes loads back; a tampered field is named."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.manifest import ManifestError, validate_manifest


@pytest.fixture()
def bundle_dir(tiny_bundle, tmp_path):
    """A private copy of the tiny bundle (tests here rewrite its manifest)."""
    return shutil.copytree(tiny_bundle[0], tmp_path / "edge")


@pytest.fixture()
def manifest(bundle_dir):
    return json.loads((bundle_dir / "manifest.json").read_text())


def test_round_trip_written_manifest_matches_the_schema(bundle_dir, manifest):
    assert validate_manifest(copy.deepcopy(manifest)) == manifest
    bundle = load_bundle(bundle_dir)
    for family, entry in bundle.manifest["models"].items():
        assert {"registered_model", "registry_version", "answer"} <= set(entry), family
        assert entry["answer"]["kind"] in {"probability", "value", "score", "forecast"}


@pytest.mark.parametrize(
    ("tamper", "field"),
    [
        (
            lambda m: m["models"]["classification"].pop("threshold"),
            "models.classification.threshold",
        ),
        (
            lambda m: m["models"]["classification"].__setitem__("threshold", "high"),
            "models.classification.threshold: expected a number",
        ),
        (lambda m: m["inputs"].__setitem__("min_history_rows", 3.5), "inputs.min_history_rows"),
        (lambda m: m["sensors"][0].pop("scale"), "sensors[0].scale"),
        (
            lambda m: m["models"]["anomaly"]["answer"].__setitem__("kind", "vote"),
            "models.anomaly.answer.kind",
        ),
        (
            lambda m: m["models"]["regression"].__setitem__("registry_version", 3),
            "models.regression.registry_version",
        ),
        (lambda m: m.pop("machine_id"), "machine_id is missing"),
    ],
)
def test_a_tampered_manifest_names_the_field(bundle_dir, manifest, tamper, field):
    tamper(manifest)
    with pytest.raises(ManifestError, match=field.replace("[", r"\[").replace("]", r"\]")):
        validate_manifest(manifest)
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=str(bundle_dir)):
        load_bundle(bundle_dir)
