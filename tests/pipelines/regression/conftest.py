"""Small, fast regression settings for tests (same code, fewer trees)."""

import pytest

from tests.pipelines.classification.conftest import shrink


@pytest.fixture(scope="session")
def reg_params(project_params: dict) -> dict:
    return shrink(project_params["regression"])
