"""Issue 13.6: the QC report looked at for real, in headless Chromium (Debian's), served from localhost: no
console errors, every image decodes and is not blank, planted identifiers appear nowhere in the rendered
pages, and a screenshot shows something (the docs' screenshot is made the same way: scripts/screenshots.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support import browser
from tests.support.components import need
from tests.support.planted import DEMO, dicompose, leaks, planted_scans

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp / "home")}
    planted_scans(tmp / "in")
    argv = ["run", str(DEMO), "--in", f"scans={tmp / 'in'}", "--out", str(tmp / "out"), "--workspace", str(tmp / "ws")]
    proc = dicompose(*argv, "--engine", "local", "--report", "--json", env=env)
    assert proc.returncode == 1, proc.stderr  # one series fails: its panel is part of what is looked at
    run_id = json.loads(proc.stdout)["run"]
    page = tmp / "embedded" / "report.html"
    embedded = dicompose("report", run_id, "--workspace", str(tmp / "ws"), "--out", str(page), "--embed", env=env)
    assert embedded.returncode == 0, embedded.stderr
    return {"folder": tmp / "out" / "report", "embedded": page, "tmp": tmp}


@pytest.fixture(scope="module")
def driver():
    available, reason = browser.available()
    need("chromium", available, reason)
    with browser.chromium() as started:
        yield started


def _looked_at(driver, url: str) -> dict:
    seen = browser.open_page(driver, url)
    assert seen["errors"] == [], (url, seen["errors"])
    assert seen["images"], url
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, (url, image)
        assert image["colours"] > 1, ("blank image", url, image)
    assert not leaks(seen["text"].encode()), (url, leaks(seen["text"].encode()))
    return seen


def test_every_page_of_the_report_renders_with_its_images(reports: dict[str, Path], driver) -> None:
    folder = reports["folder"]
    with browser.served(folder) as base:
        index = _looked_at(driver, f"{base}/index.html")
        assert index["title"].startswith("QC report: demo")
        assert len(index["images"]) == 2  # a strip per series in the cohort overview (not the broken one)
        assert "no preview: no slice could be decoded" in index["text"]
        pages = sorted(p.relative_to(folder).as_posix() for p in (folder / "series").glob("*.html"))
        assert len(pages) == 3
        shown = 0
        for page in pages:
            seen = browser.open_page(driver, f"{base}/{page}")
            assert seen["errors"] == [], (page, seen["errors"])
            assert not leaks(seen["text"].encode())
            for image in seen["images"]:
                assert image["complete"] and image["width"] > 0 and image["colours"] > 1, (page, image)
            shown += len(seen["images"])
        assert shown >= 10  # mosaics and histograms of two series (the broken one has none)
        picture = reports["tmp"] / "index.png"
        browser.open_page(driver, f"{base}/index.html")
        browser.screenshot(driver, picture)
        assert picture.stat().st_size > 10_000


def test_the_embedded_page_renders_offline_from_a_file(reports: dict[str, Path], driver) -> None:
    seen = _looked_at(driver, reports["embedded"].as_uri())
    assert len(seen["images"]) == 12  # every figure of the two series with slices, and their strips, inline
    assert all(image["src"].startswith("data:image/png;base64,") for image in seen["images"])
