"""The QC report's screenshots in docs/ (docs/images/report-*.png), made as the browser tests look at it:
the demo pipeline on a small synthetic cohort (a CT and an MR series, and one CT series whose pixel data
cannot be decoded, so a failure shows), its report served on localhost, Debian's Chromium headless.

    .venv/bin/python scripts/screenshots.py     (from the repository's root; needs scripts/chromium.sh)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import browser  # noqa: E402
from tests.support.planted import DEMO  # noqa: E402

from dicompose.dicom import synthetic  # noqa: E402


def cohort(folder: Path) -> None:
    synthetic.write_ct_series(folder / "ct-chest", "docs-ct", 12, 192, 192)
    for i in range(9):
        synthetic.save(synthetic.mr_slice("docs-mr", i, 160, 192), folder / "mr-head" / f"mr_{i:02d}.dcm")
    broken = synthetic.write_ct_series(folder / "ct-broken", "docs-broken", 2, 32, 32)
    for path in broken:  # truncated pixel data: refused by the tool, shown as a failure
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 700])


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="dicompose-screenshots-"))
    env = {**os.environ, "DICOMPOSE_HOME": str(work / "home")}
    cohort(work / "scans")
    argv = [sys.executable, "-m", "dicompose", "run", str(DEMO), "--in", f"scans={work / 'scans'}"]
    argv += ["--out", str(work / "out"), "--workspace", str(work / "ws"), "--engine", "local", "--report"]
    subprocess.run(argv, env=env, check=False, capture_output=True)
    folder = work / "out" / "report"
    target = ROOT / "docs" / "images"
    target.mkdir(exist_ok=True)
    with browser.served(folder) as base, browser.chromium() as driver:
        browser.open_page(driver, f"{base}/index.html")
        browser.screenshot(driver, target / "report-index.png", height=1250)
        page = sorted((folder / "series").glob("*.html"))
        ct = next(p for p in page if "CT" in p.read_text() and "<strong>Failed" not in p.read_text())
        browser.open_page(driver, f"{base}/series/{ct.name}")
        browser.screenshot(driver, target / "report-series.png", height=1400)
    print(f"written: {target / 'report-index.png'}, {target / 'report-series.png'} (report in {folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
