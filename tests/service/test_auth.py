"""API keys: parsed from credentials and PDM_API_KEYS, kept hashed, scopes enforced over HTTP."""

from __future__ import annotations

import pytest

from pdm_kedro.service.auth import KeyConfigError, KeyStore, load_keys, parse_env_keys
from tests.conftest import TEST_MACHINE

from .conftest import ADMIN_KEY, PREDICT_KEY


def test_env_keys_are_key_scope_pairs():
    assert parse_env_keys("abcdefgh1:predict, abcdefgh2:admin") == [
        ("abcdefgh1", "predict"),
        ("abcdefgh2", "admin"),
    ]
    with pytest.raises(KeyConfigError, match="unknown scope 'root'"):
        parse_env_keys("abcdefgh1:root")
    with pytest.raises(KeyConfigError, match="is not 'key:scope'"):
        parse_env_keys("abcdefgh1")


def test_credentials_and_environment_are_merged_and_hashed():
    store = load_keys(
        [{"key": "from-credentials-1", "scopes": ["predict"]}],
        {"PDM_API_KEYS": "from-environment-1:admin"},
    )
    assert len(store) == 2
    assert store.authenticate("from-credentials-1").scopes == {"predict"}
    assert store.authenticate("from-environment-1").scopes == {"admin", "predict"}
    assert store.authenticate("from-credentials-2") is None
    kept = repr(store._entries)  # noqa: SLF001 - the raw key is nowhere in the store
    assert "from-credentials-1" not in kept


def test_short_keys_are_refused():
    with pytest.raises(KeyConfigError, match="at least 8"):
        KeyStore([("short", "predict")])


def test_a_key_listed_twice_gets_both_scopes():
    store = KeyStore([("same-key-123", "predict"), ("same-key-123", "admin")])
    assert len(store) == 1


@pytest.mark.slow
def test_missing_unknown_and_wrong_scope(server, body):
    predict = f"/v1/machines/{TEST_MACHINE}/predict/classification"
    with server.client(key=None) as client:
        response = client.post(predict, json=body)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "missing_api_key"
    with server.client(key="not-a-known-key") as client:
        response = client.post(predict, json=body)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unknown_api_key"
    with server.client(key=PREDICT_KEY) as client:
        response = client.post(f"/v1/machines/{TEST_MACHINE}/training")
        assert response.status_code == 403
        assert "needs 'admin'" in response.json()["error"]["message"]
        assert client.get("/v1/jobs/" + "0" * 32).status_code == 403
    with server.client(key=ADMIN_KEY) as client:  # admin includes predict
        assert client.post(predict, json=body).status_code == 200
        response = client.get("/v1/jobs/" + "0" * 32)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_job"


@pytest.mark.slow
def test_health_and_metrics_need_no_key(server):
    with server.client(key=None) as client:
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").json()["status"] == "ok"
        assert client.get("/metrics").status_code == 200
