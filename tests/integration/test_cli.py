"""The two command lines, run as a user runs them (real processes, real files, exit codes, one-line errors)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicompose.dicom import synthetic
from tests.support.cli import BIN
from tests.support.descriptors import snippet_tool
from tests.support.dicom_checks import independent_modality_values
from tests.support.links import link_farm


def run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, cwd=cwd, timeout=300, check=False, env=env
    )


def tool_or_run(how: str, source: Path, tmp_path: Path, *params: str) -> list[str]:
    """The same normalize over ``source`` as a host tool or as ``dicompose run`` (local engine) into tmp_path/out."""
    out = str(tmp_path / "out")
    if how == "tool":
        return ["dicompose", "normalize", str(source), "--out", out]
    argv = ["dicompose", "run", "normalize", "--in", str(source), "--out", out, "--engine", "local"]
    return [*argv, "--workspace", str(tmp_path / "ws"), *[x for p in params for x in ("-p", p)]]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr


@pytest.fixture
def ct(tmp_path: Path) -> Path:
    return synthetic.save(synthetic.ct_slice("cli", 0, 64, 64), tmp_path / "scan.dcm")


def test_paper_cli_writes_stem_normalized_beside_the_file(ct: Path):
    proc = run("normalize-scan", str(ct), "0", "100")
    assert proc.returncode == 0, proc.stderr
    out = ct.with_name("scan-normalized.dcm")
    values = independent_modality_values(pydicom.dcmread(out))
    assert (values.min(), values.max()) == (0, 100)
    assert str(out) in proc.stdout


def test_paper_cli_out_folder_and_negative_minimum(ct: Path, tmp_path: Path):
    proc = run("normalize-scan", str(ct), "-1000", "1000", "-o", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    values = independent_modality_values(pydicom.dcmread(tmp_path / "o" / "scan-normalized.dcm"))
    assert (values.min(), values.max()) == (-1000, 1000)
    assert not ct.with_name("scan-normalized.dcm").exists()


@pytest.mark.parametrize(
    ("low", "high", "needle"), [("100", "0", "must not be greater"), ("zero", "100", "is not a number")]
)
def test_usage_errors_exit_2_with_one_line(ct: Path, low: str, high: str, needle: str):
    proc = run("normalize-scan", str(ct), low, high)
    assert_one_line_error(proc, 2, needle)
    assert not ct.with_name("scan-normalized.dcm").exists()


def test_corrupt_file_exits_1_names_the_file_and_leaves_nothing(tmp_path: Path, ct: Path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(ct.read_bytes()[:-100])
    proc = run("normalize-scan", str(broken), "0", "100")
    assert_one_line_error(proc, 1, f"{broken}: file truncated: element (7FE0,0010) declares")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.dcm", "scan.dcm"]


def test_missing_file_exits_1(tmp_path: Path):
    proc = run("normalize-scan", str(tmp_path / "nope.dcm"), "0", "100")
    assert_one_line_error(proc, 1, "nope.dcm: file not found")


def test_batch_processes_good_files_despite_bad_ones(tmp_path: Path):
    scans = tmp_path / "scans"
    synthetic.write_ct_series(scans / "a", "batch", 3, 32, 32)
    (scans / "notes.txt").write_text("not dicom")
    shutil.copy(str(get_testdata_file("examples_rgb_color.dcm")), scans / "rgb.dcm")
    broken = scans / "b" / "broken.dcm"
    broken.parent.mkdir()
    broken.write_bytes((scans / "a" / "slice_0000.dcm").read_bytes()[:-50])
    proc = run("dicompose", "normalize", str(scans), "--min", "0", "--max", "100", "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "3 processed, 2 skipped, 1 failed" in proc.stdout
    assert f"{broken}: file truncated: element (7FE0,0010) declares" in proc.stderr
    assert "notes.txt: not a DICOM file" in proc.stderr
    assert "colour images are not supported" in proc.stderr
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert outputs == ["a", *(f"a/slice_{i:04d}-normalized.dcm" for i in range(3))]


def test_batch_json_report_and_parallel_workers(tmp_path: Path):
    synthetic.write_ct_series(tmp_path / "in", "json", 6, 32, 32)
    proc = run("dicompose", "normalize", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "-j", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema"] == "dicompose.normalize/1"
    assert report["counts"] == {"processed": 6, "skipped": 0, "failed": 0}
    for entry in report["files"]:
        values = independent_modality_values(pydicom.dcmread(entry["output"]))
        assert (values.min(), values.max()) == (0, 100)


def test_batch_refuses_output_inside_input(tmp_path: Path):
    synthetic.write_ct_series(tmp_path / "in", "inside", 1, 8, 8)
    proc = run("dicompose", "normalize", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "out"))
    assert_one_line_error(proc, 2, "is inside input folder")


def test_series_scope_from_the_cli(tmp_path: Path):
    for index, top in enumerate((3000, 3500, 4000)):  # one series, each slice with another maximum
        ds = synthetic.ct_slice("scope", index, 32, 32)
        stored = np.frombuffer(ds.PixelData, "<i2").copy()
        stored[0] = top
        ds.PixelData = stored.tobytes()
        ds.BitsStored, ds.HighBit = 16, 15
        synthetic.save(ds, tmp_path / "in" / f"{index}.dcm")
    proc = run("dicompose", "normalize", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--scope", "series")
    assert proc.returncode == 0, proc.stderr
    maxima = [independent_modality_values(pydicom.dcmread(p)).max() for p in sorted((tmp_path / "out").glob("*.dcm"))]
    assert max(maxima) == 100 and min(maxima) < 100  # one range for the volume, not per slice


def test_version_and_help():
    from dicompose import __version__

    assert run("dicompose", "--version").stdout.strip() == f"dicompose {__version__}"
    assert "normalize" in run("dicompose", "--help").stdout
    assert "MIN" in run("normalize-scan", "--help").stdout


def test_python_dash_m_works(tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "dicompose", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("dicompose ")


def test_outputs_are_identical_across_worker_counts(tmp_path: Path):
    synthetic.write_ct_series(tmp_path / "in", "workers", 4, 32, 32)
    for workers in ("1", "2"):
        proc = run("dicompose", "normalize", str(tmp_path / "in"), "--out", str(tmp_path / workers), "-j", workers)
        assert proc.returncode == 0, proc.stderr
    for one in (tmp_path / "1").glob("*.dcm"):
        assert one.read_bytes() == (tmp_path / "2" / one.name).read_bytes()
    assert np.all(pydicom.dcmread(next((tmp_path / "1").glob("*.dcm"))).pixel_array >= 0)


def test_demo_runs_the_two_step_pipeline_and_reruns_from_cache(tmp_path: Path):
    import os

    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    proc = run("dicompose", "demo", "--out", str(tmp_path / "demo"), "--engine", "local", env=env)
    assert proc.returncode == 0, proc.stderr
    results = tmp_path / "demo" / "results"
    normalized = sorted((results / "normalized").glob("*.dcm"))
    assert [p.name for p in normalized] == [f"ct_0{i}-normalized.dcm" for i in (1, 2, 3)] + [
        f"mr_0{i}-normalized.dcm" for i in (1, 2)
    ]
    for prefix in ("ct", "mr"):  # series scope: one range per series
        values = [independent_modality_values(pydicom.dcmread(p)) for p in normalized if p.name.startswith(prefix)]
        assert min(v.min() for v in values) == 0 and max(v.max() for v in values) == 100
    masks = sorted((results / "masks").glob("*.dcm"))
    assert len(masks) == 5
    for mask, source in zip(masks, normalized, strict=True):
        expected = (independent_modality_values(pydicom.dcmread(source)) >= 50).astype(float)
        np.testing.assert_array_equal(independent_modality_values(pydicom.dcmread(mask)), expected)
    assert str(results.resolve()) in proc.stdout and "dicompose show" in proc.stdout
    again = run("dicompose", "demo", "--out", str(tmp_path / "demo"), "--engine", "local", env=env)
    assert again.returncode == 0 and "0 launches" in again.stdout
    # the run's own audit log has the steps' reads and writes; the steps did not log again on the machine
    workspace_log = (tmp_path / "demo" / ".dicompose" / "audit" / "audit.jsonl").read_text()
    steps = [line for line in workspace_log.splitlines() if '"tool":"report"' not in line]
    assert sum('"action":"read"' in line for line in steps) == 10
    assert sum('"action":"write"' in line for line in steps) == 10
    assert (tmp_path / "demo" / "report" / "index.html").is_file()  # the demo's QC report, made on each run
    assert not (tmp_path / "home" / "audit" / "audit.jsonl").exists()


def test_tool_validate_reports_paths_and_exit_codes(tmp_path: Path):
    good = run("dicompose", "tool", "validate", "normalize")
    assert good.returncode == 0 and "valid" in good.stdout
    doc = json.loads((Path(__file__).parents[2] / "src/dicompose/descriptors/builtin/normalize.json").read_text())
    doc["inputs"][1]["minimum"], doc["inputs"][1]["maximum"] = 5, 1
    doc["inputs"][0]["type"] = "Folder"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    proc = run("dicompose", "tool", "validate", str(bad), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["valid"] is False and any(p["path"] == "$.inputs[0].type" for p in report["problems"])
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert_one_line_error(run("dicompose", "tool", "validate", str(broken)), 2, "not valid JSON")


def test_run_with_the_local_engine_and_usage_errors(tmp_path: Path):
    synthetic.write_ct_series(tmp_path / "in", "run", 2, 16, 16)
    proc = run(
        "dicompose",
        "run",
        "normalize",
        "--in",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
        "--engine",
        "local",
        "-p",
        "min=-1",
        "-p",
        "max=1",
        "--json",
        "--workspace",
        str(tmp_path / "ws"),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema"] == "dicompose.run/2" and report["engine"]["name"] == "local"
    assert [len(t["outputs"]) for t in report["tasks"]] == [2] and report["tasks"][0]["status"] == "ok"
    assert [launch["tasks"] for launch in report["launch_log"]] == [[report["tasks"][0]["key"]]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "slice_0000-normalized.dcm",
        "slice_0001-normalized.dcm",
    ]
    audit = run("dicompose", "audit", "show", "--workspace", str(tmp_path / "ws"), "--json")
    actions = [e["action"] for e in json.loads(audit.stdout)]
    assert actions == ["read", "read", "execute", "write", "write", "export", "export"]
    assert run("dicompose", "audit", "verify", "--workspace", str(tmp_path / "ws")).returncode == 0
    runs = json.loads(run("dicompose", "runs", "--workspace", str(tmp_path / "ws"), "--json").stdout)
    assert [(r["kind"], r["status"], r["id"]) for r in runs] == [("tool", "ok", report["run"])]
    for args, needle in (
        (["-p", "min=abc"], "'abc' is not a number"),
        (["-p", "colour=red"], "unknown input(s) colour"),
        (["-p", "scope=volume"], "'volume' is not one of"),
        (["-p", "input=/etc"], "comes from --in"),
        (["--engine", "podman"], "unknown engine"),
    ):
        proc = run(
            "dicompose",
            "run",
            "normalize",
            "--in",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "o2"),
            "--workspace",
            str(tmp_path / "ws2"),
            *args,
        )
        assert_one_line_error(proc, 2, needle)


def test_host_commands_write_the_machine_audit_log(tmp_path: Path):
    import os

    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    synthetic.write_ct_series(tmp_path / "in", "audit", 2, 16, 16)
    (tmp_path / "in" / "bad.dcm").write_bytes((tmp_path / "in" / "slice_0000.dcm").read_bytes()[:-40])
    proc = subprocess.run(
        [str(BIN / "dicompose"), "normalize", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "-j", "2"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1
    shown = subprocess.run(
        [str(BIN / "dicompose"), "audit", "show", "--workspace", str(tmp_path / "home"), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    entries = json.loads(shown.stdout)
    assert sorted((e["action"], e["outcome"]) for e in entries) == [
        ("read", "failed"),
        ("read", "ok"),
        ("read", "ok"),
        ("write", "ok"),
        ("write", "ok"),
    ]
    assert all(e["tool"] == "normalize" for e in entries)
    assert "SYNTH-0001" not in shown.stdout and "PHANTOM" not in shown.stdout
    verified = subprocess.run(
        [str(BIN / "dicompose"), "audit", "verify", "--workspace", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert verified.returncode == 0 and "2 entries" not in verified.stdout


def test_two_tasks_writing_one_output_name_is_a_reported_conflict(tmp_path: Path):
    """Two series in one folder are two tasks; a tool naming its output alike for both must not lose one."""
    folder = tmp_path / "in"
    for number in range(2):
        path = synthetic.write_ct_series(folder, f"conflict{number}", 1, 8, 8)[0]
        path.rename(folder / f"series{number}.dcm")
    code = "import sys; open('summary.txt', 'w').write(' '.join(sorted(sys.argv[1:])))"
    tool = snippet_tool(tmp_path / "summary.json", "summary", code, "summary.txt", "one summary.txt per task")
    proc = run(
        "dicompose", "run", str(tool), "--in", str(folder), "--out", str(tmp_path / "out"),
        "--engine", "local", "--workspace", str(tmp_path / "ws"),
    )  # fmt: skip
    assert proc.returncode == 1 and "conflict:" in proc.stderr and "written by both" in proc.stderr
    assert (tmp_path / "out" / "summary.txt").read_text().startswith("/")  # the first task's, whole


def test_dry_run_prints_the_plan_of_a_pipeline_and_runs_nothing(tmp_path: Path):
    """Tasks, which are cached, and the exact command of each launch; nothing written to --out."""
    for number in range(3):
        synthetic.write_ct_series(tmp_path / "scans" / f"s{number}", f"plan{number}", 2, 8, 8)
    demo = Path(__file__).parents[2] / "src" / "dicompose" / "pipelines" / "demo.yaml"
    argv = ["run", str(demo), "--in", str(tmp_path / "scans"), "--out", str(tmp_path / "out")]
    argv += ["--engine", "local", "--workspace", str(tmp_path / "ws"), "--workers", "2"]
    plan = run("dicompose", *argv, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert any(line.startswith("normalize: 3 tasks ready (0 cached, 3 to run)") for line in lines)
    assert any("waits for normalize" in line for line in lines)
    commands = [line.strip() for line in lines if "--manifest" in line]
    assert len(commands) == 2 and all(c.startswith(str(BIN / "dicompose") + " normalize --manifest") for c in commands)
    assert not (tmp_path / "out").exists()
    assert run("dicompose", *argv).returncode == 0
    cached = json.loads(run("dicompose", *argv, "--dry-run", "--json").stdout)
    assert cached["dry_run"] and cached["launches"] == 0 and all(t["cached"] for t in cached["tasks"])
    assert len(cached["tasks"]) == 6


def _non_image_dicom(path: Path) -> Path:
    """A valid DICOM object without pixels (a Basic Text SR header): found, recognised, and skipped."""
    ds = synthetic._base("1.2.840.10008.5.1.4.1.1.88.11", "SR", "report", 1)
    for keyword in ("Rows", "Columns", "PixelData"):
        if keyword in ds:
            delattr(ds, keyword)
    return synthetic.save(ds, path)


@pytest.mark.parametrize("tool", ["normalize", "threshold", "deidentify"])
def test_no_dicom_file_at_all_is_a_usage_error_but_all_skipped_is_success(tool: str, tmp_path: Path):
    empty, text_only, reports = tmp_path / "empty", tmp_path / "text", tmp_path / "reports"
    empty.mkdir()
    text_only.mkdir()
    (text_only / "notes.txt").write_text("not an image")
    reports.mkdir()
    _non_image_dicom(reports / "report.dcm")
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    for folder in (empty, text_only):
        proc = run("dicompose", tool, str(folder), "--out", str(tmp_path / "out"), env=env)
        assert proc.returncode == 2, proc.stderr
        assert f"no DICOM files found in {folder}" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("dicompose", tool, str(reports), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr
    if tool == "deidentify":  # any DICOM object can be de-identified, reports included
        assert "1 processed" in proc.stdout
        return
    assert "1 skipped" in proc.stdout and "report.dcm" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm"))


def test_a_range_too_wide_to_compute_is_a_usage_error(ct: Path, tmp_path: Path):
    proc = run("dicompose", "normalize", str(ct), "--min", "-1e308", "--max", "1e308", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, 2, "too large")
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


@pytest.mark.parametrize("inside", ["IN", "IN/out", "IN/deeper/out"])
@pytest.mark.parametrize("target", ["normalize", "pipeline"])
def test_run_refuses_an_output_folder_inside_an_input_folder(ct: Path, tmp_path: Path, inside: str, target: str):
    scans = ct.parent / "IN"
    scans.mkdir()
    shutil.copy(ct, scans / "scan.dcm")
    out = tmp_path / inside
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if target == "normalize":
        argv = ["dicompose", "run", "normalize", "--in", str(scans)]
    else:
        demo = Path(__file__).resolve().parents[2] / "src" / "dicompose" / "pipelines" / "demo.yaml"
        argv = ["dicompose", "run", str(demo), "--in", f"scans={scans}"]
    argv += ["--out", str(out), "--engine", "local", "--workspace", str(tmp_path / "ws")]
    proc = run(*argv, env={**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")})
    assert_one_line_error(proc, 2, "is inside input folder")
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "home"))
    assert after == before  # no output folder, no workspace


@pytest.mark.parametrize(
    ("umask", "input_mode", "expected"), [(0o022, 0o644, 0o644), (0o077, 0o644, 0o600), (0o022, 0o600, 0o600)]
)
def test_outputs_follow_the_umask_and_are_never_more_open_than_their_input(
    tmp_path: Path, ct: Path, umask: int, input_mode: int, expected: int
):
    scans = tmp_path / "scans"
    scans.mkdir()
    source = scans / "scan.dcm"
    shutil.copy(ct, source)
    source.chmod(input_mode)
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}

    def with_umask() -> None:
        os.umask(umask)

    for argv in (
        ["dicompose", "normalize", str(scans), "--out", str(tmp_path / "tool")],
        ["dicompose", "run", "normalize", "--in", str(scans), "--out", str(tmp_path / "run"), "--engine", "local",
         "--workspace", str(tmp_path / "ws")],
    ):  # fmt: skip
        proc = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, env=env, preexec_fn=with_umask, check=False
        )
        assert proc.returncode == 0, proc.stderr
    outputs = [*(tmp_path / "tool").rglob("*.dcm"), *(tmp_path / "run").rglob("*.dcm")]
    assert len(outputs) == 2
    for output in outputs:
        assert output.stat().st_mode & 0o077 == expected & 0o077, (oct(output.stat().st_mode), output)
    assert (tmp_path / "ws").stat().st_mode & 0o777 == 0o700  # the workspace holds patient data: private


def _same_uid_pair(folder: Path) -> tuple[Path, Path, Path]:
    """a.dcm and b.dcm: one SOP Instance UID, different pixels; c.dcm: an ordinary other slice."""
    folder.mkdir()
    a = synthetic.save(synthetic.ct_slice("dup", 0, 16, 16), folder / "a.dcm")
    other = synthetic.ct_slice("dup", 1, 16, 16)
    other.SOPInstanceUID = pydicom.dcmread(a).SOPInstanceUID
    b = synthetic.save(other, folder / "b.dcm")
    c = synthetic.save(synthetic.ct_slice("dup", 2, 16, 16), folder / "c.dcm")
    return a, b, c


@pytest.mark.parametrize("how", ["tool", "run"])
def test_two_inputs_with_one_sop_instance_uid_are_refused_as_a_pair(tmp_path: Path, how: str):
    a, b, c = _same_uid_pair(tmp_path / "scans")
    assert c.exists()
    out = tmp_path / "out"
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    if how == "tool":
        argv = ["dicompose", "normalize", str(tmp_path / "scans"), "--out", str(out)]
    else:
        argv = ["dicompose", "run", "normalize", "--in", str(tmp_path / "scans"), "--out", str(out),
                "--engine", "local", "--workspace", str(tmp_path / "ws")]  # fmt: skip
    proc = run(*argv, env=env)
    assert proc.returncode == 1, proc.stderr
    for refused, partner in ((a, b), (b, a)):
        line = next(ln for ln in proc.stderr.splitlines() if f"{refused}: same SOP Instance UID" in ln)
        assert str(partner) in line
    written = sorted(p.name for p in out.rglob("*.dcm"))
    assert written == ["c-normalized.dcm"]


def test_byte_identical_copies_are_one_object_and_both_processed(tmp_path: Path):
    scans = tmp_path / "scans"
    scans.mkdir()
    first = synthetic.save(synthetic.ct_slice("copy", 0, 16, 16), scans / "first.dcm")
    shutil.copy(first, scans / "copy.dcm")
    proc = run("dicompose", "normalize", str(scans), "--out", str(tmp_path / "out"),
               env={**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2


def _study_with_non_images(folder: Path) -> dict[str, str]:
    """A CT series beside objects no tool handles (SR, colour, a bare (non-Part-10) RT structure set, a text file);
    returns file name → the reason every path gives for skipping it."""
    folder.mkdir(parents=True)
    synthetic.write_ct_series(folder, "study", 2, 16, 16)
    skipped = {
        "test-SR.dcm": "not an image: no pixel data (object type SR)",
        "SC_rgb.dcm": "colour images are not supported",
        "rtstruct.dcm": "not an image: no pixel data (object type RTSTRUCT)",  # DICOM without Part 10 header
    }
    for name in skipped:
        shutil.copy(get_testdata_file(name), folder / name)
    (folder / "notes.txt").write_text("not DICOM\n")
    return {**skipped, "notes.txt": "not a DICOM file"}


@pytest.mark.parametrize("how", ["tool", "run"])
def test_objects_no_tool_handles_are_skipped_alike_everywhere_and_cached_as_skipped(tmp_path: Path, how: str):
    """Issue 9.11: the same study folder through the tool and through a pipeline: skipped (one line each, same
    reason), exit 0, and a rerun of the pipeline is a no-op that still reports them."""
    reasons = _study_with_non_images(tmp_path / "scans" / "study")
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    if how == "tool":
        argv = ["dicompose", "normalize", str(tmp_path / "scans"), "--out", str(tmp_path / "out")]
    else:
        argv = ["dicompose", "run", "normalize", "--in", str(tmp_path / "scans"), "--out", str(tmp_path / "out"),
                "--engine", "local", "--workspace", str(tmp_path / "ws"), "-p", "max=10"]  # fmt: skip
    for attempt in range(2 if how == "run" else 1):
        proc = run(*argv, env=env)
        assert proc.returncode == 0, proc.stderr
        for name, reason in reasons.items():
            assert any(name in ln and reason in ln for ln in proc.stderr.splitlines() if "skipped" in ln), (
                name,
                proc.stderr,
            )
        if how == "run":
            assert "0 launches" in proc.stdout if attempt == 1 else "3 skipped" in proc.stdout, proc.stdout
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.dcm")) == [
        "slice_0000-normalized.dcm",
        "slice_0001-normalized.dcm",
    ]
    if how == "run":
        proc = run(*argv, "--json", env=env)
        statuses = sorted(t["status"] for t in json.loads(proc.stdout)["tasks"])
        assert statuses == ["ok", "skipped", "skipped", "skipped"]
        skipped = [line for t in json.loads(proc.stdout)["tasks"] for line in t["skipped"]]
        assert len(skipped) == 3 and all("SR" in s or "colour" in s or "RTSTRUCT" in s for s in skipped)


def test_the_tools_follow_links_into_their_inputs_only(tmp_path: Path):
    """Issue 9.12, host tools: the same rule as dicompose run (tests/unit/test_walk.py, test_docker.py)."""
    source = link_farm(tmp_path)
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    proc = run("dicompose", "normalize", str(source), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.dcm")) == ["ct_01-normalized.dcm", "ct_02-normalized.dcm"]
    for name in ("ct_03.dcm", "shadow.dcm"):
        assert any(name in ln and "outside the inputs" in ln for ln in proc.stderr.splitlines()), proc.stderr
    proc = run("dicompose", "normalize", str(source), "--out", str(tmp_path / "all"), "--follow-links", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "all").rglob("*.dcm"))) == 3


def test_outputs_of_deleted_inputs_are_moved_aside_and_nothing_else_is_touched(tmp_path: Path):
    """Issue 9.7: published outputs match the run. The outputs of a deleted input go to --out/.stale/RUN/
    (one line); another batch's outputs in the same --out, the user's own files and an output the user
    changed since are left alone; --prune deletes instead."""
    for series in "abc":
        synthetic.write_ct_series(tmp_path / "in" / series, series, 2, 16, 16)
    synthetic.write_ct_series(tmp_path / "other", "other", 2, 16, 16)
    out, env = tmp_path / "out", {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}

    def dicompose_run(source: str, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = ["dicompose", "run", "normalize", "--in", str(tmp_path / source), "--out", str(out)]
        proc = run(*argv, "--engine", "local", "--workspace", str(tmp_path / "ws"), *extra, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc

    dicompose_run("in")
    dicompose_run("other")  # a second batch into the same --out
    (tmp_path / "twin" / "b").mkdir(parents=True)  # a third batch publishing one file the first publishes too
    shutil.copy(tmp_path / "in" / "b" / "slice_0001.dcm", tmp_path / "twin" / "b" / "slice_0001.dcm")
    dicompose_run("twin")
    before = {p.relative_to(out).as_posix() for p in out.rglob("*.dcm")}
    assert len(before) == 8
    shutil.rmtree(tmp_path / "in" / "b")
    (out / "mine.txt").write_text("the user's\n")
    proc = dicompose_run("in", "--json")
    report = json.loads(proc.stdout)
    # b/slice_0001's output is the twin batch's too: never moved
    assert [Path(p).relative_to(out).as_posix() for p in report["stale"]] == ["b/slice_0000-normalized.dcm"]
    aside = Path(report["stale_to"])
    assert aside.parent == out / ".stale" and [p.name for p in aside.rglob("*.dcm")] == ["slice_0000-normalized.dcm"]
    after = {p.relative_to(out).as_posix() for p in out.rglob("*.dcm") if ".stale" not in p.parts}
    assert after == before - {"b/slice_0000-normalized.dcm"}
    assert (out / "mine.txt").read_text() == "the user's\n"
    again = dicompose_run("in")
    assert "stale" not in again.stderr  # nothing more to move
    shutil.rmtree(tmp_path / "in" / "c")
    changed = out / "c" / "slice_0000-normalized.dcm"
    changed.chmod(0o644)
    changed.write_bytes(changed.read_bytes() + b"\0\0")  # the user edited it: theirs now
    proc = dicompose_run("in", "--prune")
    assert "deleted (--prune)" in proc.stderr, proc.stderr
    assert changed.exists() and not (out / "c" / "slice_0001-normalized.dcm").exists()
    assert [p.name for p in (out / ".stale").rglob("*.dcm")] == ["slice_0000-normalized.dcm"]


@pytest.mark.parametrize(
    ("tool", "params", "needle"),
    [
        ("normalize", ["min=100", "max=0"], "min (100) must be <= max (0)"),  # the descriptor's constraint
        ("normalize", ["min=-1e308", "max=1e308"], "too large to compute with"),
        ("normalize", ["max=nan"], "not a finite number"),
        ("threshold", ["level=10", "upper=1"], "level (10) must be <= upper (1)"),
    ],
)
def test_parameter_relations_are_refused_before_anything_runs(
    tmp_path: Path, tool: str, params: list[str], needle: str
):
    """Issue 9.10: what a tool would refuse is a usage error when the run is planned (exit 2, one line, no
    launch), in tool runs and in pipelines (dicompose check) alike."""
    synthetic.write_ct_series(tmp_path / "scans", "params", 1, 16, 16)
    pairs = [x for p in params for x in ("-p", p)]
    argv = ["dicompose", "run", tool, "--in", str(tmp_path / "scans"), "--out", str(tmp_path / "out")]
    proc = run(*argv, *pairs, "--engine", "local", "--workspace", str(tmp_path / "ws"))
    assert_one_line_error(proc, 2, needle)
    assert not (tmp_path / "ws" / "launches").exists() or not list((tmp_path / "ws" / "launches").iterdir())
    pipeline = tmp_path / "p.yaml"
    values = ", ".join(p.replace("=", ": ") for p in params)
    pipeline.write_text(
        f"version: 1\nname: p\ninputs: {{scans: dicom}}\nsteps:\n  s:\n    tool: {tool}\n"
        f"    with: {{input: inputs.scans, {values}}}\noutputs: {{o: steps.s.output}}\n"
    )
    assert_one_line_error(run("dicompose", "check", str(pipeline)), 2, needle)


@pytest.mark.parametrize("how", ["tool", "run"])
def test_a_damaged_copy_is_no_rival_of_good_copies_of_one_object(tmp_path: Path, how: str):
    """Issue 9.6 (found by a new user): one MR in two transfer syntaxes plus a copy whose compressed pixels are
    damaged: the two good copies are processed, the damaged one fails on its own damage."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("MR_small.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)
    damaged = folder / "MR_small_RLE.dcm"
    data = bytearray(damaged.read_bytes())
    data[-1500:-500] = b"\xff" * 1000
    damaged.write_bytes(bytes(data))
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = tool_or_run(how, folder, tmp_path)
    proc = run(*argv, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "same SOP Instance UID" not in proc.stderr and "MR_small_RLE.dcm" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.dcm")) == [
        "MR_small-normalized.dcm",
        "MR_small_jp2klossless-normalized.dcm",
    ]


@pytest.mark.parametrize("how", ["tool", "run"])
def test_an_image_cut_inside_its_header_fails_as_damaged(tmp_path: Path, how: str):
    """A CT cut inside its header has no pixel data left: damage (exit 1), not a non-image to skip."""
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "cut.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:700])
    synthetic.save(synthetic.ct_slice("whole", 0, 16, 16), folder / "whole.dcm")
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = tool_or_run(how, folder, tmp_path)
    proc = run(*argv, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "cut.dcm: file truncated" in proc.stderr
    assert [p.name for p in (tmp_path / "out").rglob("*.dcm")] == ["whole-normalized.dcm"]


def test_a_native_decoder_panic_leaves_only_our_one_line(tmp_path: Path):
    """The Rust RLE decoder panics on damaged data and prints its backtrace to stderr (RUST_BACKTRACE=1 in
    this environment or not): the user sees our one line only."""
    data = bytearray(Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes())
    data[-1500:-500] = b"\xff" * 1000
    (tmp_path / "bad.dcm").write_bytes(bytes(data))
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home"), "RUST_BACKTRACE": "1"}
    proc = run("dicompose", "normalize", str(tmp_path / "bad.dcm"), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"failed: {tmp_path / 'bad.dcm'}: cannot decode pixel data"), lines
    assert "panicked" not in proc.stderr and "backtrace" not in proc.stderr.lower()


def test_deidentify_writes_one_object_once_from_its_copies(tmp_path: Path):
    """De-identified outputs are named from the (keyed) instance UID, so copies of one object meet at one name:
    written once from a whole copy, the other copy skipped as such, a damaged copy failed on its own damage."""
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in ("MR_small.dcm", "MR_small_jp2klossless.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)
    damaged = folder / "A_damaged_RLE.dcm"  # sorts first: it claims the output name before the whole copies
    shutil.copy(get_testdata_file("MR_small_RLE.dcm"), damaged)
    data = bytearray(damaged.read_bytes())
    data[-1500:-500] = b"\xff" * 1000
    damaged.write_bytes(bytes(data))
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    proc = run("dicompose", "deidentify", str(folder), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(ln.startswith("failed:") and "A_damaged_RLE.dcm" in ln and "decode" in ln for ln in lines), lines
    assert any(ln.startswith("skipped:") and "a copy of" in ln for ln in lines), lines
    assert "would overwrite" not in proc.stderr
    assert len(list((tmp_path / "out").glob("deid-*.dcm"))) == 1


def test_audit_verify_points_to_the_host_commands_log(tmp_path: Path):
    """Host commands log to $DICOMPOSE_HOME/audit: where no workspace log is found, the message says so and
    the command it names works."""
    home = tmp_path / "home"
    env = {**os.environ, "DICOMPOSE_HOME": str(home)}
    synthetic.write_ct_series(tmp_path / "scans", "audit-hint", 2, 16, 16)
    proc = run("dicompose", "normalize", str(tmp_path / "scans"), "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "elsewhere").mkdir()
    proc = run("dicompose", "audit", "verify", cwd=tmp_path / "elsewhere", env=env)
    assert proc.returncode == 2 and f"--workspace {home}" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("dicompose", "audit", "verify", "--workspace", str(home), env=env)
    assert proc.returncode == 0 and "audit log intact" in proc.stdout, proc.stdout + proc.stderr


def test_inputs_as_given_missing_ones_refused_and_nothing_left_when_nothing_is_written(tmp_path: Path):
    """A path that does not exist is a usage error before anything is made; a batch whose every file fails
    leaves no output folder behind; paths typed with ``..`` are named cleanly (absolute, as --json promises)."""
    synthetic.write_ct_series(tmp_path / "data" / "good", "given", 2, 16, 16)
    (tmp_path / "tool").mkdir()
    (tmp_path / "data" / "bad").mkdir()
    (tmp_path / "data" / "bad" / "notes.dcm").write_text("not DICOM")
    missing = run("dicompose", "normalize", "nothere", "--out", "../n1", cwd=tmp_path / "tool")
    assert missing.returncode == 2 and "nothere: no such file or folder" in missing.stderr
    assert not (tmp_path / "n1").exists()
    failing = run("dicompose", "normalize", "../data/bad/notes.dcm", "--out", "../n2", cwd=tmp_path / "tool")
    assert failing.returncode == 1 and "not a DICOM file" in failing.stdout + failing.stderr
    assert not (tmp_path / "n2").exists()
    good = run("dicompose", "normalize", "../data/good", "--out", "../n3", "--json", cwd=tmp_path / "tool")
    assert good.returncode == 0, good.stderr
    files = json.loads(good.stdout)["files"]
    assert {f["source"] for f in files} == {
        str(tmp_path / "data" / "good" / n) for n in os.listdir(tmp_path / "data" / "good")
    }
    assert all(".." not in f["source"] and Path(f["output"]).is_absolute() for f in files)


def test_compare_says_why_images_of_different_sizes_have_no_figures(tmp_path: Path):
    for folder, size in (("a", 16), ("b", 20)):
        synthetic.save(synthetic.ct_slice("sizes", 0, size, size), tmp_path / folder / "x.dcm")
    table = run("dicompose", "compare", str(tmp_path / "a"), str(tmp_path / "b"), env={**os.environ, "COLUMNS": "120"})
    said = " ".join(table.stdout.split())
    assert table.returncode == 1 and "pixel arrays differ in shape (16×16 vs 20×20)" in said, table.stdout
    assert "∞" not in table.stdout and "-1" not in table.stdout
    doc = json.loads(run("dicompose", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json").stdout)
    (entry,) = doc["files"]
    assert entry["differing_voxels"] is None and entry["max_abs"] is None and "16×16 vs 20×20" in entry["notes"][0]


def test_scheduler_choices_are_checked_before_anything_runs(tmp_path: Path):
    """A scheduler name, --slurm options, and --slurm without SLURM: refused in one line, dry run or not,
    by run and check alike; and the demo runs on the configured scheduler."""
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    demo = str(Path(__file__).parents[2] / "src/dicompose/pipelines/demo.yaml")
    samples = str(Path(__file__).parents[2] / "src/dicompose/sample_data")
    base = ["dicompose", "run", demo, "--in", samples, "--out", str(tmp_path / "o"), "--engine", "local", "--dry-run"]
    for extra, said in (
        (["--slurm", "partiton=x"], "--slurm is for --scheduler slurm"),
        (["--scheduler", "slurm", "--slurm", "partiton=x"], "expected KEY=VALUE with KEY one of partition"),
        (["--scheduler", "slurm", "--slurm", "walltime=2h"], "slurm walltime: expected HH:MM:SS"),
        (["--scheduler", "pbs"], "--scheduler: must be one of local, dask, slurm"),
    ):
        proc = run(*base, *extra, env=env)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (extra, proc.stderr)
    check = run("dicompose", "check", demo, "--engine", "local", "--scheduler", "pbs", env=env)
    assert check.returncode == 2 and "--scheduler: must be one of" in check.stdout + check.stderr
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "dicompose.toml").write_text('[run]\nengine = "local"\nscheduler = "dask"\n')
    proc = run("dicompose", "demo", "--out", str(tmp_path / "d"), cwd=tmp_path / "project", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "scheduler: dask" in " ".join((proc.stdout + proc.stderr).split())
    assert "already in use" not in proc.stderr  # Dask's port notices are not the user's news


def test_progress_without_a_terminal_counts_failed_and_blocked_tasks_as_the_summary_does(tmp_path: Path):
    """A line per launch when stderr is not a terminal: N of M finished, then failed and blocked apart (a task
    behind a failed one never ran: counting it as failed said "2 failed" where the summary said 1)."""
    from tests.support.pipelines import cli_run_argv, pipeline_file, write_scans

    write_scans(tmp_path / "scans", groups=1)
    marker = tmp_path / "broken"
    marker.touch()
    pipeline = pipeline_file(tmp_path, a=f', fail_if: "{marker}"')
    proc = subprocess.run(cli_run_argv(tmp_path, pipeline), capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    progress = [line for line in proc.stderr.splitlines() if "finished" in line and "launch" in line]
    assert progress and progress[-1].endswith("0 of 2 tasks finished, 1 failed, 1 blocked"), proc.stderr
    assert "1 failed" in proc.stdout and "1 blocked" in proc.stdout, proc.stdout
