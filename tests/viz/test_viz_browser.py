"""The static kedro-viz site renders the fleet graph in a real (headless) Chromium.

Everything asserted here is read from the rendered page: the collapsed machine namespaces drawn in
the flowchart, the sidebar tree, node labels and the layer bands. Screenshots go to the data root's
``08_reporting/`` (the test's own temporary data root: tests never write into the project).
"""

from __future__ import annotations

import pytest

from tests.conftest import TEST_MACHINE
from tests.viz.browser import chromium_path, headless_page, serve_directory
from tests.viz.test_catalog_layers import LAYERS

RENDER_TIMEOUT_MS = 45_000
SETTLE_MS = 1_500  # layout transitions finish before the screenshot
MODULAR_NODE = "g.pipeline-node--modularPipeline"
# Light theme, no first-visit tour: readable screenshots.
VIEW_SETTINGS = {"theme": "light", "showFeatureHints": False}

pytestmark = [pytest.mark.slow, pytest.mark.requires("chromium", "playwright")]


def _texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")


@pytest.fixture(scope="module")
def site_url(viz_build):
    with serve_directory(viz_build) as url:
        yield url


@pytest.fixture(scope="module")
def reporting_dir(viz_root):
    folder = viz_root / "data" / "08_reporting"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def default_view(site_url, reporting_dir, fleet_priority) -> dict:
    """The default pipeline as first shown: one collapsed namespace per priority machine."""
    screenshot = reporting_dir / "kedro_viz_default_pipeline.png"
    with headless_page(chromium_path(), VIEW_SETTINGS) as page:
        page.goto(site_url, wait_until="domcontentloaded")
        page.wait_for_function(
            "n => document.querySelectorAll('g.pipeline-node--modularPipeline').length >= n",
            arg=len(fleet_priority),
            timeout=RENDER_TIMEOUT_MS,
        )
        page.wait_for_timeout(SETTLE_MS)
        page.screenshot(path=str(screenshot))
        return {
            "title": page.title(),
            "pipeline": page.locator(".pipeline-list .dropdown__label").first.text_content(),
            "graph_namespaces": _texts(page, f"{MODULAR_NODE} .pipeline-node__text"),
            "sidebar_rows": _texts(page, ".node-list-row"),
            "layers": _texts(page, ".pipeline-layer-name"),
            "screenshot": screenshot,
        }


@pytest.fixture(scope="module")
def machine_view(site_url, reporting_dir) -> dict:
    """One machine's registered pipeline with every namespace expanded."""
    screenshot = reporting_dir / "kedro_viz_one_machine.png"
    settings = {**VIEW_SETTINGS, "expandAllPipelines": True}
    with headless_page(chromium_path(), settings) as page:
        page.goto(f"{site_url}?pid={TEST_MACHINE}", wait_until="domcontentloaded")
        page.wait_for_selector("g.pipeline-node--task", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_timeout(SETTLE_MS)
        page.screenshot(path=str(screenshot))
        return {
            "task_labels": _texts(page, "g.pipeline-node--task .pipeline-node__text"),
            "data_labels": _texts(page, "g.pipeline-node--data .pipeline-node__text"),
            "sidebar_rows": _texts(page, ".node-list-row"),
            "layers": _texts(page, ".pipeline-layer-name"),
            "screenshot": screenshot,
        }


@pytest.fixture(scope="module")
def opened_machine(site_url) -> dict:
    """One machine's pipeline shown collapsed, then opened by a click on its namespace node."""
    with headless_page(chromium_path(), VIEW_SETTINGS) as page:
        page.goto(f"{site_url}?pid={TEST_MACHINE}", wait_until="domcontentloaded")
        page.wait_for_selector(MODULAR_NODE, timeout=RENDER_TIMEOUT_MS)
        before = _texts(page, f"{MODULAR_NODE} .pipeline-node__text")
        page.click(f"{MODULAR_NODE}[data-id='{TEST_MACHINE}']")
        page.wait_for_timeout(SETTLE_MS)
        after = _texts(page, f"{MODULAR_NODE} .pipeline-node__text")
    return {"before": before, "after": after}


def test_machine_namespace_opens_onto_its_collapsed_families(opened_machine, family_namespaces):
    assert opened_machine["before"] == [TEST_MACHINE]
    assert family_namespaces, "no model family namespaces defined"
    assert sorted(opened_machine["after"]) == sorted(
        f"{TEST_MACHINE}.{family}" for family in family_namespaces
    )


def test_page_is_kedro_viz_on_the_default_pipeline(default_view):
    assert default_view["title"] == "Kedro-Viz"
    assert default_view["pipeline"] == "__default__"


def test_flowchart_draws_each_priority_machine_as_a_collapsed_namespace(
    default_view, fleet_priority
):
    assert sorted(default_view["graph_namespaces"]) == sorted(fleet_priority)


def test_sidebar_lists_the_machine_namespaces(default_view, fleet_priority):
    assert set(fleet_priority) <= set(default_view["sidebar_rows"])


def test_flowchart_shows_the_data_layers(default_view, machine_view):
    # Collapsed namespaces hide their inner datasets: the default view shows the bands of the
    # datasets the machines expose; the expanded machine shows every band from raw on.
    assert "reporting" in default_view["layers"] and set(default_view["layers"]) <= LAYERS
    assert {"raw", "intermediate", "feature", "models", "reporting"} <= set(machine_view["layers"])


def test_expanded_machine_reads_well(machine_view, family_namespaces):
    tasks = set(machine_view["task_labels"])
    # node labels are the template's verb_object names, without the machine prefix
    assert {"simulate_machine_history", "split_by_episode", "build_train_window_features"} <= tasks
    assert not [label for label in tasks if label.startswith(TEST_MACHINE)]
    # dataset labels carry the namespace, so they are unambiguous across machines
    assert f"{TEST_MACHINE}.features_train" in machine_view["data_labels"]
    assert all(label.startswith((TEST_MACHINE, "params:")) for label in machine_view["data_labels"])
    # every model family shows as its own namespace inside the machine
    rows = set(machine_view["sidebar_rows"])
    missing = [f for f in family_namespaces if f not in rows and f"{TEST_MACHINE}.{f}" not in rows]
    assert not missing, f"families missing from the sidebar tree: {missing}"


def test_screenshots_are_saved(default_view, machine_view):
    for view in (default_view, machine_view):
        png = view["screenshot"].read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 20_000
