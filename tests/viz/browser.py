"""Serve a kedro-viz build on loopback and drive Debian's Chromium headless through Playwright."""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM_ENV = "PDM_CHROMIUM"  # overrides the browser binary (default: `chromium` on PATH)
# Headless flags for Debian's chromium as root in CI, no background network traffic.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None when the machine has none."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if Path(override).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002, ANN002
        """Keep the test output free of access logs."""


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def headless_page(
    executable: str, settings: dict | None = None, width: int = 1600, height: int = 1000
) -> Iterator:
    """A Playwright page in headless Chromium that may only reach loopback addresses.

    ``settings`` pre-seeds kedro-viz's stored UI settings (``localStorage["KedroViz"]``), e.g.
    ``{"theme": "light", "showFeatureHints": False, "expandAllPipelines": True}``.
    """
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            if settings:
                page.add_init_script(
                    f"localStorage.setItem('KedroViz', JSON.stringify({json.dumps(settings)}))"
                )
            # Offline: the site links web fonts; every non-loopback request is refused.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(("http://127.0.0.1", "data:"))
                    else route.abort()
                ),
            )
            yield page
        finally:
            browser.close()
