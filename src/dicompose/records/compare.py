"""``dicompose compare A B``: do two runs (other engine, image, OS) agree, file by file, within a tolerance?

Outputs are paired: DICOM files by their source instance (Source Image Sequence) within the same output
folder, other files by relative path. Each pair is identical (same bytes), or compared numerically.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from dicompose.dicom.compare import ImageComparison, compare_images
from dicompose.dicom.reading import looks_like_dicom
from dicompose.errors import UsageError
from dicompose.records.hashing import sha256_file

_HIDDEN = (".dicompose", ".dicompose-tasks")


@dataclass
class FileComparison:
    name: str
    status: str  # identical | within-tolerance | different | only-in-a | only-in-b | unreadable
    image: ImageComparison | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status in ("identical", "within-tolerance")


@dataclass
class Comparison:
    a: Path
    b: Path
    tolerance: float
    files: list[FileComparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.files) and all(f.passed for f in self.files)


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise UsageError(f"{root}: not an output folder")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") or part in _HIDDEN for part in p.relative_to(root).parts)
    )


def _pair_key(root: Path, path: Path) -> str:
    relative = path.relative_to(root)
    if looks_like_dicom(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                source = ds.SourceImageSequence[0].ReferencedSOPInstanceUID
            except Exception:
                source = None
        if source:
            return f"{relative.parts[0] if len(relative.parts) > 1 else ''}|source={source}"
    return relative.as_posix()


def compare_folders(a: Path, b: Path, tolerance: float = 0.0) -> Comparison:
    result = Comparison(a, b, tolerance)
    keyed_a = {_pair_key(a, p): p for p in _files(a)}
    keyed_b = {_pair_key(b, p): p for p in _files(b)}
    for key in sorted(set(keyed_a) | set(keyed_b), key=lambda k: str(keyed_a.get(k) or keyed_b.get(k))):
        pa, pb = keyed_a.get(key), keyed_b.get(key)
        name = (pa.relative_to(a) if pa else pb.relative_to(b) if pb else Path(key)).as_posix()
        if pa is None or pb is None:
            result.files.append(FileComparison(name, "only-in-b" if pa is None else "only-in-a"))
            continue
        result.files.append(compare_pair(name, pa, pb, tolerance))
    return result


def compare_pair(name: str, pa: Path, pb: Path, tolerance: float) -> FileComparison:
    if pa.stat().st_size == pb.stat().st_size and sha256_file(pa) == sha256_file(pb):
        return FileComparison(name, "identical")
    if not (looks_like_dicom(pa) and looks_like_dicom(pb)):
        return FileComparison(name, "different", message="bytes differ")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = compare_images(pydicom.dcmread(pa), pydicom.dcmread(pb))
    except Exception as exc:  # a damaged output is a finding, not a crash
        return FileComparison(name, "unreadable", message=f"{type(exc).__name__}: {exc}"[:200])
    ok = image.same_shape and not image.header_differences and image.max_abs <= tolerance
    return FileComparison(name, "within-tolerance" if ok else "different", image)
