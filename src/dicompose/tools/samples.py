"""The sample scans bundled with the package (synthetic phantoms: no patient data)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_data_folder() -> Path:
    """Folder of the bundled sample DICOM files (a 3-slice CT and a 2-slice MR series)."""
    return Path(str(files("dicompose") / "sample_data"))


def demo_pipeline() -> Path:
    """The bundled two-step demo pipeline (normalize → threshold)."""
    return Path(str(files("dicompose") / "pipelines" / "demo.yaml"))
