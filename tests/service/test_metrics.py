"""``/metrics`` parses as Prometheus text and its histograms count the requests made."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_MACHINE

pytestmark = pytest.mark.slow

ROUTE = "/v1/machines/{machine_id}/predict/{family}"


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def sample(families: dict, name: str, sample_name: str, **labels) -> float:
    total = 0.0
    for s in families[name].samples:
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def test_histograms_count_the_requests_made(server, body):
    with server.client() as client:
        before = scrape(client)
        for _ in range(5):
            assert (
                client.post(
                    f"/v1/machines/{TEST_MACHINE}/predict/regression", json=body
                ).status_code
                == 200
            )
        for _ in range(3):
            assert (
                client.post(f"/v1/machines/{TEST_MACHINE}/predict/regression", json={}).status_code
                == 422
            )
        client.get("/no/such/path")
        after = scrape(client)

    def delta(name, sample_name, **labels):
        return sample(after, name, sample_name, **labels) - sample(
            before, name, sample_name, **labels
        )

    latency = "pdm_http_request_duration_seconds"
    assert delta(latency, f"{latency}_count", endpoint=ROUTE, method="POST") == 8
    requests = "pdm_http_requests"
    assert (
        delta(requests, f"{requests}_total", endpoint=ROUTE, family="regression", status="200") == 5
    )
    assert (
        delta(requests, f"{requests}_total", endpoint=ROUTE, family="regression", status="422") == 3
    )
    errors = "pdm_http_request_errors"
    assert delta(errors, f"{errors}_total", endpoint=ROUTE, status="422") == 3
    assert delta(requests, f"{requests}_total", endpoint="unmatched", status="404") == 1
    rul = "pdm_prediction_rul_hours"
    assert delta(rul, f"{rul}_count", machine=TEST_MACHINE) == 5


def test_buckets_resolve_sub_millisecond_latency_and_labels_stay_bounded(server, body):
    with server.client() as client:
        client.post(f"/v1/machines/{TEST_MACHINE}/predict", json=body)
        client.post("/v1/machines/invented_machine_42/predict", json=body)
        families = scrape(client)
    bounds = {
        float(s.labels["le"])
        for s in families["pdm_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert {0.0001, 0.00025, 0.0005, 0.001} <= bounds
    machines = {
        s.labels["machine"]
        for name, family in families.items()
        if name.startswith("pdm_")
        for s in family.samples
        if "machine" in s.labels
    }
    assert machines == {TEST_MACHINE}  # an unknown id in a request never becomes a label
    info = [s for s in families["pdm_model_info"].samples if s.value == 1]
    assert {s.labels["family"] for s in info} == {
        "classification",
        "regression",
        "anomaly",
        "forecasting",
    }
    ages = [s for s in families["pdm_model_age_seconds"].samples]
    assert ages and all(s.value >= 0 for s in ages)
    for probability in ("pdm_prediction_failure_probability", "pdm_prediction_anomaly_score"):
        assert sample(families, probability, f"{probability}_count", machine=TEST_MACHINE) >= 1
