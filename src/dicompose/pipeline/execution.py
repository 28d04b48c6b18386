"""One run in progress: tasks added as their inputs become known, packed into launches under the core budget,
finished (retried alone, audited, published) as launches end. Owned by the main thread; see ``runner``."""

from __future__ import annotations

import queue
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

from dicompose.engines.base import Engine, ImageRef, Permissions, Resources
from dicompose.pipeline.graph import PipelineGraph, StepNode
from dicompose.pipeline.images import image_key
from dicompose.pipeline.inputs import Group
from dicompose.pipeline.launch import (
    LaunchRequest,
    LaunchResult,
    TaskItem,
    TaskResult,
    execute_launch,
    recover_task,
)
from dicompose.pipeline.model import FINISHED, Events, LaunchInfo, PipelineReport, PipelineRequest
from dicompose.pipeline.packing import Candidate, plan_launches
from dicompose.pipeline.privacy import folder_label
from dicompose.pipeline.publish import Publisher
from dicompose.pipeline.recorders import AuditRecorder, Recorder, cached_attempt, executed_attempt, task_items
from dicompose.pipeline.tasks import Task, key_of
from dicompose.records.audit import Item
from dicompose.records.index import Index, Launch
from dicompose.records.workspace import Workspace
from dicompose.schedulers.base import Scheduler

_BACKOFF_S = 0.5


class Execution:
    """The state of one run; every method runs on the main thread (workers only execute launches)."""

    def __init__(
        self,
        request: PipelineRequest,
        graph: PipelineGraph,
        workspace: Workspace,
        index: Index,
        engine: Engine,
        scheduler: Scheduler,
        report: PipelineReport,
        events: Events,
        audit: AuditRecorder,
        record: Recorder,
    ) -> None:
        """``record``: the subscribers told what happened (``recorders``; ``audit`` among them, asked for its
        keys and to rescue entries when a run fails); ``events``: the caller's progress display."""
        self.request, self.graph, self.workspace = request, graph, workspace
        self.engine, self.scheduler, self.report, self.events = engine, scheduler, report, events
        self.images = report.images
        self.audit, self.record = audit, record
        self.publisher = Publisher(request.out_dir, graph, workspace, index, report.run_id, report.published)
        report.conflicts = self.publisher.conflicts
        self.done: queue.Queue[tuple[LaunchRequest, LaunchResult | None, BaseException | None]] = queue.Queue()
        self.pending: dict[str, list[Task]] = {node.name: [] for node in graph.steps}
        self.in_flight: dict[str, Task] = {}  # key → the task computing it (identical groups share one)
        self.followers: dict[str, list[Task]] = {}
        self.running: dict[str, int] = {}  # launch id → cores it holds
        self.launch_numbers = 0
        self.progressed_at = time.time()  # when a task last succeeded (or the run started): see check_health
        self.unpublished: list[Task] = []  # settled, outputs not yet in --out (see flush)
        self.unaudited: list[Item] = []
        self.stopping = False  # interrupted: launch nothing more
        self.storage_problem = ""  # the workspace is full or read-only (a task said so): launch nothing more
        self.consumers: dict[str, list[StepNode]] = {}
        for node in graph.steps:
            if node.source.kind == "step":
                self.consumers.setdefault(node.source.name, []).append(node)

    # --- planning ---------------------------------------------------------------------------------------
    def add_task(
        self, node: StepNode, label: str, parent: Path, files: tuple[str, ...], inputs: tuple[dict[str, str], ...]
    ) -> None:
        if len(files) > 1 and not node.descriptor.input(node.batch_input).get("list"):
            self.report.expected += len(files) - 1  # the plan counted one task per group
            for number, (file, described) in enumerate(zip(files, inputs, strict=True)):  # it takes one file
                self.add_task(node, f"{label}/{number + 1}", parent, (file,), (described,))
            return
        image = self.images[node.name][0]
        if self.graph.deidentified(node.name):
            parent = Path()  # published flat: de-identified outputs are named from de-identified values only
        task = Task(key_of(node, image_key(self.engine, image), inputs), node.name, label, parent, files, inputs)
        self.report.tasks.append(task)
        record = self.workspace.read_task(task.key)
        if record is not None:
            task.status, task.cached, task.outputs = str(record["status"]), True, tuple(record["outputs"])
            task.skipped = tuple(str(line) for line in record.get("skipped", []))
            task.problems = tuple(str(line) for line in record.get("problems", []))
            if self.request.dry_run:
                self.feed_consumers(node, task)
                return
            log_dir = str(self.workspace.task_dir(task.key))
            self.record.attempt(cached_attempt(self.report.run_id, task, record, log_dir))
            self.settled(node, task)
            return
        if task.key in self.in_flight:
            self.followers.setdefault(task.key, []).append(task)
            return
        self.in_flight[task.key] = task
        if not self.request.dry_run and self.recover(node, task):
            return
        self.pending[node.name].append(task)

    def recover(self, node: StepNode, task: Task) -> bool:
        """A task a killed run finished inside a packed launch (result file, no ``done``): sealed, not rerun."""
        if node.descriptor.manifest_flag is None:
            return False
        request = self.launch_request(node, [task], 1, record=False)
        result = recover_task(replace(request, launch_id=f"{self.report.run_id}-recovered"), self.workspace, True)
        if result is None:
            task.launch = ""
            return False
        task.launch = f"{self.report.run_id}-recovered"
        self.finish_task(node, task, result)
        return True

    def settled(self, node: StepNode, task: Task) -> None:
        """A task has its final outcome: tell the caller, feed or block its dependants, queue its publication."""
        if task.status in FINISHED:
            self.unpublished.append(task)
        if task.status == "skipped":  # no outputs: the steps after it get no task from it
            self.report.expected -= self._downstream(node)
        self.events.task(task)
        if task.status in FINISHED:
            self.feed_consumers(node, task)
        else:
            self.block_dependants(node, task)

    def _downstream(self, node: StepNode) -> int:
        """How many steps consume ``node``'s outputs, directly or through others."""
        return sum(1 + self._downstream(consumer) for consumer in self.consumers.get(node.name, []))

    def feed_consumers(self, node: StepNode, task: Task) -> None:
        for consumer in self.consumers.get(node.name, []):
            chosen = tuple(o for o in task.outputs if o.get("id") == consumer.source.output)
            if not chosen:
                continue
            folder = f"{self.workspace.task_dir(task.key)}/out/"  # strings: a no-op rerun builds 10,000s of these
            files = tuple(folder + o["name"] for o in chosen)
            inputs = tuple({"name": o["name"], "sha256": o["sha256"], "path": folder + o["name"]} for o in chosen)
            self.add_task(consumer, task.label, task.relative_parent, files, inputs)

    def block_dependants(self, node: StepNode, task: Task) -> None:
        """A task that failed for good feeds nothing: the task each later step would have made of its outputs is
        recorded as ``blocked`` (transitively), so the run reports what did not happen and why, and the other
        series go on (one bad series never stops a cohort)."""
        for consumer in self.consumers.get(node.name, []):
            blocked = Task("", consumer.name, task.label, task.relative_parent, (), (), status="blocked")
            self.report.tasks.append(blocked)
            self.events.task(blocked)
            self.block_dependants(consumer, blocked)

    # --- launching --------------------------------------------------------------------------------------
    def dispatch(self) -> None:
        """Start as many launches as the idle cores allow, upstream steps first."""
        if self.stopping:
            return
        now = time.monotonic()
        for node in self.graph.steps:
            ready = [t for t in self.pending[node.name] if t.not_before <= now]
            free = self.report.budget - sum(self.running.values())
            if not ready or free < 1:
                continue
            plans = plan_launches(
                [Candidate(len(t.files), alone=t.attempt > 1) for t in ready],
                free,
                budget=self.report.budget,
                packable=node.descriptor.manifest_flag is not None,
                cpus=node.spec.resources.cpus,
                max_tasks=node.spec.pack,
                per_launch=self.scheduler.cores_per_worker,
            )
            for plan in plans:
                self.launch(node, [ready[i] for i in plan.tasks], plan.processes)

    def launch(self, node: StepNode, tasks: list[Task], processes: int) -> None:
        if self.stopping:
            return
        request = self.launch_request(node, tasks, processes)
        keys = [t.key for t in tasks]
        try:
            self.record.launch_started(
                Launch(request.launch_id, self.report.run_id, node.name, keys, processes, None, time.time(), None, [])
            )
        except sqlite3.OperationalError as exc:  # a full workspace: launch nothing more; the run ends saying so
            self.report.launch_log.pop()
            for task in tasks:
                task.launch = ""
            self.storage_problem = self.storage_problem or f"{self.workspace.root}: cannot record a launch ({exc})"
            self.stopping = True
            return
        for task in tasks:
            self.pending[node.name].remove(task)
            task.status = "running"
        self.running[request.launch_id] = processes
        self.scheduler.submit(
            execute_launch,
            request,
            lambda result, error: self.done.put((request, result, error)),
            processes,
            request.resources.memory_bytes,
            request.resources.gpus,
        )

    def launch_request(self, node: StepNode, tasks: list[Task], processes: int, record: bool = True) -> LaunchRequest:
        if record:
            self.launch_numbers += 1
        launch_id = f"{self.report.run_id}-{self.launch_numbers:04d}"
        for task in tasks:
            task.launch = launch_id
        delay = max(0.0, max(t.not_before for t in tasks) - time.monotonic())
        if record:
            self.report.launch_log.append(LaunchInfo(launch_id, node.name, [t.key for t in tasks], processes))
        return LaunchRequest(
            launch_id=launch_id,
            run_id=self.report.run_id,
            step=node.name,
            workspace=str(self.workspace.root),
            engine=self.engine.name,
            image=self.images[node.name][0],
            descriptor=node.descriptor,
            batch_input=node.batch_input,
            params=node.params,
            tasks=tuple(TaskItem(t.key, t.label, t.files, t.inputs) for t in tasks),
            processes=processes,
            permissions=Permissions(bool(node.descriptor.custom.get("network")), node.gpus > 0),
            resources=Resources(
                node.spec.resources.memory_bytes(),
                node.spec.resources.cpus,
                node.spec.timeout_seconds(),
                node.gpus,
            ),
            delay_s=delay,
        )

    def plan_only(self, per_launch: int | None = None) -> None:
        """``--dry-run``: pack every ready task as the first dispatch would (``per_launch``: the most cores one
        launch may use where it runs, a SLURM worker job's), with the exact commands; run nothing."""
        from dicompose.pipeline.launch import launch_spec

        budget = self.report.budget
        for node in self.graph.steps:
            while self.pending[node.name]:
                ready = self.pending[node.name]
                plans = plan_launches(
                    [Candidate(len(t.files)) for t in ready],
                    budget,
                    budget=budget,
                    packable=node.descriptor.manifest_flag is not None,
                    cpus=node.spec.resources.cpus,
                    max_tasks=node.spec.pack,
                    per_launch=per_launch,
                )
                for plan in plans:
                    request = self.launch_request(node, [ready[i] for i in plan.tasks], plan.processes)
                    spec, _paths = launch_spec(request, self.workspace, self.engine.isolates, write_manifest=False)
                    self.report.launch_log[-1].command = self.engine.command(spec)
                    for task in [ready[i] for i in plan.tasks]:
                        task.status = "planned"
                for task in [t for t in ready if t.status == "planned"]:
                    ready.remove(task)

    def drain(self) -> None:
        self.dispatch()
        self.flush()  # cached tasks' outputs
        while self.running or (any(self.pending.values()) and not self.stopping):
            try:
                request, result, error = self.done.get(timeout=0.2)
            except queue.Empty:
                self.scheduler.check_health(self.progressed_at)  # worker jobs that never finish a launch end it
                self.dispatch()  # retries whose backoff has passed
                continue
            self.running.pop(request.launch_id, None)
            self.finish_launch(request, result, error)
            self.dispatch()

    def wind_down(self, seconds: float = 15.0) -> None:
        """After an interrupt (the engine has stopped the run's steps): take in the launches that end now, so
        the tasks that finished are sealed, published and audited; launch nothing more. With a scheduler that
        forgets cancelled launches (Dask, SLURM) only what has already come back is taken in: nothing more
        will (what those launches finished is recovered by the next run)."""
        self.stopping = True
        if not self.scheduler.reports_cancelled:
            seconds = 0.0
        deadline = time.monotonic() + seconds
        while self.running:
            left = deadline - time.monotonic()
            try:
                request, result, error = self.done.get(timeout=min(0.2, left)) if left > 0 else self.done.get_nowait()
            except queue.Empty:
                if left <= 0:
                    break
                continue
            self.running.pop(request.launch_id, None)
            self.finish_launch(request, result, error)
        self.flush()

    def finish_launch(self, request: LaunchRequest, result: LaunchResult | None, error: BaseException | None) -> None:
        if result is None:  # the worker itself failed (a lost Dask worker, a bug): every task failed
            message = f"{type(error).__name__}: {error}" if error else "no result"
            now = time.time()
            results = tuple(
                TaskResult(t.key, "failed", None, now, now, problems=(message,), engine_error=True)
                for t in request.tasks
            )
            result = LaunchResult(request.launch_id, None, now, now, [], results, message)
        info = next(i for i in self.report.launch_log if i.id == request.launch_id)
        info.command, info.exit_code = result.command, result.exit_code
        info.seconds, info.message = result.ended - result.started, result.message
        node = self.graph.step(request.step)
        tasks = {t.key: t for t in self.report.tasks if t.launch == request.launch_id}
        try:
            self.record.launch(
                Launch(
                    info.id,
                    self.report.run_id,
                    request.step,
                    info.tasks,
                    request.processes,
                    result.exit_code,
                    result.started,
                    result.ended,
                    result.command,
                    result.message,
                )
            )
        except Exception:  # the index cannot be written (a full disk): the launch's reads stay on record
            for task_result in result.tasks:
                self.unaudited += self.audit_items(node, tasks[task_result.key], task_result)
            raise
        for task_result in result.tasks:
            self.finish_task(node, tasks[task_result.key], task_result)
        self.dispatch()  # dependants start before this launch's outputs are published and audited
        self.flush()
        self.events.launch(info, self.report)

    def finish_task(self, node: StepNode, task: Task, result: TaskResult) -> None:
        """Record the attempt; retry a failure (alone, with backoff) while attempts remain, else settle it.

        A failure of the engine rather than the tool (an API error, a vanished container) is retried once
        even when the step asks for no retries: it says nothing about the task.
        """
        task.result = result
        if result.status != "failed":
            self.progressed_at = time.time()
        image = self.images[task.step][0]
        try:
            self._record(node, task, result, image)
        except Exception:  # the index cannot be written (a full disk): the reads happened, keep their entries
            self.unaudited += self.audit_items(node, task, result)
            raise
        allowed = node.spec.retries + (1 if result.engine_error and task.engine_retries == 0 else 0)
        if result.stopped and not self.storage_problem:
            self.storage_problem, self.stopping = result.stopped, True
        if result.status == "failed" and task.attempt <= allowed and not self.storage_problem:
            task.engine_retries += int(result.engine_error)
            task.attempt += 1
            task.status = "pending"
            task.not_before = time.monotonic() + _BACKOFF_S * 2 ** (task.attempt - 2)
            self.pending[node.name].append(task)
            return
        self._settle_result(node, task, result)

    def _record(self, node: StepNode, task: Task, result: TaskResult, image: ImageRef | None) -> None:
        digest = image.digest if image is not None else None
        self.record.attempt(executed_attempt(self.report.run_id, task, result, self.engine.name, digest))

    def _settle_result(self, node: StepNode, task: Task, result: TaskResult) -> None:
        task.status, task.outputs, task.skipped = result.status, result.outputs, result.skipped
        self.unaudited += self.audit_items(node, task, result)
        self.in_flight.pop(task.key, None)
        self.settled(node, task)
        for follower in self.followers.pop(task.key, []):
            follower.status, follower.outputs, follower.skipped, follower.cached, follower.result = (
                task.status,
                task.outputs,
                task.skipped,
                True,
                result,
            )
            self.settled(node, follower)

    def audit_items(self, node: StepNode, task: Task, result: TaskResult) -> list[Item]:
        image = self.images[node.name][0]
        out = self.workspace.task_dir(task.key) / "out"
        return task_items(node.descriptor.name, image.digest if image else None, self.report.run_id, task, result, out)

    def flush(self) -> None:
        """Publish what settled since the last flush and record its audit entries: one append, one fsync."""
        items, self.unaudited = self.unaudited, []
        for task in self.unpublished:
            items += self.publisher.publish_task(task)
        self.unpublished = []
        if items:  # a no-op rerun touches no file: nobody is told anything
            self.record.files(items)

    def rescue_audit(self) -> None:
        """The run is ending on an error: entries not yet written go to the workspace log, or where that
        cannot be written (a full disk) to the machine log; every read of patient data stays on record."""
        items, self.unaudited = self.unaudited, []
        self.audit.rescue(items)

    # --- the loop ---------------------------------------------------------------------------------------
    def root_input(self, node: StepNode) -> str:
        while node.source.kind == "step":
            node = self.graph.step(node.source.name)
        return node.source.name

    def start(self, groups: dict[str, list[Group]]) -> None:
        self.report.expected = sum(len(groups.get(self.root_input(node), [None])) for node in self.graph.steps)
        for node in self.graph.steps:
            if node.source.kind == "none":  # a tool run without --in: one task, its files given as parameters
                self.add_task(node, node.descriptor.name, Path(), (), ())
                continue
            if node.source.kind != "input":
                continue
            for group in groups[node.source.name]:
                files = tuple(f.path for f in group.files)  # absolute already
                inputs = tuple({"name": f.name, "sha256": f.sha256, "path": f.path} for f in group.files)
                label = folder_label(group.label, self.audit.keys.pseudonym) if self.report.private else group.label
                self.add_task(node, label, group.relative_parent, files, inputs)
