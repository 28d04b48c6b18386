"""Issue 13.5: ``dicompose report`` and ``dicompose run --report`` on a real run (local engine) over inputs
that name their patient everywhere a hospital's files do: in the header (name, id, birth date, institution,
physician, accession number, descriptions, UIDs) and in every folder and file name. One series fails (pixel
data that cannot be decoded), so the report's failure panel quotes a tool's message built from a path."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.support.planted import DEMO, PLANTED_NAMES, dicompose, leaks, planted_scans, png_chunks, png_text


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One run of the demo pipeline with --report (it fails: one series cannot be decoded)."""
    tmp = tmp_path_factory.mktemp("report")
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp / "home")}
    uids = planted_scans(tmp / "in")
    out, workspace = tmp / "out", tmp / "ws"
    argv = ["run", str(DEMO), "--in", f"scans={tmp / 'in'}", "--out", str(out), "--workspace", str(workspace)]
    proc = dicompose(*argv, "--engine", "local", "--report", "--json", env=env)
    return {"tmp": tmp, "env": env, "uids": uids, "out": out, "workspace": workspace, "proc": proc, "argv": argv}


def test_run_report_writes_a_report_of_every_series_and_the_failure(ran: dict) -> None:
    proc = ran["proc"]
    assert proc.returncode == 1, proc.stderr  # the broken series failed
    document = json.loads(proc.stdout)
    report = document["report"]
    assert report["series"] == 3 and report["failed_series"] == 1 and not report["identifiers_shown"]
    folder = ran["out"] / "report"
    assert Path(report["page"]) == folder / "index.html"
    index = (folder / "index.html").read_text()
    assert index.count('class="status s-failed"') >= 1
    pages = sorted((folder / "series").glob("*.html"))
    assert len(pages) == 3
    failed = [p for p in pages if "<strong>Failed:</strong>" in p.read_text()]
    assert len(failed) == 1
    text = failed[0].read_text()
    assert "cannot decode pixel data" in text and "scans:/[redacted]/[redacted]/[redacted]: " in text
    assert str(ran["tmp"]) not in text  # the tool's message quoted, its path named by the input, scrubbed
    assert "not run for this series" in text  # the mask step never ran for it
    for page in pages:  # every figure a page names exists
        for source in re.findall(r'src="\.\./(figures/[^"]+)"', page.read_text()):
            assert (folder / source).is_file(), source


def test_no_identifier_reaches_any_page_or_figure(ran: dict) -> None:
    folder = ran["out"] / "report"
    uids = [uid for pair in ran["uids"].values() for uid in pair]
    checked = 0
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".png":
            assert set(png_chunks(data)) <= {"IHDR", "PLTE", "IDAT", "IEND", "pHYs"}, path.name  # no text chunk
            data = png_text(data)
        assert not leaks(data), (path.name, leaks(data))
        assert not [uid for uid in uids if uid.encode() in data], path.name
        assert not leaks(path.relative_to(folder).as_posix().encode())
        checked += 1
    assert checked >= 10


def test_figures_show_the_images_and_the_mask_in_red(ran: dict) -> None:
    from matplotlib.image import imread

    folder = ran["out"] / "report" / "figures"
    befores = sorted(folder.glob("*-1-before.png"))
    assert len(befores) == 2  # CT and MR; the broken series has nothing to show
    for path in befores:
        picture = imread(path)
        assert picture.ndim == 3 and np.unique(picture.reshape(-1, picture.shape[-1]), axis=0).shape[0] > 8
    for path in sorted(folder.glob("*-2-after.png")):  # threshold's masks over the normalized slices
        picture = (imread(path)[..., :3] * 255).astype(int)
        red = (picture[..., 0] > picture[..., 1] + 40) & (picture[..., 1] == picture[..., 2])
        grey = (picture[..., 0] == picture[..., 1]) & (picture[..., 1] == picture[..., 2]) & (picture[..., 0] > 0)
        assert red.sum() > 20 and grey.sum() > 20, path.name
    histograms = sorted(folder.glob("*-1-histogram.png"))
    assert len(histograms) == 2 and all(imread(p).shape[1] > 300 for p in histograms)


def test_report_reads_are_audited_by_series_pseudonym(ran: dict) -> None:
    lines = (ran["workspace"] / "audit" / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    reads = [e for e in entries if e["tool"] == "report"]
    run_id = json.loads(ran["proc"].stdout)["run"]
    assert {e["run"] for e in reads} == {run_id} and {e["action"] for e in reads} == {"read"}
    assert len({e["object"]["series"] for e in reads}) >= 3  # inputs and outputs, series by series
    labels = {
        m for m in re.findall(r"series/(p-[0-9a-f]{10})\.html", (ran["out"] / "report" / "index.html").read_text())
    }
    assert labels <= {e["object"]["series"][:12] for e in reads}  # the report's names are the audit log's
    assert not leaks(json.dumps(reads).encode())  # the report's entries name no file (the run's own do)


def test_show_identifiers_opts_in_and_json_summary(ran: dict) -> None:
    run_id = json.loads(ran["proc"].stdout)["run"]
    target = ran["tmp"] / "named"
    proc = dicompose(
        "report",
        run_id,
        "--workspace",
        str(ran["workspace"]),
        "--out",
        str(target),
        "--show-identifiers",
        "--json",
        env=ran["env"],
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["schema"] == "dicompose.report/1" and summary["identifiers_shown"] is True
    text = "".join(p.read_text() for p in (target / "series").glob("*.html"))
    assert "MRN12345" in text and ran["uids"]["ct"][0] in text


def test_embed_writes_one_self_contained_page(ran: dict) -> None:
    run_id = json.loads(ran["proc"].stdout)["run"]
    page = ran["tmp"] / "one.html"
    proc = dicompose(
        "report", run_id, "--workspace", str(ran["workspace"]), "--out", str(page), "--embed", env=ran["env"]
    )
    assert proc.returncode == 0, proc.stderr
    html = page.read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 10 and all(src.startswith("data:image/png;base64,") for src in images)
    for src in images:
        assert not leaks(png_text(base64.b64decode(src.split(",", 1)[1])))
    assert not leaks(html.encode())
    assert [p.name for p in page.parent.iterdir() if p.name.startswith(".")] == []  # no staging left behind
    again = dicompose(
        "report", run_id, "--workspace", str(ran["workspace"]), "--out", str(page), "--embed", env=ran["env"]
    )
    assert again.returncode == 0, again.stderr  # its own page is replaced


def test_a_report_replaces_its_own_folder_and_refuses_anything_else(ran: dict) -> None:
    run_id = json.loads(ran["proc"].stdout)["run"]
    workspace, env = str(ran["workspace"]), ran["env"]
    target = ran["tmp"] / "replaced"
    assert dicompose("report", run_id, "--workspace", workspace, "--out", str(target), env=env).returncode == 0
    (target / "figures" / "left-over.png").write_bytes(b"old")
    assert dicompose("report", run_id, "--workspace", workspace, "--out", str(target), env=env).returncode == 0
    assert not (target / "figures" / "left-over.png").exists() and (target / "index.html").is_file()

    foreign = ran["tmp"] / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("precious")
    proc = dicompose("report", run_id, "--workspace", workspace, "--out", str(foreign), env=env)
    assert proc.returncode != 0 and "not a dicompose report" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert [p.name for p in foreign.iterdir()] == ["chapter1.tex"]

    page = ran["tmp"] / "notes.html"
    page.write_text("<html>mine</html>")
    proc = dicompose("report", run_id, "--workspace", workspace, "--out", str(page), "--embed", env=env)
    assert proc.returncode != 0 and page.read_text() == "<html>mine</html>"

    proc = dicompose("report", "nosuchrun", "--workspace", workspace, "--out", str(target), env=env)
    assert proc.returncode != 0 and "no run" in proc.stderr and "Traceback" not in proc.stderr


def test_a_cached_rerun_reports_cache_hits(ran: dict) -> None:
    (ran["tmp"] / "in" / PLANTED_NAMES[0] / "SMITH JANE broken").rename(ran["tmp"] / "broken-aside")
    proc = dicompose(*ran["argv"], "--engine", "local", "--report", env=ran["env"])
    assert proc.returncode == 0, proc.stderr
    index = (ran["out"] / "report" / "index.html").read_text()
    rows = re.findall(r"<tr><td>(normalize|mask)</td>.*?</tr>", index, flags=re.S)
    assert rows == ["normalize", "mask"]
    cells = re.findall(r'<td class="num">(\d+)</td><td class="num">(\d+)</td>', index)
    assert ("2", "2") in cells  # 2 tasks, 2 cache hits
    assert "reused from an earlier run" in "".join(p.read_text() for p in (ran["out"] / "report" / "series").glob("*"))


def test_run_report_refuses_a_pipeline_whose_output_is_called_report(tmp_path: Path) -> None:
    """--report writes OUT/report/: a pipeline output of that name would share the folder, so the run is refused
    before anything is launched, in one line that says what to do instead."""
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "version: 1\nname: clash\ninputs:\n  scans: dicom\nsteps:\n  n:\n    tool: normalize\n"
        "    with: {input: inputs.scans}\noutputs:\n  report: steps.n.output\n"
    )
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    planted_scans(tmp_path / "in")
    argv = ["run", str(pipeline), "--in", f"scans={tmp_path / 'in'}", "--out", str(tmp_path / "out"), "--report"]
    proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--engine", "local", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "dicompose report RUN --out DIR" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "ws").exists()


def test_quoted_text_is_scrubbed_of_parts_of_values_and_parameters(tmp_path: Path) -> None:
    """A tool's stderr quoting one word of an identifying value (the institution's, not only a name part) and
    a parameter that names the patient are both blanked; with --show-identifiers a person name is shown
    whole (not split into characters), and the report's folder is readable as the umask allows."""
    import stat

    from tests.support.descriptors import snippet_tool

    planted_scans(tmp_path / "in")
    code = "import sys; sys.stderr.write('seen at ELSEWHERE for ' + sys.argv[1] + chr(10)); raise SystemExit(3)"
    tool = snippet_tool(tmp_path / "leaky.json", "leaky", code, "out.txt", "fails, quoting")
    tool.write_text(tool.read_text().replace('"python3 -c [CODE] [INPUT]"', '"python3 -c [CODE] [NOTE] [INPUT]"'))
    doc = json.loads(tool.read_text())
    doc["inputs"].append({"id": "note", "name": "note", "type": "String", "value-key": "[NOTE]"})
    tool.write_text(json.dumps(doc))
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = ["run", str(tool), "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--engine", "local"]
    argv += ["-p", "note=JOHNATHAN MRN12345", "--workspace", str(tmp_path / "ws"), "--report", "--allow-unpinned"]
    proc = dicompose(*argv, env=env)
    assert proc.returncode == 1, proc.stderr
    folder = tmp_path / "out" / "report"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~_umask()
    text = "".join(p.read_text() for p in [folder / "index.html", *(folder / "series").glob("*.html")])
    assert "seen at [redacted] for [redacted] [redacted]" in text and not leaks(text.encode()), leaks(text.encode())
    assert "note=[redacted] [redacted]" in text
    run_id = json.loads(dicompose("runs", "--workspace", str(tmp_path / "ws"), "--json", env=env).stdout)[-1]["id"]
    named = tmp_path / "named"
    proc = dicompose(
        "report", run_id, "--workspace", str(tmp_path / "ws"), "--out", str(named), "--show-identifiers", env=env
    )
    assert proc.returncode == 0, proc.stderr
    pages = "".join(p.read_text() for p in (named / "series").glob("*.html"))
    assert "DOE^JOHNATHAN" in pages and "D\\O\\E" not in pages
    proc = dicompose("report", run_id, "--workspace", str(tmp_path / "ws"), "--out", str(named), "--embed", env=env)
    assert proc.returncode == 2 and "holds a folder report" in proc.stderr  # one page never overwrites a folder
    assert (named / "series").is_dir()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_skipped_series_and_files_left_out_are_said(tmp_path: Path) -> None:
    """A series the tool does not handle (colour) is "skipped" with the tool's reason, not "failed"; files the
    run never processed (not DICOM) are listed, their names blanked; a thin image stays a visible band."""
    from pydicom.data import get_testdata_file

    from dicompose.dicom import synthetic

    scans = tmp_path / "in"
    synthetic.write_ct_series(scans / "ct", "skipped-ct", 3, 64, 64)
    synthetic.write_ct_series(scans / "thin", "skipped-thin", 2, 7, 300)
    (scans / "c3").mkdir()
    (scans / "c3" / "s1.dcm").write_bytes(Path(get_testdata_file("SC_rgb.dcm")).read_bytes())
    (scans / "MRN12345 notes.txt").write_text("not a scan")
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = ["run", str(DEMO), "--in", f"scans={scans}", "--out", str(tmp_path / "out"), "--engine", "local"]
    proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--report", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "out" / "report"
    index = (folder / "index.html").read_text()
    assert "3: 1 skipped, 2 ok" in index and "1 not DICOM" in index and "MRN12345" not in index
    skipped = [
        p.read_text() for p in (folder / "series").glob("*.html") if "<strong>Skipped:</strong>" in p.read_text()
    ]
    assert len(skipped) == 1 and "colour images are not supported" in skipped[0]
    from matplotlib.image import imread

    for path in folder.glob("figures/*.png"):
        assert min(imread(path).shape[:2]) >= 32, path.name  # a 7x300 slice is a band, not a line


def test_a_series_keeps_its_label_when_its_input_files_are_gone(tmp_path: Path) -> None:
    """Labels come from the series UID; once the inputs are deleted, the workspace's memo still knows it."""
    from dicompose.dicom import synthetic

    scans = tmp_path / "in"
    for name in ("a", "b"):
        synthetic.write_ct_series(scans / name, f"kept-label-{name}", 2, 32, 32)
    env = {**os.environ, "DICOMPOSE_HOME": str(tmp_path / "home")}
    argv = ["run", str(DEMO), "--in", f"scans={scans}", "--out", str(tmp_path / "out"), "--engine", "local"]
    proc = dicompose(*argv, "--workspace", str(tmp_path / "ws"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run"]

    def labels(target: Path) -> set[str]:
        made = dicompose("report", run_id, "--workspace", str(tmp_path / "ws"), "--out", str(target), env=env)
        assert made.returncode == 0, made.stderr
        return {p.stem for p in (target / "series").glob("*.html")}

    before = labels(tmp_path / "r1")
    for path in (scans / "b").iterdir():
        path.unlink()
    assert labels(tmp_path / "r2") == before and all(label.startswith("p-") for label in before)
