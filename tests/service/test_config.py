"""service.yml through Kedro's config loader; API keys from Kedro credentials."""

from __future__ import annotations

import shutil

import pytest
import yaml
from pydantic import ValidationError

from pdm_kedro.service.auth import load_keys
from pdm_kedro.service.config import load_config, load_credential_keys
from tests.docs.kedro_cli import PROJECT_ROOT


@pytest.fixture()
def conf(tmp_path):
    target = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", target, ignore=shutil.ignore_patterns("credentials*"))
    return target


def test_base_config_binds_to_loopback(conf):
    config = load_config(conf)
    assert config.host == "127.0.0.1" and config.workers == 1
    assert config.limits.max_rows > 0 and config.env is None


def test_an_environment_overrides_single_keys(conf):
    (conf / "local" / "service.yml").write_text(
        yaml.safe_dump({"service": {"port": 9001, "limits": {"max_rows": 10}}})
    )
    config = load_config(conf, "local")
    assert config.port == 9001 and config.limits.max_rows == 10
    assert config.limits.max_batch_items == load_config(conf).limits.max_batch_items


def test_a_misspelt_setting_is_refused(conf):
    (conf / "local" / "service.yml").write_text(yaml.safe_dump({"service": {"prot": 1}}))
    with pytest.raises(ValidationError, match="prot"):
        load_config(conf, "local")


def test_keys_from_kedro_credentials(conf):
    config = load_config(conf)
    assert load_credential_keys(config) is None  # no credentials file
    (conf / "local" / "credentials.yml").write_text(
        yaml.safe_dump(
            {"pdm_service_api_keys": [{"key": "from-credentials-yml", "scopes": ["admin"]}]}
        )
    )
    store = load_keys(load_credential_keys(config), {})
    assert store.authenticate("from-credentials-yml").scopes == {"admin", "predict"}
