"""Configuration files (config.py): ./dicompose.toml over $DICOMPOSE_HOME/config.toml, the environment over both,
the command line over everything; every table and key checked, each mistake named with its file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dicompose.config import KEYS, configured, load_config, load_settings
from dicompose.errors import UsageError
from tests.support.cli import BIN

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DICOMPOSE_WORKERS", raising=False)
    (tmp_path / "site.toml").write_text("")
    monkeypatch.setenv("DICOMPOSE_SITE_CONFIG", str(tmp_path / "site.toml"))  # not this machine's /etc
    (tmp_path / "home").mkdir()
    (tmp_path / "project").mkdir()
    return tmp_path


def test_project_over_home_environment_over_both_command_line_over_all(home: Path, monkeypatch: pytest.MonkeyPatch):
    (home / "home" / "config.toml").write_text('[run]\nworkers = 3\nengine = "docker"\nscheduler = "dask"\n')
    project = home / "project"
    (project / "dicompose.toml").write_text('[run]\nengine = "local"\n')
    config = load_config(project)
    assert config == {"run": {"workers": 3, "engine": "local", "scheduler": "dask"}}
    assert load_settings(project).workers == 3
    monkeypatch.setenv("DICOMPOSE_WORKERS", "5")
    assert load_settings(project).workers == 5
    assert configured("run", "engine", None, "auto", project) == "local"
    assert configured("run", "engine", "docker", "auto", project) == "docker"  # given on the command line
    assert configured("run", "scheduler", None, "local", project) == "dask"  # from the home file
    assert configured("run", "timeout", None, 60, project) == 60  # nobody set it: the default
    assert load_config(home) == {"run": {"workers": 3, "engine": "docker", "scheduler": "dask"}}


def test_the_site_file_is_under_the_user_s_and_the_project_s(home: Path):
    """A cluster's administrators set the image folder and the partition once, in /etc/dicompose/config.toml
    (here: DICOMPOSE_SITE_CONFIG); users and projects override them key by key; its mistakes name it."""
    site = home / "site.toml"
    site.write_text('[run]\nimage_dir = "/shared/images"\nengine = "charliecloud"\n[slurm]\npartition = "short"\n')
    (home / "home" / "config.toml").write_text('[slurm]\naccount = "imaging"\n')
    (home / "project" / "dicompose.toml").write_text('[run]\nengine = "local"\n')
    assert load_config(home / "project") == {
        "run": {"image_dir": "/shared/images", "engine": "local"},
        "slurm": {"partition": "short", "account": "imaging"},
    }
    site.write_text("[slurm]\npartiton = 'short'\n")
    with pytest.raises(UsageError, match=f"{site}: \\[slurm\\] partiton: unknown key"):
        load_config(home / "project")
    site.unlink()  # named on purpose, not there: an error, not a silent loss of the site's settings
    with pytest.raises(UsageError, match=f"DICOMPOSE_SITE_CONFIG={site}: no such file"):
        load_config(home / "project")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[run]\nworkers = 'two'\n", "[run] workers: must be a whole number, not 'two'"),
        ("[run]\nworkers = true\n", "[run] workers: must be a whole number, not true"),
        ("[run]\nworkers = 100000000000\n", "[run] workers: must be at most 256"),
        (
            "[run]\nengine = 'podman'\n",
            "[run] engine: must be one of auto, docker, apptainer, charliecloud, local, not 'podman'",
        ),
        ("[run]\nscheduler = 'pbs'\n", "[run] scheduler: must be one of local, dask, slurm or tcp://HOST:PORT"),
        ("[slurm]\nwalltime = '2h'\n", "[slurm] walltime: expected HH:MM:SS or D-HH:MM:SS, not '2h'"),
        ("[slurm]\nmemory = '0GB'\n", "[slurm] memory: must be more than nothing, not '0GB'"),
        ("[run]\nimage_dir = ''\n", "[run] image_dir: must name a folder, not an empty string"),
        ("[slurm]\nmemory = 'lots'\n", "[slurm] memory: expected a size such as 8GB, not 'lots'"),
        ("[run]\nworkers = 0\n", "[run] workers: must be 1 or more, not 0"),
        ("[pacs]\nmove_dest = 'NOPORT'\n", "[pacs] move_dest: expected AET:PORT, e.g. DICOMPOSE:11112, not 'NOPORT'"),
        ("[pacs]\nmax_pdu = -1\n", "[pacs] max_pdu: must be 0 (no limit) or more, not -1"),
        ("[run]\nworker = 2\n", "[run] worker: unknown key (keys: workers, engine, image_dir, scheduler)"),
        ("[runn]\nworkers = 2\n", "[runn] is not a table dicompose reads"),
        ("workers = 2\n", "workers: a key outside any table (put it under [run])"),
        ("[run\nworkers = 2\n", "not valid TOML"),
    ],
)
def test_every_mistake_is_named_with_its_file(home: Path, text: str, problem: str):
    path = home / "project" / "dicompose.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_config(home / "project")
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)


def test_every_key_is_documented():
    text = DOCS.read_text()
    for table, keys in KEYS.items():
        assert f"[{table}]" in text
        for key in keys:
            assert f"`{key}`" in text, f"docs/configuration.md does not document [{table}] {key}"


def test_the_cli_takes_the_engine_from_the_project_file(home: Path):
    project = home / "project"
    env = {**os.environ, "DICOMPOSE_HOME": str(home / "home")}
    argv = [str(BIN / "dicompose"), "check", str(Path(__file__).parents[2] / "src/dicompose/pipelines/demo.yaml")]
    (project / "dicompose.toml").write_text('[run]\nengine = "local"\n')
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
    said = "engine: local (local engine requested; no container, no isolation)"
    assert proc.returncode == 0 and said in proc.stdout, proc.stderr
    proc = subprocess.run([*argv, "--engine", "auto"], cwd=project, env=env, capture_output=True, text=True)
    assert "local engine requested" not in proc.stdout  # the command line wins
    for text, said in (
        ('[run]\nengine = "podman"\n', "dicompose.toml: [run] engine: must be one of auto"),
        ("[run]\nengine = 3\n", "dicompose.toml: [run] engine: must be a string"),
    ):
        (project / "dicompose.toml").write_text(text)
        proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr


def test_workers_from_the_environment_are_checked(home: Path, monkeypatch: pytest.MonkeyPatch):
    for bad in ("abc", "0", "-3", "100000000000"):
        monkeypatch.setenv("DICOMPOSE_WORKERS", bad)
        with pytest.raises(UsageError, match="DICOMPOSE_WORKERS"):
            load_settings(home / "project")


def test_a_byte_order_mark_and_a_vanished_folder(home: Path, monkeypatch: pytest.MonkeyPatch):
    (home / "project" / "dicompose.toml").write_bytes("\ufeff[run]\nworkers = 2\n".encode())
    assert load_config(home / "project") == {"run": {"workers": 2}}
    gone = home / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(UsageError, match="the current folder no longer exists"):
        load_config()


def test_both_files_problems_at_once_and_a_dangling_link_is_no_silent_default(home: Path):
    (home / "home" / "config.toml").write_text("[run]\nworker = 2\n")
    (home / "project" / "dicompose.toml").write_text("[slurm]\ncores = 'four'\n")
    with pytest.raises(UsageError) as caught:
        load_config(home / "project")
    said = str(caught.value)
    assert "config.toml: [run] worker: unknown key" in said and "dicompose.toml: [slurm] cores: must be" in said
    assert "\n" not in said
    (home / "project" / "dicompose.toml").unlink()
    (home / "project" / "dicompose.toml").symlink_to(home / "shared" / "site.toml")
    (home / "home" / "config.toml").unlink()
    with pytest.raises(UsageError, match=r"dicompose.toml: a link to .*site.toml, which does not exist"):
        load_config(home / "project")


def test_more_workers_than_cores_is_warned_whoever_set_it(home: Path):
    from dicompose.config import default_workers

    project = home / "project"
    (project / "scans").mkdir()
    env = {**os.environ, "DICOMPOSE_HOME": str(home / "home")}
    env.pop("DICOMPOSE_WORKERS", None)
    argv = [str(BIN / "dicompose"), "run", "normalize", "--in", "scans", "--out", "out", "--engine", "local"]
    too_many = default_workers() + 1
    (project / "dicompose.toml").write_text(f"[run]\nworkers = {too_many}\n")
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
    said = " ".join(proc.stderr.split())
    assert f"warning: the configuration's workers = {too_many} is more than the" in said, proc.stderr
    proc = subprocess.run(
        argv, cwd=project, env={**env, "DICOMPOSE_WORKERS": str(too_many)}, capture_output=True, text=True
    )
    assert f"DICOMPOSE_WORKERS={too_many} is more than the" in " ".join(proc.stderr.split())
