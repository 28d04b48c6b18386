"""Publishing (pipeline/publish.py) on the in-process fake engine: what an earlier run published and this one
no longer produces is moved aside (or pruned), and only that: never a file someone changed, never another
batch's outputs in the same folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.fake_runs import pipeline, run, scans


def test_outputs_of_a_deleted_input_move_aside_and_nothing_else_does(tmp_path: Path):
    scans(tmp_path / "scans", series=3)
    path = pipeline(tmp_path)
    assert run(tmp_path, path).ok
    first = tmp_path / "out" / "first"
    kept = sorted(p.relative_to(first) for p in first.rglob("*.dcm"))
    mine = first / "g2" / "by-hand.dcm"  # not ours: never touched
    mine.write_bytes(b"notes")
    shutil.rmtree(tmp_path / "scans" / "g1")
    report = run(tmp_path, path)
    assert report.ok and report.launches == 0  # the other series come from the cache
    stale = sorted(Path(p).relative_to(tmp_path / "out") for p in report.stale)
    names = ("first/g1/s0-fakepack.dcm", "first/g1/s1-fakepack.dcm")
    names += ("second/g1/s0-fakepack-fakesingle.dcm", "second/g1/s1-fakepack-fakesingle.dcm")
    assert stale == [Path(name) for name in names]
    assert report.stale_to is not None
    moved = sorted(p.relative_to(report.stale_to) for p in Path(report.stale_to).rglob("*.dcm"))
    assert moved == stale  # kept, under .stale/<run id>/, where they were
    assert sorted(p.relative_to(first) for p in first.rglob("*-fakepack.dcm")) == [
        p for p in kept if p.parts[0] != "g1"
    ]
    assert mine.read_bytes() == b"notes"


def test_prune_deletes_what_is_stale(tmp_path: Path):
    scans(tmp_path / "scans", series=2)
    path = pipeline(tmp_path)
    assert run(tmp_path, path).ok
    shutil.rmtree(tmp_path / "scans" / "g0")
    report = run(tmp_path, path, prune=True)
    assert report.stale and report.stale_to is None
    assert not (tmp_path / "out" / ".stale").exists()
    assert not list((tmp_path / "out" / "first").glob("g0/*.dcm"))


def test_a_changed_published_file_is_never_moved(tmp_path: Path):
    scans(tmp_path / "scans", series=2)
    path = pipeline(tmp_path)
    assert run(tmp_path, path).ok
    target = tmp_path / "out" / "first" / "g0" / "s0-fakepack.dcm"
    target.unlink()
    target.write_bytes(b"someone's own file now")  # replaced, not edited in place: the cache is intact
    shutil.rmtree(tmp_path / "scans" / "g0")
    report = run(tmp_path, path)
    assert str(target) not in report.stale and target.read_bytes() == b"someone's own file now"
