"""The charliecloud engine's command and bind layout (pure), its image lookup and verification, its refusal of
root, and ``auto``'s order. Its behaviour from inside a real container is tested in tests/hpc (as a user)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dicompose.engines import chrun
from dicompose.engines.base import ImageRef, Mount, Permissions, TaskSpec
from dicompose.engines.charliecloud import MANIFEST, manifest_of
from dicompose.engines.chrun import CONFINE, chrun_argv, exported, layout, make_skeleton, verify_cached
from dicompose.engines.confine import ConfineError, parse, under
from dicompose.errors import UnpinnedImageError, UsageError

DIGEST = "sha256:" + "cd" * 32


def spec(tmp_path: Path, **changes: object) -> TaskSpec:
    scans = tmp_path / "scans"
    scans.mkdir(exist_ok=True)
    key = tmp_path / "site.key"
    key.write_text("k")
    base = {
        "argv": ["dicompose", "normalize", "/dicompose/in/0/a.dcm"],
        "workdir": tmp_path / "launch",
        "mounts": (
            Mount(scans, "/dicompose/in/0"),
            Mount(key, "/dicompose/in/p0/site.key"),
            Mount(tmp_path / "t0", "/dicompose/tasks/0/out", read_only=False),
        ),
        "image": ImageRef("dicompose/normalize:0.1.0", DIGEST),
        "environment": {"DICOMPOSE_WORKERS": "2"},
        "workdir_read_only": True,
    }
    base.update(changes)
    return TaskSpec(**base)  # type: ignore[arg-type]


def split(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the confinement launcher's part, ch-run's part) of a command."""
    middle = argv.index("--")
    return argv[:middle], argv[middle + 1 :]


def test_the_command_confines_then_runs_ch_run_with_a_cleared_environment(tmp_path: Path):
    argv = chrun_argv(spec(tmp_path), tmp_path / "image", tmp_path / "skel", ch_run="/usr/bin/ch-run")
    launcher, ch_run = split(argv)
    assert launcher[1:4] == ["-I", "-S", str(CONFINE)]  # isolated, no site: standard library only
    ro = [launcher[i + 1] for i, a in enumerate(launcher) if a == "--ro"]
    rw = [launcher[i + 1] for i, a in enumerate(launcher) if a == "--rw"]
    assert sorted(ro) == sorted(
        [str(tmp_path / "scans"), str(tmp_path / "site.key"), str(tmp_path / "launch"), str(tmp_path / "skel")]
    )
    assert rw == [str(tmp_path / "t0")]
    assert "--net" not in launcher
    assert ch_run[:5] == ["/usr/bin/ch-run", "--unset-env=*", "--set-env", "--env-no-expand", "--private-tmp"]
    assert "--set-env=DICOMPOSE_WORKERS=2" in ch_run
    binds = [ch_run[i + 1] for i, a in enumerate(ch_run) if a == "-b"]
    assert binds[:2] == [f"{tmp_path / 'skel' / 'in'}:/dicompose/in", f"{tmp_path / 'skel' / 'tasks'}:/dicompose/tasks"]
    assert f"{tmp_path / 'launch'}:/dicompose/out" == binds[-1]
    image_at = ch_run.index(str(tmp_path / "image"))
    assert ch_run[image_at - 2 : image_at] == ["-c", "/dicompose/out"]
    assert ch_run[image_at + 1 :] == ["--", "dicompose", "normalize", "/dicompose/in/0/a.dcm"]


def test_network_and_gpus_only_when_the_step_asks(tmp_path: Path):
    environ = {"CUDA_VISIBLE_DEVICES": "1", "SECRET": "x"}
    plain = chrun_argv(spec(tmp_path), tmp_path / "image", tmp_path / "skel", environ=environ)
    assert not any("CUDA" in a for a in plain) and "--net" not in plain
    asked = spec(tmp_path, permissions=Permissions(network=True, gpu=True))
    argv = chrun_argv(asked, tmp_path / "image", tmp_path / "skel", environ=environ)
    assert "--net" in split(argv)[0]
    assert "--set-env=CUDA_VISIBLE_DEVICES=1" in argv and not any("SECRET" in a for a in argv)


def test_the_skeleton_has_exactly_the_mount_points(tmp_path: Path):
    plan = layout(spec(tmp_path), tmp_path / "skel")
    make_skeleton(plan)
    assert (tmp_path / "skel/in/0").is_dir() and (tmp_path / "skel/tasks/0/out").is_dir()
    single = tmp_path / "skel/in/p0/site.key"
    assert single.is_file() and single.stat().st_size == 0  # a file bound as that one file, never its folder


def test_a_source_with_a_colon_is_bound_through_a_link(tmp_path: Path):
    hostile = tmp_path / "scan:s 1\nb"
    hostile.mkdir()
    the_spec = spec(tmp_path, mounts=(Mount(hostile, "/dicompose/in/0"),))
    plan = layout(the_spec, tmp_path / "skel")
    make_skeleton(plan)
    (link,) = [host for host, target in plan.binds if target == "/dicompose/in/0"]
    assert ":" not in link and Path(link).resolve() == hostile
    assert str(hostile) in plan.read_only  # the real folder is what becomes read-only


def test_a_workspace_with_a_colon_keeps_every_bind_whole(tmp_path: Path):
    """The skeleton lives in the launch's scratch folder in the workspace; a workspace path with a colon
    ("wsb:1") made every ``-b SRC:DST`` split in three: the skeleton then goes to the temp folder, and the
    launch's own folder (in the workspace too) is bound through a link."""
    workspace = tmp_path / "wsb:1"
    the_spec = spec(tmp_path, workdir=workspace / "launch", scratch=workspace / "scratch")
    engine = chrun.CharliecloudEngine()
    skeleton = engine._skeleton(the_spec)
    assert ":" not in str(skeleton)
    argv = chrun_argv(the_spec, tmp_path / "image", skeleton)
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "-b"]
    assert binds and all(bind.count(":") == 1 for bind in binds)
    assert engine._skeleton(spec(tmp_path, scratch=tmp_path / "scratch")) == tmp_path / "scratch" / "charliecloud"


def test_binds_outside_the_image_areas_are_refused(tmp_path: Path):
    with pytest.raises(UsageError, match="cannot bind at /etc/x"):
        layout(spec(tmp_path, mounts=(Mount(tmp_path, "/etc/x"),)), tmp_path / "skel")


def test_the_launcher_reads_its_options_and_refuses_others():
    assert parse(["--ro", "/a", "--rw", "/b", "--net", "--", "ch-run", "x"]) == (["/a"], ["/b"], True, ["ch-run", "x"])
    with pytest.raises(ConfineError, match="unknown option"):
        parse(["--write", "/a", "--", "x"])
    with pytest.raises(ConfineError, match="no command"):
        parse(["--ro", "/a", "--"])
    assert under("/a/b/c", ["/a/b"]) and under("/a/b", ["/a/b"]) and not under("/a/bc", ["/a/b"])


def _export(images: Path, name: str, digest: str) -> Path:
    folder = images / digest.replace(":", "-")
    (folder / "etc").mkdir(parents=True)
    (folder / "etc" / "os-release").write_text("debian\n")
    (folder / MANIFEST).write_text(json.dumps({"image": name, "digest": digest, **manifest_of(folder)}))
    return folder


def test_images_are_found_by_pin_or_by_their_one_export_and_verified(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    folder = _export(tmp_path / "images", "dicompose/normalize:0.1.0", DIGEST)
    engine = chrun.CharliecloudEngine()
    image, pinned = engine.resolve_image("dicompose/normalize:0.1.0", DIGEST, allow_unpinned=False, hint="h")
    assert pinned and image == ImageRef("dicompose/normalize:0.1.0", DIGEST, str(folder))
    with pytest.raises(UnpinnedImageError, match="no pin for it in"):  # found by name alone: as a Docker tag
        engine.resolve_image("dicompose/normalize:0.1.0", None, allow_unpinned=False, hint="h")
    assert engine.resolve_image("dicompose/normalize:0.1.0", None, allow_unpinned=True, hint="h") == (image, False)
    assert exported(tmp_path / "images", "dicompose/threshold:0.1.0") == []
    with pytest.raises(UsageError, match="not in the image folder") as missing:
        engine.resolve_image(
            "dicompose/normalize:0.1.0", "sha256:" + "ee" * 32, allow_unpinned=False, hint="h", tool="normalize"
        )
    # a cluster has no Docker: the advice says where an export is made, and that it may be copied here
    said = str(missing.value)
    assert f"where Docker has the image, dicompose export-charliecloud normalize --out {tmp_path / 'images'}" in said
    assert "copied there" in said
    _export(tmp_path / "images", "dicompose/normalize:0.1.0", "sha256:" + "ee" * 32)
    with pytest.raises(UsageError, match=r"holds 2 exports .* and none is pinned"):
        engine.resolve_image("dicompose/normalize:0.1.0", None, allow_unpinned=False, hint="h")
    (folder / "etc" / "os-release").write_text("edited\n")
    with pytest.raises(UsageError, match=r"differs from its export.*etc/os-release: changed since export"):
        engine.resolve_image("dicompose/normalize:0.1.0", DIGEST, allow_unpinned=False, hint="h")


def test_a_missing_image_folder_says_where_its_path_came_from(tmp_path: Path, monkeypatch):
    """Given (--image-dir, the environment, the configuration): check it; the default: name the site's folder.
    Never "give --image-dir" to a user who gave it."""
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR", str(tmp_path / "typo"))
    engine = chrun.CharliecloudEngine()
    with pytest.raises(UsageError) as given:
        engine.resolve_image("dicompose/normalize:0.1.0", DIGEST, allow_unpinned=False, hint="h", tool="normalize")
    assert f"image folder {tmp_path / 'typo'} (named by DICOMPOSE_IMAGE_DIR)" in str(given.value)
    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR_FROM", "--image-dir")  # use_image_dir says who named it
    with pytest.raises(UsageError, match=r"\(named by --image-dir\): no such folder"):
        engine.resolve_image("dicompose/normalize:0.1.0", DIGEST, allow_unpinned=False, hint="h", tool="normalize")
    monkeypatch.delenv("DICOMPOSE_IMAGE_DIR_FROM")
    assert "no such folder" in str(given.value) and "give --image-dir" not in str(given.value)
    monkeypatch.delenv("DICOMPOSE_IMAGE_DIR")
    with pytest.raises(UsageError) as default:
        engine.resolve_image("dicompose/normalize:0.1.0", DIGEST, allow_unpinned=False, hint="h", tool="normalize")
    assert f"image folder {tmp_path / 'home' / 'charliecloud'} (the default; name the site's with --image-dir" in str(
        default.value
    )


def test_a_verified_image_is_hashed_again_only_when_something_in_it_changed(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    folder = _export(tmp_path / "images", "x:1", DIGEST)
    calls = []
    real = chrun.verify_image
    monkeypatch.setattr(chrun, "verify_image", lambda f: calls.append(f) or real(f))
    assert verify_cached(folder) == [] and verify_cached(folder) == []
    assert len(calls) == 1  # the second time, the stat fingerprint matched
    target = folder / "etc" / "os-release"
    stamp = target.stat()
    target.write_text("debiaN\n")  # same size, mtime put back: the ctime still moved
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert verify_cached(folder) == ["etc/os-release: changed since export"]


def test_root_is_refused_and_auto_prefers_docker_then_apptainer_then_charliecloud(monkeypatch):
    from dicompose.engines import resolve
    from dicompose.engines.base import EngineInfo
    from dicompose.engines.registry import engine_named

    monkeypatch.setattr(chrun.os, "getuid", lambda: 0)
    engine = chrun.CharliecloudEngine()
    engine.ch_run = "/usr/bin/ch-run"
    assert not engine.info().available and "as root" in engine.info().why

    class Probed:
        def __init__(self, name: str, available: bool, missing: tuple[str, ...] = ()) -> None:
            self.name, self.available, self.missing = name, available, missing

        def info(self) -> EngineInfo:
            return EngineInfo(self.name, self.available, f"{self.name} 1.0", "" if self.available else "absent")

        def not_enforced(self) -> tuple[str, ...]:
            return self.missing

    engines = {
        "docker": Probed("docker", False),
        "apptainer": Probed("apptainer", False),
        "charliecloud": Probed("charliecloud", True, ("memory limit",)),
        "local": Probed("local", True),
    }
    monkeypatch.setattr(resolve, "engine_named", engines.__getitem__)
    chosen = resolve.resolve_engine("auto")
    assert chosen.engine is engines["charliecloud"]
    assert "docker" in chosen.why and "apptainer: absent" in chosen.why
    assert chosen.why.endswith("not enforced by charliecloud: memory limit")
    engines["apptainer"].available = True
    assert resolve.resolve_engine("auto").engine is engines["apptainer"]
    engines["docker"].available = True
    assert resolve.resolve_engine("auto").engine is engines["docker"]
    assert engine_named("local").name == "local"


def test_auto_passes_over_an_engine_without_the_images_down_to_local_and_says_why(monkeypatch):
    """A cluster node with ch-run but nothing exported (or a workstation whose images are not built): ``auto``
    tries the next engine instead of refusing the run; an engine asked for by name still refuses."""
    from dicompose.engines import resolve
    from dicompose.engines.base import EngineInfo
    from dicompose.errors import UnpinnedImageError, UsageError
    from dicompose.pipeline.images import choose_engine

    class Probed:
        isolates = True

        def __init__(self, name: str, available: bool) -> None:
            self.name, self.available = name, available

        def info(self) -> EngineInfo:
            return EngineInfo(self.name, self.available, f"{self.name} 1.0", "" if self.available else "absent")

        def not_enforced(self) -> tuple[str, ...]:
            return ()

    engines = {name: Probed(name, name != "apptainer") for name in ("docker", "apptainer", "charliecloud", "local")}
    monkeypatch.setattr(resolve, "engine_named", engines.__getitem__)
    asked: list[str] = []

    def images_of(engine: Probed) -> dict[str, tuple[None, bool]]:
        asked.append(engine.name)
        if engine.name == "docker":
            raise UnpinnedImageError("dicompose/normalize:0.1.0", "no pin recorded")
        if engine.name == "charliecloud":
            raise UsageError("image folder /shared/images: no such folder")
        return {"normalize": (None, False)}

    resolution, images = choose_engine("auto", images_of)
    assert resolution.engine is engines["local"] and images == {"normalize": (None, False)}
    assert asked == ["docker", "charliecloud", "local"]  # each resolved once, apptainer never asked
    why = resolution.why
    assert why.startswith("no container engine with the images (docker answers but image dicompose/normalize")
    assert "apptainer: absent" in why and "charliecloud answers but image folder /shared/images" in why
    assert why.endswith("running locally; no container, no isolation")

    asked.clear()
    engines["charliecloud"].name = "ready"  # an engine that has them is chosen, its images resolved once
    resolution, _ = choose_engine("auto", images_of)
    assert resolution.engine is engines["charliecloud"] and asked == ["docker", "ready"]
    assert "docker answers but image dicompose/normalize:0.1.0 is not pinned" in resolution.why
    engines["charliecloud"].name = "charliecloud"
    with pytest.raises(UsageError, match="image folder /shared/images"):
        choose_engine("charliecloud", images_of)


def test_an_image_folder_s_pins_choose_among_its_exports(tmp_path: Path, monkeypatch):
    """On a cluster without pins of its own, the export that export-charliecloud last pinned in the image folder
    runs (the site's choice, made where the images were built); the user's own pins still come first."""
    from dicompose.descriptors.descriptor import load_descriptor
    from dicompose.engines.charliecloud import PINS
    from dicompose.engines.chrun import image_pin
    from dicompose.images.pins import record_pin
    from dicompose.pipeline.images import resolve_step_image

    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    descriptor = load_descriptor("normalize")
    name = str(descriptor.container["image"])
    older, newer = "sha256:" + "01" * 32, "sha256:" + "02" * 32
    _export(tmp_path / "images", name, older)
    _export(tmp_path / "images", name, newer)
    engine = chrun.CharliecloudEngine()
    with pytest.raises(UsageError, match="none is pinned"):
        resolve_step_image(descriptor, engine, allow_unpinned=False)
    record_pin(descriptor.name, descriptor.digest, name, newer, tmp_path / "images" / PINS)
    assert (tmp_path / "images" / PINS).stat().st_mode & 0o044 == 0o044  # read by every user of the folder
    image, pinned = resolve_step_image(descriptor, engine, allow_unpinned=False)
    assert pinned and image is not None and image.digest == newer
    with pytest.raises(UsageError, match="none is pinned"):  # another tool naming the same image: ambiguous...
        engine.resolve_image(name, None, allow_unpinned=False, hint="h")
    record_pin(image_pin(name), "", name, newer, tmp_path / "images" / PINS)
    assert engine.resolve_image(name, None, allow_unpinned=False, hint="h")[0].digest == newer  # ...until pinned
    record_pin(descriptor.name, descriptor.digest, name, older)  # the user's own pin
    image, _ = resolve_step_image(descriptor, engine, allow_unpinned=False)
    assert image is not None and image.digest == older


def test_a_pin_pointing_at_another_image_s_export_is_refused(tmp_path: Path, monkeypatch):
    from dicompose.engines.charliecloud import PINS
    from dicompose.images.pins import record_pin

    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    other = "sha256:" + "0d" * 32
    _export(tmp_path / "images", "dicompose/deidentify:0.1.0", other)
    record_pin("normalize", "sha256:x", "dicompose/normalize:0.1.0", other, tmp_path / "images" / PINS)
    engine = chrun.CharliecloudEngine()
    with pytest.raises(UsageError, match=r"holds dicompose/deidentify:0.1.0 .* not dicompose/normalize:0.1.0"):
        engine.resolve_image("dicompose/normalize:0.1.0", other, allow_unpinned=False, hint="h")
    (tmp_path / "images" / PINS).write_text('{"normalize@sha256:x": "sha256:0d"}')
    with pytest.raises(UsageError, match="not a pins file"):
        engine.site_pin("normalize", "sha256:x")


def test_a_rerun_s_recorded_image_must_still_be_there_and_intact(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    folder = _export(tmp_path / "images", "dicompose/normalize:0.1.0", DIGEST)
    engine = chrun.CharliecloudEngine()
    assert engine.has_image(ImageRef("dicompose/normalize:0.1.0", DIGEST))
    assert not engine.has_image(ImageRef("dicompose/normalize:0.1.0", "sha256:" + "77" * 32))
    (folder / "etc" / "os-release").write_text("edited\n")
    with pytest.raises(UsageError, match="differs from its export"):
        engine.has_image(ImageRef("dicompose/normalize:0.1.0", DIGEST))


def test_an_image_copied_by_an_ordinary_user_loses_only_set_id_bits_and_still_verifies(tmp_path: Path):
    """cp -a, tar or rsync without root drop set-uid, set-gid and sticky bits: fewer privileges, which ch-run
    ignores anyway. Such a copy is the export; any other mode change is not."""
    from dicompose.engines.charliecloud import verify_image

    folder = tmp_path / "images" / DIGEST.replace(":", "-")
    (folder / "usr" / "bin").mkdir(parents=True)
    (folder / "usr" / "bin" / "chfn").write_bytes(b"\x7fELF")
    (folder / "usr" / "bin" / "chfn").chmod(0o4555)
    (folder / "usr" / "bin" / "chage").write_bytes(b"\x7fELF")
    (folder / "usr" / "bin" / "chage").chmod(0o2555)
    (folder / MANIFEST).write_text(json.dumps({"image": "x:1", "digest": DIGEST, **manifest_of(folder)}))
    assert json.loads((folder / MANIFEST).read_text())["modes"]["usr/bin/chfn"] == "0o4555"
    for name in ("chfn", "chage"):
        (folder / "usr" / "bin" / name).chmod(0o555)  # as a copy by an ordinary user leaves them
    assert verify_image(folder) == []
    (folder / "usr" / "bin" / "chfn").chmod(0o444)  # no longer executable: not what was exported
    assert verify_image(folder) == ["usr/bin/chfn: mode changed since export (0o4555 -> 0o444)"]


def test_a_file_made_executable_after_export_is_a_changed_image(tmp_path: Path):
    """Bytes unchanged, but a file now executable (or set-uid) by its users: refused like an edit. Manifests
    written before modes were recorded are still checked by content."""
    from dicompose.engines.charliecloud import verify_image

    folder = _export(tmp_path / "images", "dicompose/normalize:0.1.0", DIGEST)
    assert verify_image(folder) == []
    (folder / "etc" / "os-release").chmod(0o755)
    assert verify_image(folder) == ["etc/os-release: mode changed since export (0o444 -> 0o555)"]
    (folder / "etc" / "os-release").chmod(0o4444)  # set-uid gained: a change too
    assert verify_image(folder) == ["etc/os-release: mode changed since export (0o444 -> 0o4444)"]
    old = json.loads((folder / MANIFEST).read_text())
    del old["modes"]
    (folder / MANIFEST).write_text(json.dumps(old))
    assert verify_image(folder) == []


def test_a_run_names_every_image_it_lacks_at_once(tmp_path: Path, monkeypatch):
    """Two steps whose images are not exported: one error naming both (check lists them too), so the user
    exports them together; an image two steps share is named once."""
    from types import SimpleNamespace

    from dicompose.descriptors.descriptor import load_descriptor
    from dicompose.pipeline.images import step_images

    monkeypatch.setenv("DICOMPOSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DICOMPOSE_IMAGE_DIR", str(tmp_path / "images"))
    (tmp_path / "images").mkdir()
    engine = chrun.CharliecloudEngine()
    steps = [
        SimpleNamespace(name=n, descriptor=load_descriptor(t)) for n, t in [("a", "normalize"), ("b", "threshold")]
    ]
    with pytest.raises(UsageError) as both:
        step_images(steps, engine, allow_unpinned=False)  # type: ignore[arg-type]
    said = str(both.value)
    assert said.startswith("2 images cannot run: ") and "\n" not in said
    assert "export-charliecloud normalize" in said and "export-charliecloud threshold" in said
    shared = [SimpleNamespace(name=n, descriptor=load_descriptor("normalize")) for n in ("a", "b")]
    with pytest.raises(UsageError) as once:
        step_images(shared, engine, allow_unpinned=False)  # type: ignore[arg-type]
    assert str(once.value).count("export-charliecloud normalize") == 1 and "images cannot run" not in str(once.value)


def test_an_engine_passed_over_for_several_unpinned_images_is_told_without_the_option_it_may_lack():
    """``auto`` (the demo too, which takes no --allow-unpinned) says why an engine was passed over: each image
    in its own words, never "pass --allow-unpinned"."""
    from dicompose.errors import ImageProblemsError, UnpinnedImageError
    from dicompose.pipeline.images import missing_image

    def unpinned() -> None:
        raise ImageProblemsError([UnpinnedImageError(f"dicompose/{t}:0.1.0", "no pin") for t in ("a", "b")])

    said = missing_image(unpinned)
    assert said is not None and said.startswith("image dicompose/a:0.1.0 is not pinned by digest (no pin)")
    assert "dicompose/b:0.1.0" in said and "--allow-unpinned" not in said
