"""The source keys in docs/bring_your_own_data.md are the config model's (generated table)."""

from pdm_kedro.pipelines.data_ingestion.source import FileSourceSpec, source_key_table
from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "bring_your_own_data.md"


def _documented_table() -> str:
    text = DOC.read_text()
    begin, end = "<!-- source-keys:begin -->", "<!-- source-keys:end -->"
    return text[text.index(begin) + len(begin) : text.index(end)].strip()


def test_documented_source_keys_match_the_config_model():
    assert _documented_table() == source_key_table(), (
        "docs/bring_your_own_data.md is out of date: paste the output of "
        "`python -m pdm_kedro.pipelines.data_ingestion.source` between the source-keys markers"
    )


def test_every_model_field_is_in_the_table():
    table = source_key_table()
    for name in FileSourceSpec.model_fields:
        assert f"`source.{name}`" in table
    for key in (
        "column_names",
        "columns.regime",
        "columns.default_regime",
        "start",
        "protocol.rul",
        "operating_conditions.settings",
    ):
        assert f"`source.{key}`" in table
    assert "none" in table and "failure_within_horizon" in table
