"""Every catalog entry tells kedro-viz its data layer, so the graph shows the layers."""

from __future__ import annotations

import yaml

from tests.docs.kedro_cli import PROJECT_ROOT

LAYERS = {
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
}


def catalog_entries() -> dict[str, dict]:
    """Every entry of conf/base/catalog*.yml (YAML anchors starting with ``_`` excluded)."""
    entries = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("catalog*.yml")):
        for name, entry in (yaml.safe_load(path.read_text()) or {}).items():
            if not name.startswith("_"):
                entries[f"{path.name}: {name}"] = entry
    return entries


def test_catalog_has_entries():
    assert len(catalog_entries()) >= 7


def test_every_catalog_entry_has_a_known_kedro_viz_layer():
    missing = {
        name: (entry.get("metadata") or {}).get("kedro-viz", {}).get("layer")
        for name, entry in catalog_entries().items()
        if (entry.get("metadata") or {}).get("kedro-viz", {}).get("layer") not in LAYERS
    }
    assert not missing, (
        f"entries without a known `metadata: kedro-viz: layer:` ({LAYERS}): {missing}"
    )


def test_catalog_names_hold_no_machine_id():
    machines = [
        p.stem for p in (PROJECT_ROOT / "conf" / "base" / "parameters" / "machines").glob("*.yml")
    ]
    text = "\n".join(p.read_text() for p in (PROJECT_ROOT / "conf" / "base").glob("catalog*.yml"))
    assert not [m for m in machines if m in text]
