"""``dicompose check`` finds every problem of a pipeline before anything runs, all at once, each with its YAML
line; ``dicompose run`` refuses on the same problems before it launches anything (issue 10, point 4).

One broken pipeline per class of problem, then one with a problem of every class at once.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from dicompose.pipeline.preflight import machine_cores
from tests.support.cli import BIN
from tests.support.components import need
from tests.support.descriptors import boutiques

GOOD_STEPS = {
    "normalize": "tool: normalize\n    with: {input: inputs.scans, min: 0, max: 100}",
    "mask": "tool: threshold\n    with: {input: steps.normalize.output, level: 50}",
}


def pipeline(tmp_path: Path, **steps: str) -> Path:
    body = "\n".join(f"  {name}:\n    {text}" for name, text in {**GOOD_STEPS, **steps}.items())
    text = f"version: 1\nname: broken\ninputs:\n  scans: dicom\nsteps:\n{body}\noutputs:\n  masks: steps.mask.output\n"
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def copier(name: str, image: str) -> dict[str, object]:
    """A tool that copies its files, in ``image`` (named by tag only: no container-hash)."""
    inputs: list[dict[str, object]] = [{"id": "input", "name": "in", "type": "File", "value-key": "[IN]", "list": True}]
    outputs: list[dict[str, object]] = [{"id": "out", "name": "out", "path-template": "*.dcm", "list": True}]
    return boutiques(name, "cp [IN] .", inputs, outputs, {"container-image": {"type": "docker", "image": image}})


def check(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "dicompose"), "check", str(path), "--engine", "local", *extra]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(
    ("step", "text", "needle", "line"),
    [
        ("normalize", "tool: normalize\n    with: {input: inputs.scans, min: 5, max: 1}", "min (5) must be <= max", 8),
        ("normalize", "tool: normalize\n    with: {input: inputs.scans, scope: volume}", "not one of", 8),
        ("normalize", "tool: normalize\n    with: {input: inputs.scans, mni: 0}", "has no input 'mni'", 8),
        ("normalize", "tool: nromalize\n    with: {input: inputs.scans}", "unknown tool", 7),
        ("mask", "tool: threshold\n    with: {input: steps.normalise.output}", "unknown step 'normalise'", 11),
        ("mask", "tool: thresh\n    with: {input: steps.normalise.output}", "unknown step 'normalise'", 11),
        ("mask", "tool: threshold\n    with: {input: steps.normalize.output, level: high}", "not a number", 11),
        (
            "normalize",
            "tool: normalize\n    with: {input: inputs.scans}\n    retries: 99",
            "less than or equal to 10",
            9,
        ),
        (
            "normalize",
            "tool: normalize\n    with: {input: inputs.scans}\n    resources: {memory: lots}",
            "a size like",
            9,
        ),
        (
            "normalize",
            "tool: normalize\n    with: {input: inputs.scans}\n    resources: {memory: 9999999999g}",
            "this machine has",
            9,
        ),
        ("normalize", "tool: normalize\n    with: {input: inputs.scans}\n    resources: {cpus: 4096}", "CPUs asked", 9),
        ("normalize", "tool: normalize\n    with: {input: steps.mask.output}", "dependency cycle", 0),
    ],
)
def test_each_class_of_problem_is_found_with_its_line(tmp_path: Path, step: str, text: str, needle: str, line: int):
    proc = check(pipeline(tmp_path, **{step: text}))
    assert proc.returncode == 2
    errors = error_lines(proc)
    assert any(needle in e for e in errors), errors
    if line:
        assert any(f"line {line}," in e and needle in e for e in errors), errors
    assert "nothing was run" in proc.stderr


def test_every_problem_is_reported_at_once(tmp_path: Path):
    path = pipeline(
        tmp_path,
        normalize="tool: normalize\n    with: {input: inputs.scans, min: 5, max: 1}\n"
        "    retries: 99\n    resources: {memory: 9999999999g, cpus: 4096}",
        mask="tool: threshold\n    with: {input: steps.normalise.output, level: high}",
    )
    path.write_text(path.read_text().replace("masks: steps.mask.output", "masks: steps.mask.outptu"))
    errors = error_lines(check(path))
    wanted = ["less than or equal to 10", "min (5) must be <= max", "CPUs asked", "this machine has", "'normalise'"]
    # a wrong reference hides neither the step's values nor the pipeline's outputs
    wanted += ["'level': 'high' is not a number", "no output 'outptu'"]
    assert all(any(w in e for e in errors) for w in wanted), errors
    assert not any("no File input is fed" in e for e in errors), errors  # the reference's problem, said once
    assert f"{len(errors)} problems: nothing was run" in check(path).stderr


def test_run_refuses_what_check_finds_before_launching_anything(tmp_path: Path):
    (tmp_path / "scans").mkdir()
    from dicompose.dicom import synthetic

    synthetic.write_ct_series(tmp_path / "scans", "check", 2, 16, 16)
    path = pipeline(
        tmp_path,
        normalize=f"tool: normalize\n    with: {{input: inputs.scans}}\n    resources: {{cpus: {machine_cores() + 1}}}",
    )
    argv = [str(BIN / "dicompose"), "run", str(path), "--in", str(tmp_path / "scans"), "--out", str(tmp_path / "out")]
    proc = subprocess.run(
        [*argv, "--engine", "local", "--workspace", str(tmp_path / "ws")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "CPUs asked" in proc.stderr and "Traceback" not in proc.stderr
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not list((tmp_path / "ws").glob("work/*/*"))  # no task was started


def test_a_missing_image_is_found_for_the_engine_asked(tmp_path: Path):
    from dicompose.engines.registry import engine_named

    info = engine_named("docker").info()
    need("docker", info.available, info.why)
    descriptor = copier("absent", "dicompose-test/never-built:1.0")
    (tmp_path / "absent.json").write_text(json.dumps(descriptor))
    path = tmp_path / "p.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            name: image
            inputs:
              scans: dicom
            steps:
              copy:
                tool: absent.json
                with: {input: inputs.scans}
            outputs:
              copied: steps.copy.out
            """
        )
    )
    proc = subprocess.run(
        [str(BIN / "dicompose"), "check", str(path), "--engine", "docker"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "line 7," in proc.stderr and "never-built:1.0 is not available" in proc.stderr
    assert check(path).returncode == 0  # the local engine needs no image


def test_an_unpinned_image_is_a_problem_unless_allowed(tmp_path: Path):
    from dicompose.engines.registry import engine_named

    info = engine_named("docker").info()
    need("docker", info.available, info.why)
    present = subprocess.run(["docker", "image", "inspect", "dicompose/normalize:0.1.0"], capture_output=True)
    need("docker", present.returncode == 0, "image dicompose/normalize:0.1.0 not built (dicompose build normalize)")
    descriptor = copier("unpinned", "dicompose/normalize:0.1.0")
    (tmp_path / "unpinned.json").write_text(json.dumps(descriptor))
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: u\ninputs:\n  scans: dicom\nsteps:\n  copy:\n    tool: unpinned.json\n"
        "    with: {input: inputs.scans}\noutputs:\n  copied: steps.copy.out\n"
    )
    argv = [str(BIN / "dicompose"), "check", str(path), "--engine", "docker"]
    refused = subprocess.run(argv, capture_output=True, text=True)
    assert refused.returncode == 2 and "pinned" in refused.stderr, refused.stderr
    assert subprocess.run([*argv, "--allow-unpinned"], capture_output=True, text=True).returncode == 0


def test_duplicate_keys_and_a_broken_structure_are_listed_one_per_line(tmp_path: Path):
    """A duplicate key does not stop the check; a file whose structure cannot be modelled lists every
    structural problem on its own line, in check and in run alike (which makes no folder)."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "version: 1\nname: d\nname: e\ninputs:\n  scans: dicom\nsteps:\n  a:\n    tool: normalize\n"
        "    with: {input: steps.b.output, min: 3, min: 4}\n  b:\n    tool: threshold\n"
        "    with: {input: steps.a.output}\n    retries: 99\noutputs:\n  o: steps.b.output\n"
    )
    errors = error_lines(check(path))
    wanted = ["line 3: duplicate key 'name'", "line 9: duplicate key 'min'", "line 13, steps.b.retries", "cycle"]
    assert all(any(w in e for e in errors) for w in wanted), errors
    path.write_text("version: 3\nname: 5\nsteps: []\n")
    for proc in (check(path), subprocess.run(
        [str(BIN / "dicompose"), "run", str(path), "--in", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )):  # fmt: skip
        errors = error_lines(proc)
        assert proc.returncode == 2 and len(errors) == 4 and "4 problems: nothing was run" in proc.stderr, proc.stderr
        assert not any("Field required" in e and "version" in e for e in errors)
    assert not (tmp_path / "out").exists()


def test_steps_are_judged_against_each_slurm_worker_job(tmp_path: Path):
    """One pool of identical worker jobs: a step asking more cores, memory or GPUs than a job has would wait
    forever for a worker; check and run say so, naming the line and the --slurm option that would give it."""
    path = pipeline(
        tmp_path,
        normalize="tool: normalize\n    with: {input: inputs.scans}\n    resources: {cpus: 3, memory: 8g, gpus: 2}",
    )
    (tmp_path / "dicompose.toml").write_text('[slurm]\ncores = 2\nmemory = "4GB"\n')
    argv = [str(BIN / "dicompose"), "check", str(path), "--engine", "local", "--scheduler", "slurm"]
    errors = error_lines(subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path))
    assert any("line 9," in e and "cpus: 3 CPUs asked; each worker job has 2" in e for e in errors), errors
    assert any("memory: 8g asked; each worker job has 3.7 GiB" in e for e in errors), errors
    assert any("gpus: 2 GPUs asked; each worker job has 0 (ask with --slurm gres=gpu:2)" in e for e in errors), errors
    given = subprocess.run(
        [*argv, "--slurm", "cores=4", "--slurm", "memory=16GB", "--slurm", "gres=gpu:2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert not [e for e in error_lines(given) if "asked" in e], given.stderr  # the command line over the file
    (tmp_path / "scans").mkdir()
    run = [str(BIN / "dicompose"), "run", str(path), "--in", str(tmp_path / "scans"), "--out", "out"]
    proc = subprocess.run(
        [*run, "--engine", "local", "--scheduler", "slurm"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2 and "GPUs asked" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("*.err"))  # refused before any sbatch
