"""The scoring tests reuse the tiny bundle of the export tests."""

from tests.pipelines.edge_export.conftest import tiny_bundle, tiny_models  # noqa: F401
