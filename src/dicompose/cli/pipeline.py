"""``dicompose run`` (pipelines and tools alike) and ``dicompose check``: progress, then where results and logs are.

Light at import time (the CLI starts fast): the pipeline machinery is imported when a command runs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape

from dicompose.cli.console import ImageDirOption, fail, new_site_key_noted, notes_shown, plural, stderr, stdout
from dicompose.cli.run_report import document, header, print_plan, summary
from dicompose.errors import EXIT_FAILED, EXIT_OK, DicomposeError, ProblemsError, UsageError

if TYPE_CHECKING:
    from dicompose.pipeline.graph import PipelineGraph
    from dicompose.pipeline.runner import LaunchInfo, PipelineReport, PipelineRequest
    from dicompose.pipeline.tasks import Task


def parse_inputs(sources: list[str], names: list[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """(paths, PACS URLs) from ``--in NAME=PATH`` (repeatable), or a bare ``--in PATH`` when the pipeline has one
    input; PATH may be ``dicom://AET@HOST:PORT?study=UID`` (a URL is recognised before NAME=PATH: it has '=')."""
    from dicompose.pacs.address import is_pacs_url
    from dicompose.walk import as_given

    result: dict[str, Path] = {}
    urls: dict[str, str] = {}
    for source in sources:
        name, sep, path = source.partition("=")
        if is_pacs_url(source):
            if len(names) != 1:
                raise UsageError(
                    f"--in {source.split('?')[0]}: name the input (--in NAME=URL, NAME one of {', '.join(names)})"
                )
            urls[names[0]] = source
        elif sep and name in names and is_pacs_url(path):
            urls[name] = path
        elif sep and name in names:
            result[name] = as_given(path)
        elif len(names) == 1 and not (sep and name not in names and not Path(source).exists()):
            result[names[0]] = as_given(source)
        else:
            raise UsageError(f"--in {source!r}: expected NAME=PATH with NAME one of {', '.join(names)}")
    return result, urls


def parse_push_to(values: list[str]) -> tuple[tuple[str | None, str], ...]:
    """``--push-to URL`` (every DICOM output) or ``--push-to OUTPUT=URL`` (one output), repeatable."""
    if not values:
        return ()
    from dicompose.pacs.address import is_pacs_url
    from dicompose.pacs.endpoints import name_of

    parsed: list[tuple[str | None, str]] = []
    for value in values:
        output, sep, url = value.partition("=")
        if is_pacs_url(value):
            parsed.append((None, value))
        elif sep and is_pacs_url(url):
            parsed.append((output, url))
        else:
            raise UsageError(f"--push-to {value!r}: expected dicom://AET@HOST:PORT or OUTPUT=dicom://AET@HOST:PORT")
        name_of(parsed[-1][1])
    return tuple(parsed)


def refuse(pipeline: Path, problems: list[str]) -> NoReturn:
    """Every problem on its own line, named by the file, then how many: nothing runs (exit 2)."""
    for problem in problems:
        stderr.print(f"[red]error:[/] {escape(str(pipeline))}: {escape(problem)}")
    stderr.print(f"{len(problems)} {plural(len(problems), 'problem')}: nothing was run")
    raise typer.Exit(2)


def check(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="auto | docker | apptainer | charliecloud | local: whose images to look up (default: auto, or the "
            "configuration's)",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="local | dask | slurm | tcp://HOST:PORT: whose resources to judge (default: local, or the "
            "configuration's)",
        ),
    ] = None,
    allow_unpinned: Annotated[
        bool, typer.Option("--allow-unpinned", help="Accept images not pinned by digest, as run does with it.")
    ] = False,
    image_dir: ImageDirOption = None,
    slurm: Annotated[
        list[str] | None,
        typer.Option("--slurm", help="KEY=VALUE for --scheduler slurm, as run takes them: the jobs to judge against."),
    ] = None,
) -> None:
    """Find every problem of a pipeline before anything runs.

    All at once, each with its line: types, references, cycles, parameters, resources, missing images."""
    from dicompose.config import configured, use_image_dir
    from dicompose.pipeline.preflight import check_scheduler

    use_image_dir(image_dir)
    engine = configured("run", "engine", engine, "auto")
    scheduler = configured("run", "scheduler", scheduler, "local")
    try:
        check_scheduler(scheduler, slurm or [])
    except UsageError as exc:
        fail(exc)
    from dicompose.engines.resolve import resolve_engine
    from dicompose.pipeline.graph import build_graph
    from dicompose.pipeline.images import missing_image, step_images
    from dicompose.pipeline.preflight import image_problems, resource_problems, scheduler_problems

    problems: list[str] = []
    try:
        graph = build_graph(pipeline, collect=problems)
    except ProblemsError as exc:  # the file's structure: nothing more can be checked
        refuse(pipeline, exc.problems)
    problems += scheduler_problems(scheduler, slurm or ())
    if scheduler == "slurm" and not problems:  # sbatch --test-only accepted them: say what they are
        from dicompose.config import load_config
        from dicompose.schedulers.slurm import describe, options_from

        jobs = describe(options_from(slurm or [], load_config().get("slurm", {})))
        stdout.print(f"scheduler: {jobs}; sbatch --test-only accepts its jobs", highlight=False)
    problems += resource_problems(graph, scheduler, slurm or ())
    with notes_shown():  # an image verified for the first time takes a while
        try:
            resolution = resolve_engine(
                engine, lambda engine: missing_image(lambda: step_images(graph.steps, engine, allow_unpinned))
            )
        except UsageError as exc:
            problems.append(str(exc))
        else:
            problems += image_problems(graph, resolution.engine, allow_unpinned=allow_unpinned)
            stdout.print(f"engine: {resolution.engine.name} ({escape(resolution.why)})")
    if problems:
        refuse(pipeline, problems)
    order = " → ".join(node.name for node in graph.steps)
    inputs = ", ".join(f"{name} ({kind})" for name, kind in graph.spec.inputs.items())
    count = len(graph.steps)
    stdout.print(f"{pipeline}: valid ({count} {plural(count, 'step')}: {order}; inputs: {inputs})")
    for node in graph.steps:  # what each step's files come from, where the run supplies them
        for input_id, name in node.file_refs.items():
            stdout.print(f"  {node.name}: {input_id} ← --in {name}=PATH (one file, mounted read-only)")
        key_input = node.descriptor.custom.get("site-key")
        if isinstance(key_input, str) and key_input not in node.params and key_input not in node.file_refs:
            stdout.print(
                f"  {node.name}: {key_input} not given: the site key ($DICOMPOSE_HOME/deid-keys/deid.key, created if "
                "missing) is used, as by the host tool"
            )


#: Where ``dicompose run --report`` writes the QC report, below --out (beside the outputs' folders).
REPORT_FOLDER = "report"


def report_folder(out: Path) -> Path:
    return out / REPORT_FOLDER


def execute_request(
    request: PipelineRequest,
    graph: PipelineGraph,
    out: Path,
    *,
    as_json: bool,
    tool: bool,
    report_to: Path | None = None,
) -> None:
    """Run (or plan) a request, print progress and the outcome, write its QC report when asked, and exit with
    the run's code (a report that cannot be written fails the command, after the run's own summary)."""
    if report_to is not None and REPORT_FOLDER in graph.spec.outputs and not request.dry_run:
        fail(
            UsageError(
                f"--report writes {report_to}, which is where this pipeline's output {REPORT_FOLDER!r} goes: "
                f"run without --report and use dicompose report RUN --out DIR"
            )
        )
    from dicompose.config import default_workers, load_settings
    from dicompose.pipeline.runner import run_pipeline

    cores = default_workers()
    workers = request.workers or load_settings().workers
    if workers > cores and request.scheduler in ("local", "dask") and not as_json:
        said = (
            f"--workers {workers}"
            if request.workers
            else f"DICOMPOSE_WORKERS={workers}"
            if os.environ.get("DICOMPOSE_WORKERS")
            else f"the configuration's workers = {workers}"
        )
        stderr.print(
            f"[yellow]warning:[/] {said} is more than the {cores} cores here: launches will share them (slower, "
            "not faster)"
        )
    progress = _Progress(enabled=not as_json and not request.dry_run)
    with progress, new_site_key_noted(), notes_shown(not as_json):
        report = run_pipeline(request, events=progress)
    if request.dry_run:
        if as_json:
            print(json.dumps(document(report, graph, tool), indent=2))
        else:
            print_plan(report, graph)
        raise typer.Exit(EXIT_OK)
    doc = document(report, graph, tool) if as_json else {}
    if not as_json:
        summary(report, graph, out)
        if report_to is None:
            _say_if_report_is_older(out, report.run_id)
    reported = _write_report(report, report_to, workers, doc, as_json) if report_to else True
    if as_json:
        print(json.dumps(doc, indent=2))
    delivered = not report.push_problem and not any(t.refused for t in report.transfers)
    raise typer.Exit(EXIT_OK if report.ok and delivered and reported else EXIT_FAILED)


def _say_if_report_is_older(out: Path, run_id: str) -> None:
    """``--out/report`` made by an earlier run's ``--report`` no longer shows this one: say so, once."""
    from dicompose.report import MARKER

    try:
        marker = (report_folder(out) / MARKER).read_text()
    except OSError:
        return
    if run_id not in marker:
        stderr.print(
            f"note: {report_folder(out)} is the QC report of an earlier run; refresh it with --report",
            highlight=False,
        )


def _write_report(ended: PipelineReport, folder: Path, workers: int, doc: dict[str, Any], as_json: bool) -> bool:
    """The QC report of the run just ended, into ``folder``; False (said in one line) when it cannot be."""
    run_id, workspace = ended.run_id, ended.workspace
    from dicompose.cli.records import _index
    from dicompose.cli.report import say_written, summary_document
    from dicompose.report.build import write_report

    try:
        index = _index(workspace)
        run = index.run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} in {workspace}")
        written = write_report(index, run, workspace, folder, workers=workers)
    except KeyboardInterrupt:
        from dicompose.cli.report import interrupted

        interrupted(run_id, workspace)
    except DicomposeError as exc:
        stderr.print(f"[red]error:[/] the report of run {run_id} could not be written: {escape(str(exc))}")
        if as_json:
            doc["report"] = {"error": str(exc)}
        return False
    if as_json:
        doc["report"] = summary_document(written)
    else:
        say_written(written)
    return True


def run_pipeline_command(
    pipeline: Path,
    sources: list[str],
    out: Path,
    *,
    engine: str,
    workspace: Path | None,
    scheduler: str,
    workers: int | None,
    allow_unpinned: bool,
    chunk: int,
    as_json: bool,
    dry_run: bool = False,
    follow_links: bool = False,
    prune: bool = False,
    engine_why: str | None = None,
    slurm: tuple[str, ...] = (),
    push_to: tuple[tuple[str | None, str], ...] = (),
    report_to: Path | None = None,
) -> None:
    from dicompose.pipeline.graph import build_graph
    from dicompose.pipeline.preflight import resource_problems
    from dicompose.pipeline.runner import PipelineRequest

    problems: list[str] = []
    try:
        graph = build_graph(pipeline, collect=problems)
    except ProblemsError as exc:
        refuse(pipeline, exc.problems)
    problems += resource_problems(graph, scheduler, slurm)  # as check judges them, before any folder is made
    if problems:
        refuse(pipeline, problems)
    inputs, urls = parse_inputs(sources, list(graph.spec.inputs))
    request = PipelineRequest(
        pipeline,
        inputs,
        out,
        workspace,
        engine,
        scheduler,
        workers,
        allow_unpinned,
        chunk,
        graph=graph,
        dry_run=dry_run,
        follow_links=follow_links,
        prune=prune,
        engine_why=engine_why,
        slurm=slurm,
        pacs_inputs=urls,
        push_to=push_to,
    )
    execute_request(request, graph, out, as_json=as_json, tool=False, report_to=report_to)


class _Progress:
    """Runner events → a live bar with N of M tasks and an ETA on a terminal; one line per launch otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.terminal = stderr.is_terminal
        self.began = time.monotonic()
        self.bar: Any = None
        self.row: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled and self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (TextColumn("tasks"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            self.bar = Progress(*columns, console=stderr, transient=True)
            self.bar.start()
            self.row = self.bar.add_task("tasks", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def started(self, report: PipelineReport) -> None:
        if self.enabled:
            header(report)

    def task(self, task: Task) -> None:
        if self.bar is not None:
            self.bar.advance(self.row)

    def launch(self, launch: LaunchInfo, report: PipelineReport) -> None:
        if not self.enabled:
            return
        total = max(report.expected, len(report.tasks))
        if self.bar is not None:
            self.bar.update(self.row, total=total, completed=report.finished())
            return
        from dicompose.pipeline.model import FINISHED

        verdict = {0: "ok", None: "did not finish"}.get(launch.exit_code, f"exit {launch.exit_code}")
        good = sum(1 for t in report.tasks if t.status in FINISHED)  # as the run's summary counts them
        failed = sum(1 for t in report.tasks if t.status == "failed")
        blocked = sum(1 for t in report.tasks if t.status == "blocked")  # behind a failed task: never ran
        bad = (f", {failed} failed" if failed else "") + (f", {blocked} blocked" if blocked else "")
        stderr.print(
            f"[{time.monotonic() - self.began:6.1f} s] {launch.step}: launch {launch.id.rsplit('-', 1)[-1]} "
            f"({len(launch.tasks)} {plural(len(launch.tasks), 'task')}, {launch.processes} proc, "
            f"{launch.seconds:.1f} s, {verdict}); "
            f"{good} of {total} {plural(total, 'task')} finished{bad}",
            markup=False,
        )


def demo_engine(requested: str) -> tuple[str, str]:
    """For the demo: ``auto`` means a container engine only if it has the demo's images, else the local
    engine (and why), as for any run. Another choice is the run's to resolve (why: "")."""
    if requested != "auto":  # resolved by the run, whose sentence names what the engine does not enforce
        return requested, ""
    from dicompose.pipeline.graph import build_graph
    from dicompose.pipeline.images import choose_engine, step_images
    from dicompose.tools.samples import demo_pipeline

    steps = build_graph(demo_pipeline()).steps
    resolution, _images = choose_engine("auto", lambda engine: step_images(steps, engine, False))
    return resolution.engine.name, resolution.why
