"""The fleet dashboard in a real browser: Playwright driving Debian's Chromium over the running
``pdm-kedro serve`` of the service fixtures (no training run of its own).

What the page shows is checked against the service's own answers: the fleet view's risk, RUL and
anomaly state against ``POST /v1/machines/{id}/predict`` on the same readings window, the machine
page's charts and tables against ``GET /v1/dashboard/machines/{id}`` and the served metrics.
Screenshots go to a temporary folder (never the project tree); its path is printed.
"""

from __future__ import annotations

import math

import httpx
import pandas as pd
import pytest

from tests.conftest import TEST_MACHINE
from tests.service.conftest import ADMIN_KEY, PREDICT_KEY, json_readings
from tests.viz.browser import chromium_path, headless_page

pytestmark = [pytest.mark.slow]
BROWSER = pytest.mark.requires("chromium", "playwright")
TIMEOUT_MS = 30_000
LAPTOP = (1366, 900)
TABLET = (820, 1180)


def _sample_readings(service_root, manifest, sensors) -> dict:
    from pdm_kedro.commands.sample_readings import sample_window  # noqa: PLC0415

    raw = pd.read_parquet(service_root / "data" / "01_raw" / TEST_MACHINE / "test.parquet")
    return json_readings(sample_window(raw, manifest), sensors)


@pytest.fixture(scope="module")
def fleet_answer(server) -> dict:
    with server.client() as client:
        response = client.get("/v1/dashboard/fleet")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def machine_answer(server) -> dict:
    with server.client() as client:
        response = client.get(f"/v1/dashboard/machines/{TEST_MACHINE}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard_screenshots")
    print(f"dashboard screenshots: {folder}")
    return folder


def test_views_need_a_key_and_match_predict(server, service_root, manifest, sensors, fleet_answer):
    with server.client(key=None) as anonymous:
        assert anonymous.get("/v1/dashboard/fleet").status_code == 401
        assert anonymous.get(f"/v1/dashboard/machines/{TEST_MACHINE}").status_code == 401
        page = anonymous.get("/dashboard")
        assert page.status_code == 200 and "login-form" in page.text  # the shell holds no data
        assert anonymous.get("/dashboard/static/dashboard.js").status_code == 200
    with server.client(key="not-a-key") as wrong:
        assert wrong.get("/v1/dashboard/fleet").status_code == 401
    with server.client() as client:
        unknown = client.get("/v1/dashboard/machines/no_such_machine")
        assert unknown.status_code == 404 and TEST_MACHINE in unknown.text
        served = client.get("/v1/machines").json()["machines"]
        predicted = client.post(
            f"/v1/machines/{TEST_MACHINE}/predict?explain=3",
            json={"readings": _sample_readings(service_root, manifest, sensors)},
        ).json()
    rows = fleet_answer["machines"]
    assert sorted(r["machine_id"] for r in rows) == sorted(m["machine_id"] for m in served)
    risks = [r["risk"] for r in rows if r["risk"] is not None]
    assert risks == sorted(risks, reverse=True)
    row = next(r for r in rows if r["machine_id"] == TEST_MACHINE)
    assert row["error"] is None
    assert math.isclose(row["risk"], predicted["failure"]["probability"], rel_tol=1e-9)
    assert row["decision"] == predicted["failure"]["decision"]
    assert math.isclose(row["rul_hours"], predicted["rul_hours"]["value"], rel_tol=1e-9)
    assert row["anomaly"] == predicted["anomaly"]["flag"]
    assert row["readings_end"] == predicted["timestamp"]
    # "Top reasons": the classifier's top factors of the latest row (?explain=3)
    factors = predicted["explanation"]["failure"]["top_factors"]
    assert row["reasons"] == [f["text"] for f in factors] and len(factors) == 3


def _watch(page) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"console": [], "outside": []}
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["console"].append(str(e)))
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(("http://127.0.0.1", "data:"))
            else seen["outside"].append(r.url)
        ),
    )
    return seen


@BROWSER
def test_login_prompt_without_a_valid_key(server, shots):
    with headless_page(chromium_path(), width=LAPTOP[0], height=LAPTOP[1]) as page:
        seen = _watch(page)
        page.goto(f"{server.url}/dashboard", wait_until="networkidle")
        assert page.locator("#login").is_visible()
        assert page.locator("#fleet-table").count() == 0
        assert seen["console"] == []
        page.fill("#api-key", "not-a-valid-key")
        page.click("#login-form button[type=submit]")
        page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
        page.screenshot(path=str(shots / "login_refused.png"))
        assert page.locator("#login").is_visible()
        assert page.locator("#fleet-table").count() == 0
        assert "API key" in page.text_content("#login-error")
        assert page.evaluate("sessionStorage.getItem('pdmApiKey')") is None
        # the refused request is the only console line (Chromium logs a 401 resource load)
        assert all("401" in line for line in seen["console"]), seen["console"]
        assert seen["outside"] == []
        assert "not-a-valid-key" not in page.url


def _login(page, url: str, key: str) -> None:
    page.goto(f"{url}/dashboard", wait_until="domcontentloaded")
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#fleet-table", timeout=TIMEOUT_MS)


@BROWSER
def test_fleet_and_machine_pages_show_the_api_answers(server, fleet_answer, machine_answer, shots):
    with headless_page(chromium_path(), width=LAPTOP[0], height=LAPTOP[1]) as page:
        seen = _watch(page)
        _login(page, server.url, PREDICT_KEY)
        assert key_not_in_url(page, PREDICT_KEY)
        page.screenshot(path=str(shots / "fleet_laptop.png"), full_page=True)
        shown = page.eval_on_selector_all(
            "#fleet-table tbody tr",
            "rows => rows.map(r => [r.dataset.machine, r.querySelector('td.risk').dataset.value,"
            " r.querySelector('td.rul').dataset.value, r.querySelector('td.anomaly').textContent])",
        )
        expected = fleet_answer["machines"]
        assert [s[0] for s in shown] == [m["machine_id"] for m in expected]  # sorted by risk
        for (_, risk, rul, anomaly), m in zip(shown, expected, strict=True):
            assert math.isclose(float(risk), m["risk"], rel_tol=1e-12)
            assert math.isclose(float(rul), m["rul_hours"], rel_tol=1e-12)
            assert ("anomalous" if m["anomaly"] else "normal") in anomaly
        row = page.locator(f"#fleet-table tr[data-machine='{TEST_MACHINE}']")
        mine = next(m for m in expected if m["machine_id"] == TEST_MACHINE)
        reasons = row.locator("td.reasons").text_content()
        assert mine["reasons"] and all(text in reasons for text in mine["reasons"])
        if fleet_answer["machines"][0]["diagnosis"] is None:
            assert "not available" in row.locator("td.diagnosis").text_content()

        row.locator("a").click()
        page.wait_for_selector("#models-table", timeout=TIMEOUT_MS)
        page.wait_for_selector("#versions-table", timeout=TIMEOUT_MS)
        page.screenshot(path=str(shots / "machine_laptop.png"), full_page=True)
        m = machine_answer
        assert page.text_content("#machine-title") == TEST_MACHINE
        assert page.locator("#sensors .sensor").count() == len(m["sensors"])
        assert page.locator("#forecast .forecast").count() == len(m["forecast"]["sensors"])
        assert page.locator("#forecast path.interval").count() == len(m["forecast"]["sensors"])
        flagged = sum(bool(f) for f in m["anomaly"]["flag"])
        assert page.text_content("#flag-count").startswith(f"{flagged} rows flagged")
        per_sensor = page.locator("#sensors .sensor").first.locator("rect.anomaly-flag").count()
        assert per_sensor == flagged
        assert page.locator("#risk-chart line.threshold").count() == 1
        metrics = sum(len(s["metrics"]) for s in m["models"].values())
        assert page.locator("#models-table tbody tr").count() == metrics
        loses = sum(len(s["loses_to_baseline"]) for s in m["models"].values())
        assert page.locator("#models-table td", has_text="loses to baseline").count() == loses
        with server.client() as client:
            perf = client.get(f"/v1/machines/{TEST_MACHINE}/performance").json()
        versions = sum(len(f["versions"]) for f in perf["families"].values())
        assert page.locator("#versions-table tbody tr").count() == versions
        for section, key in (("#monitoring", "monitoring"), ("#retraining", "retraining")):
            if m[key] is None:
                assert "not available" in page.text_content(section)
        assert seen["console"] == [], seen["console"]
        assert seen["outside"] == []

        # a predict key cannot start training: the page says so (403 from the job endpoint)
        page.click("#train-form button")
        page.wait_for_selector("#train-error", timeout=TIMEOUT_MS)
        assert "admin" in page.text_content("#train-error")
        assert all("403" in line for line in seen["console"]), seen["console"]


def key_not_in_url(page, key: str) -> bool:
    return key not in page.url


@BROWSER
def test_tablet_width_is_readable(server, shots):
    with headless_page(chromium_path(), width=TABLET[0], height=TABLET[1]) as page:
        seen = _watch(page)
        _login(page, server.url, ADMIN_KEY)
        page.screenshot(path=str(shots / "fleet_tablet.png"), full_page=True)
        page.goto(f"{server.url}/dashboard#/machine/{TEST_MACHINE}")
        page.wait_for_selector("#models-table", timeout=TIMEOUT_MS)
        page.screenshot(path=str(shots / "machine_tablet.png"), full_page=True)
        # nothing wider than the viewport except inside the scrolling table boxes
        assert page.evaluate("document.documentElement.scrollWidth") <= TABLET[0]
        width = page.eval_on_selector("#risk-chart svg", "e => e.getBoundingClientRect().width")
        assert TABLET[0] / 2 < width <= TABLET[0]  # one chart column on a tablet
        assert page.is_visible("#train-form button")  # an admin key sees the training control
        assert seen["console"] == [], seen["console"]
        assert seen["outside"] == []


def test_page_ships_everything_it_loads(server):
    """Offline: the shell refers only to the package's own files."""
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        html = client.get("/dashboard").text
        assert "http://" not in html and "https://" not in html
        for asset in ("dashboard.js", "dashboard.css"):
            body = client.get(f"/dashboard/static/{asset}")
            assert body.status_code == 200
            assert "https://" not in body.text and "http://" not in body.text
