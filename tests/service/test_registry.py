"""Bundles are loaded warm and swapped atomically: no request in flight fails during a swap."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
from fastapi.testclient import TestClient

from pdm_kedro.edge.manifest import seal_manifest
from pdm_kedro.service.app import create_app
from pdm_kedro.service.auth import KeyStore
from pdm_kedro.service.config import ServiceConfig
from pdm_kedro.service.registry import ModelRegistry
from tests.conftest import TEST_MACHINE
from tests.docs.kedro_cli import stop_process_group

from .conftest import PREDICT_KEY, copy_root, start_server

pytestmark = pytest.mark.slow


def republish(bundle_dir, change) -> None:
    """Rewrite the bundle file by file, like an export does (ONNX files first, manifest last)."""
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    change(manifest)
    for onnx in sorted(bundle_dir.glob("*.onnx")):
        data = onnx.read_bytes()
        onnx.write_bytes(data)
        time.sleep(0.05)
    (bundle_dir / "manifest.json").write_text(json.dumps(seal_manifest(manifest), indent=2))


def test_tampered_bundle_keeps_the_old_models_in_service(service_root, tmp_path):
    root = copy_root(service_root, tmp_path / "root")
    registry = ModelRegistry(root / "data" / "06_models")
    assert registry.scan() == [TEST_MACHINE]
    served = registry.get(TEST_MACHINE)
    onnx = root / "data" / "06_models" / TEST_MACHINE / "edge" / "regression.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    assert registry.scan() == []
    assert registry.get(TEST_MACHINE) is served
    assert "sha256" in registry.report.failures[TEST_MACHINE]
    assert registry.ready  # still serving the last good bundle


def test_requests_before_warm_up_get_503(service_root):
    config = ServiceConfig(models_dir=service_root / "data" / "06_models")
    app = create_app(config, KeyStore([(PREDICT_KEY, "predict")]), start_jobs=False)
    client = TestClient(app)  # no lifespan: the models are never loaded
    response = client.post(
        f"/v1/machines/{TEST_MACHINE}/predict", json={"readings": {}},
        headers={"X-API-Key": PREDICT_KEY},
    )  # fmt: skip
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"
    assert response.headers["Retry-After"]
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "loading"


def test_no_bundle_means_not_ready(tmp_path):
    app = create_app(
        ServiceConfig(models_dir=tmp_path), KeyStore([(PREDICT_KEY, "predict")]), start_jobs=False
    )
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while (
            not app.state.service.registry.report.initial_scan_done and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert client.get("/health/ready").status_code == 503
        response = client.get(
            f"/v1/machines/{TEST_MACHINE}/performance", headers={"X-API-Key": PREDICT_KEY}
        )
        assert response.status_code == 404 and response.json()["error"]["known_machines"] == []


def test_hot_swap_under_load_fails_no_request(service_root, tmp_path, body):
    root = copy_root(service_root, tmp_path / "root")
    server = start_server(root, name="swap")
    statuses: list[int] = []
    per_thread: list[list[float]] = [[] for _ in range(4)]
    stop = threading.Event()

    def hammer(thresholds: list[float]) -> None:
        with server.client() as client:
            while not stop.is_set():
                response = client.post(
                    f"/v1/machines/{TEST_MACHINE}/predict/classification", json=body
                )
                statuses.append(response.status_code)
                if response.status_code == 200:
                    thresholds.append(response.json()["failure"]["threshold"])

    workers = [threading.Thread(target=hammer, args=(t,)) for t in per_thread]
    try:
        with server.client() as client:
            before = client.get("/v1/machines").json()["machines"][0]
        for worker in workers:
            worker.start()
        time.sleep(1.0)

        def promote(manifest):
            manifest["created_at"] = "2026-12-31T00:00:00+00:00"
            manifest["models"]["classification"]["threshold"] = 0.5

        republish(server.bundle_dir, promote)
        deadline = time.monotonic() + 30
        with server.client() as client:
            while time.monotonic() < deadline:
                after = client.get("/v1/machines").json()["machines"][0]
                if after["bundle_version"] != before["bundle_version"]:
                    break
                time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        stop_process_group(server.process)
    assert after["bundle_version"] != before["bundle_version"]
    assert after["trained_at"] == "2026-12-31T00:00:00+00:00"
    assert len(statuses) > 20 and set(statuses) == {200}
    for thresholds in per_thread:
        assert thresholds[-1] == 0.5 and thresholds[0] != 0.5
        # one switch, never back: each request saw the old or the new bundle, whole
        switch = thresholds.index(0.5)
        assert set(thresholds[switch:]) == {0.5}
    shutil.rmtree(root / "swap", ignore_errors=True)
