"""A real browser for the tests that look at pages: Debian's Chromium, headless, driven by Selenium through
Debian's ChromeDriver, on pages served from a folder on localhost. Started with the flags that keep it off
the network (this machine's network is closed; Chromium would otherwise call home at every start)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,900",
)

#: Per image of the page: did it load, its natural size, and how many distinct colours a canvas sees in it.
IMAGES_SCRIPT = """
return Array.from(document.images).map(function (img) {
  var result = {src: img.getAttribute('src').slice(0, 80), complete: img.complete,
                width: img.naturalWidth, height: img.naturalHeight, colours: 0};
  if (!img.complete || img.naturalWidth === 0) { return result; }
  var canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  var context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  var data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  var seen = {};
  for (var i = 0; i < data.length && result.colours < 16; i += 4) {
    var key = data[i] + ',' + data[i + 1] + ',' + data[i + 2] + ',' + data[i + 3];
    if (!seen[key]) { seen[key] = true; result.colours += 1; }
  }
  return result;
});
"""


def available() -> tuple[bool, str]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return False, "Debian's chromium and chromium-driver are not installed (scripts/chromium.sh)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False, "selenium is not installed (the dev lock has it)"
    return True, ""


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (an ephemeral port), as a hospital's intranet would serve a report."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, its console log kept (``driver.get_log("browser")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dicompose-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: Any, url: str) -> dict[str, Any]:
    """Load ``url`` and wait until it and its images are done; its images, console errors and rendered text."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
        )
    )
    errors = [entry for entry in driver.get_log("browser") if entry.get("level") in ("SEVERE", "ERROR")]
    return {
        "images": driver.execute_script(IMAGES_SCRIPT),
        "errors": errors,
        "text": driver.execute_script("return document.documentElement.outerHTML"),
        "title": driver.title,
    }


def screenshot(driver: Any, path: Path, width: int = 1280, height: int | None = None) -> None:
    """The page as a person sees it, ``height`` pixels of it (default: the whole page, up to 4000)."""
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(4000, height or full))
    driver.save_screenshot(str(path))
