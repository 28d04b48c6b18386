"""Pipeline inputs → tasks: series are never split, labels are unique, known files are not read again."""

from __future__ import annotations

from pathlib import Path

import pydicom

from dicompose.dicom import synthetic
from dicompose.pipeline import inputs
from dicompose.pipeline.inputs import group_input
from dicompose.records.index import Index


def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "index.sqlite")


def test_a_series_is_never_split_however_large(tmp_path: Path):
    """A series split into chunks would get one min/max per chunk under scope=series: wrong values."""
    synthetic.write_ct_series(tmp_path / "scans" / "big", "big", 12, 8, 8)
    groups, skipped = (listing := group_input(tmp_path / "scans", index(tmp_path), chunk=5)).groups, listing.skipped
    assert [len(g.files) for g in groups] == [12] and skipped == []


def test_files_without_a_series_are_chunked(tmp_path: Path):
    folder = tmp_path / "scans"
    for number, path in enumerate(synthetic.write_ct_series(folder, "loose", 7, 8, 8)):
        ds = pydicom.dcmread(path)
        del ds.SeriesInstanceUID
        ds.save_as(folder / f"loose{number}.dcm")
        path.unlink()
    groups = group_input(folder, index(tmp_path), chunk=3).groups
    assert [len(g.files) for g in groups] == [3, 3, 1]
    assert [g.label for g in groups] == ["scans#noseries/1", "scans#noseries/2", "scans#noseries/3"]  # the input named


def test_labels_are_unique_and_do_not_show_the_uid(tmp_path: Path):
    folder = tmp_path / "scans"
    uids = ["1.2.3.4.5.111122223333444455556666", "1.2.9.9.111122223333444455556666"]  # same last 12 digits
    for number, uid in enumerate(uids):
        path = synthetic.write_ct_series(folder, f"label{number}", 1, 8, 8)[0]
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = uid
        ds.save_as(folder / f"file{number}.dcm")
        path.unlink()
    groups = group_input(folder, index(tmp_path)).groups
    labels = [g.label for g in groups]
    assert len(set(labels)) == 2 and not any("444455556666" in label for label in labels)


def test_a_rerun_reads_no_file_it_has_seen(tmp_path: Path, monkeypatch):
    folder = tmp_path / "scans"
    synthetic.write_ct_series(folder, "seen", 3, 8, 8)
    (folder / "notes.txt").write_text("not DICOM")
    memo = index(tmp_path)
    groups, skipped = (listing := group_input(folder, memo)).groups, listing.skipped
    assert [len(g.files) for g in groups] == [3] and [p.name for p in skipped] == ["notes.txt"]
    examined: list[Path] = []
    original = inputs._examine
    monkeypatch.setattr(inputs, "_examine", lambda path: examined.append(path) or original(path))
    again, skipped_again = (listing := group_input(folder, memo)).groups, listing.skipped
    assert examined == [] and [p.name for p in skipped_again] == ["notes.txt"]
    assert [[f.sha256 for f in g.files] for g in again] == [[f.sha256 for f in g.files] for g in groups]
