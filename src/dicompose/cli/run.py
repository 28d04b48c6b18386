"""``dicompose run TARGET --in ... --out DIR``: a pipeline file, or one tool as a one-step pipeline.

Both go through the same runner (cache, packed launches, retries, records, audit log, provenance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dicompose.cli.console import ENGINE_HELP, ImageDirOption, fail
from dicompose.errors import UsageError


# Over 60 lines: a Typer command, its signature is its option table (one Annotated line per option).
def run(
    target: Annotated[str, typer.Argument(help="Pipeline file (.yaml), built-in tool name, or descriptor path.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    sources: Annotated[
        list[str] | None,
        typer.Option("--in", help="PATH, or NAME=PATH for a pipeline input (repeatable); a tool may take none."),
    ] = None,
    params: Annotated[list[str] | None, typer.Option("-p", "--param", help="ID=VALUE (repeatable, tools).")] = None,
    invocation: Annotated[Path | None, typer.Option("--invocation", help="Boutiques invocation JSON (tools).")] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help=ENGINE_HELP),
    ] = None,
    image_dir: ImageDirOption = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            help="Workspace folder (default: .dicompose beside the pipeline, or in the current folder for a tool).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="local | dask | slurm | tcp://HOST:PORT (default: local, or the configuration's)"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, max=256, help="Cores to use in all (default: all cores, or the configuration's)."
        ),
    ] = None,
    slurm: Annotated[
        list[str] | None,
        typer.Option(
            "--slurm",
            help="KEY=VALUE for --scheduler slurm, repeatable: partition=short, cores=4, jobs=2... Keys: "
            "docs/configuration.md",
        ),
    ] = None,
    push_to: Annotated[
        list[str] | None,
        typer.Option(
            "--push-to",
            help="dicom://AET@HOST:PORT, or OUTPUT=dicom://…: send the run's DICOM outputs to a PACS once it succeeded "
            "(repeatable).",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option("--report", help="Also write the run's QC report into --out/report/ (index.html) once it ended."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan: tasks, which are cached, each launch's command.")
    ] = False,
    allow_unpinned: Annotated[
        bool, typer.Option("--allow-unpinned", help="Run an image not pinned by digest (with a warning).")
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, help="Files per task at most, for files without a series (a series is never split)."
        ),
    ] = 500,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0.001, help="Seconds per task (tools).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links",
            help="Also follow symbolic links that lead outside the inputs (by default: reported, never read).",
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete outputs of earlier runs into --out that this run no longer produces (default: move them "
            "into --out/.stale/RUN/).",
        ),
    ] = False,
) -> None:
    """Run a pipeline or one tool over files and folders: each step in its own container, cached, resumable."""
    from dicompose.cli.pipeline import execute_request, run_pipeline_command
    from dicompose.config import configured, use_image_dir
    from dicompose.pipeline.preflight import check_scheduler

    use_image_dir(image_dir)
    engine = configured("run", "engine", engine, "auto")
    scheduler = configured("run", "scheduler", scheduler, "local")
    check_scheduler(scheduler, slurm or [])
    sources = sources or []
    from dicompose.cli.pipeline import parse_push_to, report_folder

    pushes = parse_push_to(push_to or [])
    if target.endswith((".yaml", ".yml")):
        if params or invocation or timeout is not None:
            fail(UsageError("-p, --invocation and --timeout are for tools; a pipeline sets them per step"))
        run_pipeline_command(
            Path(target),
            sources,
            out,
            engine=engine,
            workspace=workspace,
            scheduler=scheduler,
            workers=workers,
            allow_unpinned=allow_unpinned,
            chunk=batch_size,
            as_json=as_json,
            dry_run=dry_run,
            follow_links=follow_links,
            prune=prune,
            slurm=tuple(slurm or ()),
            push_to=pushes,
            report_to=report_folder(out) if report else None,
        )
        return
    from dicompose.descriptors.descriptor import load_descriptor
    from dicompose.descriptors.given import check_invocation_types, parse_pairs, read_invocation_file
    from dicompose.pacs.address import is_pacs_url
    from dicompose.pipeline.runner import PipelineRequest
    from dicompose.pipeline.tool_graph import INPUT_NAME, tool_graph
    from dicompose.walk import as_given

    from_pacs = bool(sources) and is_pacs_url(sources[0])
    if len(sources) > 1 or (sources and not from_pacs and "=" in sources[0] and not Path(sources[0]).exists()):
        fail(UsageError("a tool takes one --in PATH (or none: its File inputs given with -p or --invocation)"))
    raw: dict[str, Any] = read_invocation_file(invocation) if invocation else {}
    descriptor = load_descriptor(target)
    if invocation:
        check_invocation_types(descriptor, raw, invocation)
    lists = frozenset(str(i["id"]) for i in descriptor.inputs if i.get("list"))
    raw.update(parse_pairs(params or [], lists))
    graph = tool_graph(target, raw, timeout, batch=bool(sources))
    request = PipelineRequest(
        Path(target),
        {INPUT_NAME: as_given(sources[0])} if sources and not from_pacs else {},
        out,
        workspace or Path(".dicompose"),
        engine,
        scheduler,
        workers,
        allow_unpinned,
        batch_size,
        graph=graph,
        kind="tool",
        dry_run=dry_run,
        follow_links=follow_links,
        prune=prune,
        slurm=tuple(slurm or ()),
        pacs_inputs={INPUT_NAME: sources[0]} if from_pacs else {},
        push_to=pushes,
    )
    execute_request(request, graph, out, as_json=as_json, tool=True, report_to=report_folder(out) if report else None)
