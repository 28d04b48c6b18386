"""Input folders made of symbolic links (issue 9.12), shared by the tool, pipeline and Docker tests."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES = Path(__file__).parents[2] / "src" / "dicompose" / "sample_data"


def link_farm(root: Path) -> Path:
    """A study folder made of links into a hidden store under it (as archives lay out deduplicated data),
    plus a planted link to /etc/shadow and one to a scan outside the input."""
    store, series = root / "in" / ".store", root / "in" / "series"
    store.mkdir(parents=True)
    series.mkdir()
    for number, name in enumerate(("ct_01.dcm", "ct_02.dcm")):  # blobs named otherwise: outputs follow the link
        (store / f".blob-{number}").write_bytes((SAMPLES / name).read_bytes())
        os.symlink(f"../.store/.blob-{number}", series / name)
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "ct_03.dcm").write_bytes((SAMPLES / "ct_03.dcm").read_bytes())
    os.symlink(root / "elsewhere" / "ct_03.dcm", series / "ct_03.dcm")
    os.symlink("/etc/shadow", series / "shadow.dcm")
    return root / "in"
