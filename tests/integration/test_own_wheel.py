"""``dicompose build`` makes dicompose's own wheel from however dicompose is installed (issue 10, point 3).

Real pip, real wheels: a wheel built from this checkout, installed the regular way (``pip install --target``,
no source anywhere) and packed back by that installed copy; the build from source with and without the
backend in this Python; the one line when nothing can work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dicompose.errors import UsageError
from dicompose.images import own_wheel
from tests.support.components import need


def members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {n: archive.read(n) for n in archive.namelist() if not n.endswith(".dist-info/RECORD")}


@pytest.fixture(scope="module")
def source_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built the way an editable install builds it (no isolation here)."""
    assert own_wheel.source_checkout() is not None
    return own_wheel.own_wheel(tmp_path_factory.mktemp("source"))


def test_a_regular_install_packs_itself_back_into_the_same_wheel(source_wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site)]
    subprocess.run([*install, str(source_wheel)], check=True)
    script = (
        "import sys; from pathlib import Path; import dicompose; from dicompose.images import own_wheel as w;"
        f"assert Path(dicompose.__file__).is_relative_to({str(site)!r}), dicompose.__file__;"
        "assert w.source_checkout() is None; print(w.own_wheel(Path(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy first: no source checkout in sight
    argv = [sys.executable, "-c", script, str(tmp_path / "out")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    repacked = Path(proc.stdout.strip())
    assert repacked.name == source_wheel.name
    assert members(repacked) == members(source_wheel)
    again = tmp_path / "again"  # and pip takes it (its RECORD is checked on install)
    subprocess.run([*install[:-1], str(again), str(repacked)], check=True)
    assert (again / "dicompose" / "__init__.py").read_bytes() == (site / "dicompose" / "__init__.py").read_bytes()


def test_without_the_backend_the_source_is_built_in_isolation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A venv without setuptools: pip fetches the backend (build isolation); with no index either, one line
    says what to install (pip's own index is switched off here to show it)."""
    monkeypatch.setattr(own_wheel, "has_backend", lambda: False)
    source = own_wheel.source_checkout()
    assert source is not None
    assert "--no-build-isolation" not in own_wheel.wheel_argv(source, tmp_path, isolated=True)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(UsageError) as caught:
        own_wheel.own_wheel(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "lacks its build backend" in message and "pip install setuptools wheel" in message
    assert list(tmp_path.glob("*.whl")) == []


def test_without_the_backend_pip_fetches_it_and_the_wheel_builds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source_wheel: Path
):
    """The isolated build for real: pip fetches setuptools from the machine's configured index into a build
    environment and the wheel comes out with the same modules as the one built without isolation."""
    monkeypatch.setattr(own_wheel, "has_backend", lambda: False)
    try:
        built = own_wheel.own_wheel(tmp_path)
    except UsageError as exc:
        need("package-index", "could not fetch" not in str(exc), f"no package index reachable ({exc})")
        raise
    ours, reference = members(built), members(source_wheel)
    modules = {name for name in reference if name.startswith("dicompose/")}
    assert modules and {name: ours.get(name) for name in modules} == {name: reference[name] for name in modules}
