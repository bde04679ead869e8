"""Per-key rate limits (429 with Retry-After, then recovery) and size limits (413)."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import TEST_MACHINE
from tests.docs.kedro_cli import stop_process_group

from .conftest import OTHER_PREDICT_KEY, PREDICT_KEY, start_server

pytestmark = pytest.mark.slow

LIMITED = {
    "rate_limits": {"predict": "4/second", "admin": "30/minute"},
    "limits": {"max_body_bytes": 200_000, "max_rows": 300, "max_batch_items": 3},
}


@pytest.fixture(scope="module")
def limited(service_root):
    started = start_server(service_root, service_yml=LIMITED, name="limited")
    yield started
    stop_process_group(started.process)


def test_rate_limit_answers_429_per_key_and_recovers(limited):
    url = "/v1/machines"
    with limited.client(PREDICT_KEY) as client, limited.client(OTHER_PREDICT_KEY) as other:
        statuses = [client.get(url).status_code for _ in range(12)]
        assert 200 in statuses and 429 in statuses
        refused = client.get(url)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limited" and "4/second" in error["message"]
        retry = int(refused.headers["Retry-After"])
        assert 1 <= retry <= 2
        assert other.get(url).status_code == 200  # the budget is per key
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(retry)
            response = client.get(url)
            if response.status_code == 200:
                break
            retry = int(response.headers["Retry-After"])
        assert response.status_code == 200


def test_body_above_the_limit_is_413(limited, body):
    padded = {"readings": {**body["readings"], "speed": body["readings"]["speed"] * 80}}
    text = json.dumps(padded)
    assert len(text) > LIMITED["limits"]["max_body_bytes"]
    with limited.client(OTHER_PREDICT_KEY) as client:
        response = client.post(
            f"/v1/machines/{TEST_MACHINE}/predict",
            content=text,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_chunked_body_above_the_limit_is_413(limited, body):
    text = json.dumps({"readings": {**body["readings"], "x": ["y" * 60] * 4000}}).encode()

    def chunks():
        for start in range(0, len(text), 16_384):
            yield text[start : start + 16_384]

    with limited.client(OTHER_PREDICT_KEY) as client:
        response = client.post(
            f"/v1/machines/{TEST_MACHINE}/predict",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413


def test_too_many_rows_and_items_are_413(limited, body):
    rows = {k: (v * 2)[:301] for k, v in body["readings"].items()}
    item = {"machine_id": TEST_MACHINE, "readings": {k: v[:3] for k, v in rows.items()}}
    with limited.client(OTHER_PREDICT_KEY) as client:
        time.sleep(1.1)
        response = client.post(f"/v1/machines/{TEST_MACHINE}/predict", json={"readings": rows})
        assert response.status_code == 413
        assert "301 rows; the limit is 300" in response.json()["error"]["message"]
        response = client.post("/v1/predict/batch", json={"items": [item] * 4})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_many_items"


def test_an_explained_request_costs_more_of_the_budget(limited, body):
    """``rate_limit_cost`` 5 (conf/base/service.yml) against a 4/second budget: an explained
    request never fits, a plain one does."""
    time.sleep(2.1)  # a fresh window for this key
    with limited.client(PREDICT_KEY) as client:
        url = f"/v1/machines/{TEST_MACHINE}/predict/classification"
        refused = client.post(f"{url}?explain=1", json=body)
        assert refused.status_code == 429, refused.text
        assert "this request counts as 5" in refused.json()["error"]["message"]
        assert client.post(url, json=body).status_code == 200
