"""Where a launch's files appear to the step: host paths mapped to neutral paths inside the container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dicompose.engines.base import Mount
from dicompose.engines.hardening import INPUT_ROOT


class PathMap:
    """Host path → the path the step sees, through read-only mounts at neutral paths (no patient data in them).

    The batch files' folders are mounted (one mount per folder, whatever the number of files); any other File
    parameter (a key, a table) is mounted as that one file, so its folder's other contents stay invisible.
    """

    def __init__(
        self, files: list[str], extra: list[str], isolates: bool, staged: Mapping[str, str] | None = None
    ) -> None:
        self.isolates = isolates
        # a symbolic link (one the walk allowed) is mounted as its target file under the link's own name: the
        # container sees what the local engine reads, named as the host tool names it
        links = {f for f in files if Path(f).is_symlink()} if isolates else set()
        folders = sorted({str(Path(f).parent) for f in files if f not in links})
        folder_mounts = [Mount(Path(folder), f"{INPUT_ROOT}/{i}") for i, folder in enumerate(folders)]
        singles = sorted(set(extra))
        targets = {f: f"{INPUT_ROOT}/p{i}/{Path(f).name}" for i, f in enumerate(singles)}
        targets.update({f: f"{INPUT_ROOT}/l{i}/{Path(f).name}" for i, f in enumerate(sorted(links))})
        staged = {**(staged or {}), **{f: os.path.realpath(f) for f in links}}
        # a private file is mounted from a copy the container user may read
        file_mounts = [Mount(Path(staged.get(f, f)), target) for f, target in targets.items()]
        self.mounts = (*folder_mounts, *file_mounts)
        self._folders = {m.source.as_posix(): m.target for m in folder_mounts}
        self._files = {Path(f).as_posix(): target for f, target in targets.items()}

    def __call__(self, path: Path) -> str:
        if not self.isolates:
            return str(path)
        absolute = path.absolute()
        return self._files.get(absolute.as_posix()) or f"{self._folders[absolute.parent.as_posix()]}/{absolute.name}"

    def to_host(self, text: str) -> str:
        """Container paths in a message → host paths (errors name the user's files, not ours)."""
        for target, source in sorted(self._folders.items(), key=lambda item: -len(item[1])):
            text = text.replace(source + "/", target + "/")
        for target, source in self._files.items():
            text = text.replace(source, target)
        return text
