"""Publishing outputs into ``--out`` as tasks finish: written once, visible atomically.

Within one filesystem a published output is a hard link to the workspace's file (sealed read-only by
``finish_task``): no data is copied or fsynced again; the new name appears by rename, and each folder is
fsynced once per task. Across filesystems the file is copied once (temp file, fsync, rename). A target that
already is the same file (same device and inode), or holds the same content (the memo, for copies), is left
alone, so a no-op rerun publishes with two stats per file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from dicompose.errors import StorageError
from dicompose.fileio import atomic_write, fsync_directory, output_mode
from dicompose.pipeline.graph import PipelineGraph
from dicompose.pipeline.tasks import Task
from dicompose.records.audit import Item
from dicompose.records.hashing import canonical_hash, sha256_file
from dicompose.records.index import FileStat, Index, Memo
from dicompose.records.workspace import Workspace


def publication_scope(out_dir: Path, target: str, inputs: dict[str, Path]) -> str:
    """What makes two runs' publications the same set: one ``--out``, one pipeline file (or tool), the same
    input folders. Another batch into the same ``--out`` is another scope, and never swept by this one."""
    return canonical_hash(
        {
            "out": str(out_dir.resolve()),
            "target": target,
            "inputs": {name: str(path.resolve()) for name, path in sorted(inputs.items())},
        }
    )


def _unchanged(path: str, sha256: str, size: int | None, mtime_ns: int | None) -> bool:
    """Whether ``path`` still holds what was published there (same size and mtime, else the same bytes)."""
    stat = FileStat.maybe(path)
    if stat is None or not Path(path).is_file():
        return False
    if (stat.size, stat.mtime_ns) == (size, mtime_ns):
        return True
    return sha256_file(Path(path)) == sha256


def _remove_empty_parents(folder: Path, top: Path) -> None:
    """Remove ``folder`` and its parents below ``top`` while they are empty (a stale series folder)."""
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _identifiers(path: Path) -> dict[str, str | None]:
    from dicompose.dicom.identifiers import identifiers  # only when a cached output is published anew

    return identifiers(path)


class Publisher:
    def __init__(
        self,
        out_dir: Path,
        graph: PipelineGraph,
        workspace: Workspace,
        index: Index,
        run_id: str,
        published: list[str],
    ) -> None:
        self.out_dir = out_dir.absolute()
        self.workspace, self.index, self.run_id = workspace, index, run_id
        self.published = published
        self.targets: dict[str, list[tuple[str, str]]] = {}  # step → [(output id, folder name in --out)]
        for out_name, source in graph.outputs.items():
            folder = "" if graph.flat_outputs else out_name
            self.targets.setdefault(source.name, []).append((source.output, folder))
        self.delay = float(os.environ.get("DICOMPOSE_TEST_PUBLISH_DELAY", "0") or 0)  # crash-test fault point
        self.exported = 0  # files published (audit entries written) by this run
        self.claimed: dict[str, tuple[str, str]] = {}  # target → (task label, sha256) published there
        self.conflicts: list[str] = []
        self.digests: dict[str, str] = {}  # target → sha256 of what this run published (or found) there

    def publish_task(self, task: Task) -> list[Item]:
        """Publish the outputs of one finished task that the pipeline names as its outputs; the audit entries
        of what was exported (written by the caller, with the task's others, under one fsync).

        Paths are plain strings here: a no-op rerun checks 10,000s of targets, and ``pathlib`` objects for
        each cost more than the two ``stat`` calls that decide."""
        source_dir = f"{self.workspace.task_dir(task.key)}/out/"
        folders: set[str] = set()
        exported: list[Item] = []
        known = dict(
            zip((o["name"] for o in task.outputs), task.result.output_ids if task.result else (), strict=False)
        )
        relative = os.fspath(task.relative_parent)
        relative = "" if relative == "." else relative
        for output_id, out_name in self.targets.get(task.step, []):
            target_dir = os.path.join(self.out_dir, out_name, relative, "")  # noqa: PTH118
            for output in task.outputs:
                if output.get("id") != output_id:
                    continue
                target = target_dir + output["name"]
                claim = self.claimed.setdefault(target, (task.label, output["sha256"]))
                if claim[1] != output["sha256"]:  # two tasks of this run, one file name, different bytes
                    self.conflicts.append(
                        f"{target}: written by both {claim[0]} and {task.label} (different content); "
                        f"kept the first, the second's is in {source_dir}"
                    )
                    continue
                inode = output.get("inode")  # recorded by finish_task (older records lack it)
                try:
                    fresh = self._publish(source_dir + output["name"], target, output["sha256"], inode)  # type: ignore[arg-type]
                except OSError as exc:  # full, read-only, or taken by a folder: stop, the workspace keeps the work
                    raise StorageError(
                        target,
                        f"cannot publish ({exc.strerror or exc}); the finished tasks are kept in the workspace: "
                        "fix it and run the same command to publish them",
                    ) from None
                if fresh:
                    folders.add(target_dir)
                    ids = known.get(output["name"]) or _identifiers(Path(target))
                    obj = {**ids, "path": target, "sha256": output["sha256"]}
                    exported.append(("export", obj, None, None, self.run_id, "ok"))
                self.published.append(target)
                self.digests[target] = output["sha256"]
        for folder in folders:
            fsync_directory(Path(folder))
        self.exported += len(exported)
        return exported

    def reconcile(self, scope: str, *, sweep: bool, prune: bool = False) -> list[str]:
        """Remember what this run published in ``scope`` (one ``--out``, one pipeline or tool, the same inputs).

        With ``sweep`` (the run finished ok), what an earlier run of the same scope published and this one no
        longer produces -- the outputs of an input deleted since -- is moved into ``--out/.stale/<run id>/`` (or
        deleted with ``prune``) and the stale paths are returned. Only files still exactly as published are
        touched: never a file we did not publish, one changed since, or one published by another scope (a
        second batch into the same ``--out`` keeps the first's outputs).
        """
        known = self.index.published(scope)
        fresh: list[tuple[str, str, int | None, int | None]] = []
        for target, sha256 in self.digests.items():
            row = known.get(target)
            if row is None or row[0] != sha256:
                stat = FileStat.maybe(target)
                fresh.append((target, sha256, stat.size if stat else None, stat.mtime_ns if stat else None))
        gone = [path for path in known if path not in self.digests] if sweep else []
        shared = self.index.published_elsewhere(scope, gone)  # another batch published the same file
        stale = [path for path in gone if path not in shared and _unchanged(path, *known[path])]
        aside = self.out_dir / ".stale" / self.run_id
        for path in stale:
            if prune:
                Path(path).unlink()
            else:
                destination = aside / os.path.relpath(path, self.out_dir)
                destination.parent.mkdir(parents=True, exist_ok=True)
                Path(path).replace(destination)
            _remove_empty_parents(Path(path).parent, self.out_dir)
        self.index.record_published(scope, fresh, gone)
        return stale

    def _publish(self, source_name: str, target_name: str, sha256: str, inode: list[int] | None = None) -> bool:
        """Make ``target`` the output; False if it already was (``inode``: the source's, as recorded)."""
        try:
            dst = os.stat(target_name)  # noqa: PTH116 - hot path of no-op reruns
            if inode is not None and [dst.st_dev, dst.st_ino] == inode:
                return False
            src = os.stat(source_name)  # noqa: PTH116
            if (dst.st_dev, dst.st_ino) == (src.st_dev, src.st_ino):
                return False
            known = self.index.memo_lookup([FileStat.of(target_name)]).get(target_name)
            if known is not None and known.sha256 == sha256:
                return False
        except FileNotFoundError:
            pass
        source, target = Path(source_name), Path(target_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.partial")  # one publisher per workspace (its lock)
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # left by a killed run
        try:
            os.link(source, temp)
        except FileNotFoundError:
            return False  # no such output (nothing to publish)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            self._copy(source, target, sha256)
            return True
        if self.delay:
            time.sleep(self.delay)
        try:
            temp.replace(target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        return True

    def _copy(self, source: Path, target: Path, sha256: str) -> None:
        def copy(destination: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, destination, 1 << 20)
            if self.delay:
                time.sleep(self.delay)

        # no more open than the workspace copy, but the user's own: editing a copy cannot touch the cache
        atomic_write(target, copy, mode=output_mode(source) | 0o200)
        self.index.memo_store([(FileStat.of(target), Memo(sha256, None))])
