"""Fixtures of the edge export tests: tiny native models and a bundle exported from them."""

from __future__ import annotations

import pytest

from .helpers import export_bundle, train_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tiny_features):
    """{family: model dict} trained on the tiny train split (seeded)."""
    return train_tiny_models(tiny_features)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_models, tiny_features, tiny_baselines, machine, tiny_params):
    """(bundle folder, manifest) written from the tiny models into a temporary folder."""
    folder = tmp_path_factory.mktemp("bundle") / machine["machine_id"] / "edge"
    folder.mkdir(parents=True)
    manifest = export_bundle(
        tiny_models, tiny_features, tiny_baselines, machine, tiny_params, folder
    )
    return folder, manifest
