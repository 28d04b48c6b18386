"""The runner's logic on the in-process fake engine (engines/fake.py): packing, partial failures, retries
alone, engine errors, cache hits, shared work, dry runs, publishing — milliseconds per run, no processes.

The fake never runs a tool: it copies each input to ``<stem>-<tool>.dcm`` and fails, crashes or raises by
input file name (``fail``, ``crash``, ``transient``), reading only what a container would see.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicompose.pipeline.runner import PipelineRequest, run_pipeline
from dicompose.records.index import Index
from dicompose.records.workspace import Workspace
from tests.support.fake_runs import pipeline, run, scans


def launches(tmp_path: Path, run_id: str) -> list[dict]:
    index = Index(tmp_path / "ws" / "index.sqlite")
    try:
        return index.launches(run_id)
    finally:
        index.close()


def test_ready_tasks_are_packed_into_one_launch_per_core(tmp_path: Path):
    scans(tmp_path / "scans", series=6)
    report = run(tmp_path, pipeline(tmp_path))
    assert report.ok and len(report.tasks) == 12
    recorded = launches(tmp_path, report.run_id)
    packed = [launch for launch in recorded if launch["step"] == "a"]
    assert [len(launch["tasks"]) for launch in packed] == [3, 3]  # 6 series, 2 cores: 2 packs
    assert all(launch["processes"] == 1 for launch in recorded)  # 2 launches at a time × 1 process ≤ 2 cores
    singles = [launch for launch in recorded if launch["step"] == "b"]
    assert len(singles) == 6 and all(len(launch["tasks"]) == 1 for launch in singles)  # no pack contract
    carried = sorted(key for launch in recorded for key in launch["tasks"])
    assert carried == sorted(t.key for t in report.tasks)  # every task in exactly one launch
    assert len(report.published) == 24


def test_a_failing_task_fails_alone_and_is_retried_alone(tmp_path: Path):
    scans(tmp_path / "scans", series=4, per_series=1, names={(2, 0): "only-fail"})
    report = run(tmp_path, pipeline(tmp_path, extra="retries: 1"))
    by_step = {(t.step, t.label.split("#")[0]): t for t in report.tasks}
    assert by_step[("a", "g2")].status == "failed" and by_step[("a", "g2")].attempt == 2
    assert by_step[("b", "g2")].status == "blocked"
    assert all(t.status == "ok" for (step, folder), t in by_step.items() if folder != "g2")
    recorded = [launch for launch in launches(tmp_path, report.run_id) if launch["step"] == "a"]
    assert [len(launch["tasks"]) for launch in recorded] == [2, 2, 1]  # the retry went alone
    assert recorded[-1]["tasks"] == [by_step[("a", "g2")].key]
    again = run(tmp_path, pipeline(tmp_path, extra="retries: 1"))
    assert [len(launch["tasks"]) for launch in launches(tmp_path, again.run_id)] == [1, 1]  # only the failure
    assert sum(1 for t in again.tasks if t.cached) == 6


def test_a_launch_that_dies_keeps_the_tasks_it_finished(tmp_path: Path):
    scans(tmp_path / "scans", series=2, per_series=1, names={(1, 0): "crash"})
    report = run(tmp_path, pipeline(tmp_path), workers=1)  # one pack: g0 then g1
    a = {t.label.split("#")[0]: t for t in report.tasks if t.step == "a"}
    assert a["g0"].status == "ok" and Workspace(tmp_path / "ws").read_task(a["g0"].key) is not None
    assert a["g1"].status == "failed" and a["g1"].result is not None
    assert "before this task finished" in a["g1"].result.problems[0]
    assert launches(tmp_path, report.run_id)[0]["exit_code"] == 137


def test_an_engine_error_is_retried_once_even_without_retries(tmp_path: Path):
    scans(tmp_path / "scans", series=2, per_series=1, names={(0, 0): "transient"})
    report = run(tmp_path, pipeline(tmp_path), workers=1)
    assert report.ok
    first = launches(tmp_path, report.run_id)[0]
    assert first["exit_code"] is None and "No such container" in first["message"]
    assert all(t.attempt == 2 for t in report.tasks if t.step == "a")


def test_identical_groups_are_computed_once(tmp_path: Path):
    scans(tmp_path / "scans", series=1, per_series=2)
    copy = tmp_path / "scans" / "copy"
    copy.mkdir()
    for path in (tmp_path / "scans" / "g0").iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    report = run(tmp_path, pipeline(tmp_path))
    a = [t for t in report.tasks if t.step == "a"]
    assert len(a) == 2 and a[0].key == a[1].key and [t.cached for t in a].count(True) == 1
    assert sum(len(launch["tasks"]) for launch in launches(tmp_path, report.run_id) if launch["step"] == "a") == 1
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out" / "first").rglob("*.dcm")) == [
        "first/copy/s0-fakepack.dcm",
        "first/copy/s1-fakepack.dcm",
        "first/g0/s0-fakepack.dcm",
        "first/g0/s1-fakepack.dcm",
    ]


def test_published_outputs_are_read_only_links_and_an_edited_one_is_recomputed(tmp_path: Path):
    scans(tmp_path / "scans", series=2)
    report = run(tmp_path, pipeline(tmp_path))
    published = tmp_path / "out" / "first" / "g0" / "s0-fakepack.dcm"
    task = next(t for t in report.tasks if t.step == "a" and t.label.startswith("g0"))
    cached = Workspace(tmp_path / "ws").task_dir(task.key) / "out" / "s0-fakepack.dcm"
    assert os.path.samefile(published, cached) and published.stat().st_mode & 0o222 == 0
    assert run(tmp_path, pipeline(tmp_path)).launches == 0
    with published.open("ab") as fh:  # root ignores the mode: an in-place edit reaches the cached file
        fh.write(b"edited")
    again = run(tmp_path, pipeline(tmp_path))
    rerun = [t for t in again.tasks if not t.cached]
    assert [(t.step, t.label) for t in rerun if t.step == "a"] == [("a", task.label)]
    assert not published.read_bytes().endswith(b"edited")


def test_dry_run_plans_without_running(tmp_path: Path):
    scans(tmp_path / "scans", series=4)
    report = run(tmp_path, pipeline(tmp_path), dry_run=True)
    assert report.run_id == "dry-run" and [len(launch.tasks) for launch in report.launch_log] == [2, 2]
    assert all(launch.command[:2] == ["fake-engine", "fakepack"] for launch in report.launch_log)
    assert all("--manifest" in launch.command for launch in report.launch_log)
    assert not (tmp_path / "out").exists() and not list((tmp_path / "ws" / "work").rglob("done"))
    run(tmp_path, pipeline(tmp_path))
    planned = run(tmp_path, pipeline(tmp_path), dry_run=True)
    assert planned.launches == 0 and all(t.cached for t in planned.tasks) and len(planned.tasks) == 8


def test_a_dead_run_is_marked_interrupted(tmp_path: Path):
    scans(tmp_path / "scans", series=1)
    report = run(tmp_path, pipeline(tmp_path))
    index = Index(tmp_path / "ws" / "index.sqlite")
    index.db.execute("UPDATE runs SET status = 'running' WHERE id = ?", (report.run_id,))
    assert index.mark_interrupted() == [report.run_id]
    assert index.run(report.run_id)["status"] == "interrupted"
    index.close()


def test_tasks_a_killed_launch_finished_are_sealed_not_recomputed(tmp_path: Path):
    """dicompose killed mid-pack: tasks whose result file the tool wrote are sealed by the next run."""
    scans(tmp_path / "scans", series=4)
    first = run(tmp_path, pipeline(tmp_path), workers=1)
    workspace = Workspace(tmp_path / "ws")
    a = [t for t in first.tasks if t.step == "a"]
    for task in a[:3]:  # as if the run died after the tool finished these tasks but before sealing them
        folder = workspace.task_dir(task.key)
        (folder / "done").unlink()
        (folder / "out" / ".dicompose-result.json").write_text('{"exit_code": 0, "problems": []}')
    (workspace.task_dir(a[3].key) / "done").unlink()  # ... and this one had not finished (no result file)
    again = run(tmp_path, pipeline(tmp_path), workers=1)
    assert again.ok
    relaunched = [key for launch in launches(tmp_path, again.run_id) for key in launch["tasks"]]
    assert relaunched == [a[3].key]
    assert all(workspace.read_task(t.key) is not None for t in a)


def test_outputs_are_copied_once_when_out_is_on_another_filesystem(tmp_path: Path):
    """A hard link cannot cross filesystems: the output is copied (temp file, fsync, rename), once."""
    import shutil
    import tempfile

    import pytest

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the temp folder's")
    scans(tmp_path / "scans", series=2)
    workspace = Path(tempfile.mkdtemp(dir=shm))
    try:
        request = PipelineRequest(
            pipeline(tmp_path), {"scans": tmp_path / "scans"}, tmp_path / "out", workspace, "fake", workers=2
        )
        report = run_pipeline(request)
        published = tmp_path / "out" / "first" / "g0" / "s0-fakepack.dcm"
        task = next(t for t in report.tasks if t.step == "a" and t.label.startswith("g0"))
        cached = Workspace(workspace).task_dir(task.key) / "out" / "s0-fakepack.dcm"
        assert report.ok and published.read_bytes() == cached.read_bytes()
        assert published.stat().st_ino != cached.stat().st_ino and published.stat().st_mode & 0o200  # a copy
        before = published.stat().st_mtime_ns
        again = run_pipeline(request)
        assert again.launches == 0 and published.stat().st_mtime_ns == before  # not copied again
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def test_garbage_collection_is_paused_while_planning_only(tmp_path: Path, monkeypatch):
    """The collector is off while a run is planned (no cycles are made there; a no-op rerun over 10,000 files
    spent 50 ms in it) and back on for the launches and afterwards, whether the run worked or failed."""
    import gc

    import dicompose.pipeline.execution as execution

    seen: list[tuple[str, bool]] = []
    add_task = execution.Execution.add_task

    def spy(self, node, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((node.name, gc.isenabled()))
        return add_task(self, node, *args, **kwargs)

    monkeypatch.setattr(execution.Execution, "add_task", spy)
    scans(tmp_path / "scans")
    assert run(tmp_path, pipeline(tmp_path)).ok
    assert {enabled for step, enabled in seen if step == "a"} == {False}  # planned
    assert {enabled for step, enabled in seen if step == "b"} == {True}  # fed as step a's launches ended
    assert gc.isenabled()
    (tmp_path / "scans" / "g0" / "s0.dcm").write_bytes(b"x")  # not DICOM: skipped, the run goes on
    monkeypatch.setattr(execution.Execution, "dispatch", lambda self: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        run(tmp_path, pipeline(tmp_path))
    assert gc.isenabled()


def test_records_are_subscribers_and_a_new_one_hears_everything(tmp_path: Path):
    """The index and the audit log are told what happened like any subscriber; one more (here a list) gets
    the same events in the same order: run started, every attempt (cache hits too), every launch, the audit
    items of every file read and written, run ended."""
    from dicompose.pipeline.recorders import Recorder

    class Listening(Recorder):
        def __init__(self) -> None:
            self.heard: list[tuple[str, object]] = []

        def run_started(self, start):  # type: ignore[no-untyped-def]
            self.heard.append(("started", start.run_id))

        def attempt(self, attempt):  # type: ignore[no-untyped-def]
            self.heard.append(("attempt", (attempt.step, attempt.cached, attempt.status)))

        def launch(self, launch):  # type: ignore[no-untyped-def]
            self.heard.append(("launch", launch.step))

        def files(self, items):  # type: ignore[no-untyped-def]
            self.heard.append(("files", sorted({item[0] for item in items})))

        def run_ended(self, run_id, status):  # type: ignore[no-untyped-def]
            self.heard.append(("ended", status))

    scans(tmp_path / "scans", series=2)
    path = pipeline(tmp_path)
    request = PipelineRequest(path, {"scans": tmp_path / "scans"}, tmp_path / "out", tmp_path / "ws", "fake")
    first, second = Listening(), Listening()
    report = run_pipeline(request, recorders=[first])
    kinds = [kind for kind, _ in first.heard]
    assert kinds[0] == "started" and kinds[-1] == "ended" and first.heard[-1] == ("ended", "ok")
    assert {value for kind, value in first.heard if kind == "attempt"} == {("a", False, "ok"), ("b", False, "ok")}
    assert kinds.count("attempt") == len(report.tasks)
    assert {value for kind, value in first.heard if kind == "launch"} == {"a", "b"}
    audited = {action for kind, actions in first.heard if kind == "files" for action in actions}  # type: ignore[union-attr]
    assert {"read", "execute", "write", "export"} <= audited
    index = Index(tmp_path / "ws" / "index.sqlite")
    try:
        assert len(index.attempts(report.run_id)) == kinds.count("attempt")  # what the index heard, it kept
    finally:
        index.close()
    run_pipeline(request, recorders=[second])  # nothing changed: cache hits, no launch, no file touched
    assert [kind for kind, _ in second.heard] == ["started", *["attempt"] * len(report.tasks), "ended"]
    assert all(value[1] for kind, value in second.heard if kind == "attempt")  # type: ignore[index]
