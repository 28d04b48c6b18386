"""Settings, in one place: the command line over the environment over the configuration files over defaults.

Configuration files (TOML) are ``./dicompose.toml`` (the project's, in the folder dicompose runs from) over
``$DICOMPOSE_HOME/config.toml`` (the user's) over ``/etc/dicompose/config.toml`` (the site's, set by its
staff: the image folder, the SLURM partition and prologue; ``DICOMPOSE_SITE_CONFIG`` names another); a key in
an upper file replaces the same key in a lower one, table by table. Every table and key is checked (a typo is
an error naming the file, never ignored): see :data:`KEYS` and docs/configuration.md.
Values are read when asked for, never cached globally.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicompose.errors import UsageError

PROJECT_CONFIG = "dicompose.toml"
HOME_CONFIG = "config.toml"
SITE_CONFIG = "/etc/dicompose/config.toml"
#: table → key → (the type a value must have, what it means). The documentation is generated from nothing:
#: keep docs/configuration.md in step (tests/unit/test_config.py checks that every key is documented).
KEYS: dict[str, dict[str, tuple[type, str]]] = {
    "run": {
        "workers": (int, "cores to use in all (default: all cores); as --workers"),
        "engine": (str, "auto | docker | apptainer | charliecloud | local; as --engine"),
        "image_dir": (str, "the folder of exported Charliecloud images (on a shared filesystem); as --image-dir"),
        "scheduler": (str, "local | dask | slurm | tcp://HOST:PORT; as --scheduler"),
    },
    "audit": {
        "forward": (
            str,
            "send each audit entry as it is written to a log collector: udp://HOST:PORT, "
            "tcp://HOST:PORT or unix:///dev/log (RFC 5424 syslog); as DICOMPOSE_AUDIT_FORWARD",
        ),
    },
    "pacs": {
        "aet": (str, "our (calling) AE title, 1-16 characters; as --aet (default DICOMPOSE)"),
        "timeout": (int, "seconds to wait for a PACS to connect, answer or send; as --timeout (default 30)"),
        "attempts": (int, "tries per association when a PACS is down or does not answer (default 3)"),
        "tls_ca": (str, "dicom+tls: the CA certificate that signed the PACS's; as --tls-ca"),
        "tls_cert": (str, "dicom+tls: our client certificate; as --tls-cert"),
        "tls_key": (str, "dicom+tls: its private key; as --tls-key"),
        "max_pdu": (
            int,
            "the largest PDU we accept, in bytes (0: no limit; default 16382, pynetdicom's); as --max-pdu",
        ),
        "per_association": (
            int,
            "push: instances sent per association at most, a new one after (0: no limit, the default); as "
            "--per-association",
        ),
        "move_dest": (
            str,
            "AET:PORT: where we receive by C-MOVE when a PACS refuses C-GET (an AE title the PACS knows, a port it "
            "reaches); --move-dest uses C-MOVE at once",
        ),
        "dicomweb_auth_file": (str, "DICOMweb: a file holding USER:PASSWORD or 'Bearer TOKEN'; as --auth-file"),
    },
    "slurm": {
        "partition": (str, "the partition (queue) worker jobs go to"),
        "account": (str, "the account they are charged to"),
        "walltime": (str, "each worker job's time limit, HH:MM:SS"),
        "memory": (str, "memory per worker job, e.g. 8GB"),
        "cores": (int, "cores per worker job"),
        "gres": (str, "generic resources per worker job, e.g. gpu:1"),
        "jobs": (int, "a fixed number of worker jobs"),
        "min_jobs": (int, "adaptive: at least this many worker jobs"),
        "max_jobs": (int, "adaptive: at most this many worker jobs"),
        "extra": (list, "extra #SBATCH lines, e.g. ['--qos=normal']"),
        "prologue": (list, "shell lines each worker job runs first, e.g. ['module load charliecloud']"),
    },
}

MAX_WORKERS = 256  # more processes than any machine this runs on has cores: a typo, not a wish
ENGINES = ("auto", "docker", "apptainer", "charliecloud", "local")
SCHEDULERS = ("local", "dask", "slurm")  # or tcp://HOST:PORT
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


def _one_of(choices: tuple[str, ...], tcp: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in choices or (tcp and str(value).startswith("tcp://")):
            return None
        return f"must be one of {', '.join(choices)}{' or tcp://HOST:PORT' if tcp else ''}, not {value!r}"

    return check


_MOVE_DEST = re.compile(r"^[\x20-\x7e]{1,16}:([1-9][0-9]{0,4})$")


def _matches(pattern: re.Pattern[str], example: str) -> Callable[[Any], str | None]:
    return lambda value: None if pattern.match(str(value)) else f"expected {example}, not {value!r}"


#: Whole-number keys where 0 means "no limit" (every other one must be 1 or more).
ZERO_MEANS_NO_LIMIT = frozenset({("pacs", "max_pdu"), ("pacs", "per_association")})

#: (table, key) → a check of the value beyond its type (None: fine; else what is wrong). Shared by the files
#: and the command line (``--slurm KEY=VALUE``), so both say the same.
VALUE_CHECKS: dict[tuple[str, str], Callable[[Any], str | None]] = {
    ("run", "workers"): lambda v: None if v <= MAX_WORKERS else f"must be at most {MAX_WORKERS}, not {v}",
    ("run", "engine"): _one_of(ENGINES),
    ("run", "scheduler"): _one_of(SCHEDULERS, tcp=True),
    ("slurm", "walltime"): _matches(_WALLTIME, "HH:MM:SS or D-HH:MM:SS"),
    ("slurm", "memory"): lambda v: (
        _matches(_MEMORY, "a size such as 8GB")(v)
        or (f"must be more than nothing, not {v!r}" if float(re.split(r"\s*[A-Za-z]", str(v))[0]) == 0 else None)
    ),
    ("audit", "forward"): lambda v: (
        None
        if str(v).split("://")[0] in ("udp", "tcp", "unix") and "://" in str(v)
        else f"expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH, not {v!r}"
    ),
    ("pacs", "timeout"): lambda v: None if v <= 86400 else f"must be at most 86400 (a day), not {v}",
    ("pacs", "move_dest"): _matches(_MOVE_DEST, "AET:PORT, e.g. DICOMPOSE:11112"),
    ("run", "image_dir"): lambda v: None if str(v).strip() else "must name a folder, not an empty string",
}


def value_problem(table: str, key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``[table] key`` (its type, then its value), or None."""
    kind = KEYS[table][key][0]
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        return f"must be {_kind(kind)}, not {_toml(value)}"
    if isinstance(value, list) and not all(isinstance(item, str) for item in value):
        return "must be a list of strings"
    if isinstance(value, int) and value < (0 if (table, key) in ZERO_MEANS_NO_LIMIT else 1):
        least = "0 (no limit)" if (table, key) in ZERO_MEANS_NO_LIMIT else "1"
        return f"must be {least} or more, not {value}"
    check = VALUE_CHECKS.get((table, key))
    return check(value) if check else None


def _toml(value: Any) -> str:
    """A value as the file spells it (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


#: Root for UIDs dicompose derives. pydicom's root is registered for exactly this use (derived, generated UIDs).
UID_ROOT = "1.2.826.0.1.3680043.8.498."


@dataclass(frozen=True)
class Settings:
    """Run-time settings; construct with :func:`load_settings` so environment overrides apply."""

    workers: int
    uid_root: str = UID_ROOT


def default_workers() -> int:
    """Use every core the process may run on (cgroup/affinity aware where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def data_home() -> Path:
    """Where dicompose keeps machine-level state (image pins, caches): ``DICOMPOSE_HOME`` or XDG data."""
    explicit = os.environ.get("DICOMPOSE_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "dicompose"


def cache_home() -> Path:
    """Downloaded wheelhouses and other re-creatable data: ``XDG_CACHE_HOME`` or ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dicompose"


def config_files(cwd: Path | None = None) -> list[Path]:
    """The configuration files that exist, lowest precedence first."""
    try:
        here = cwd or Path.cwd()
    except FileNotFoundError:
        raise UsageError("the current folder no longer exists: cd into one that does") from None
    named = os.environ.get("DICOMPOSE_SITE_CONFIG")
    if named and not Path(named).is_file():  # set on purpose: a typo must not drop the site's settings
        raise UsageError(f"DICOMPOSE_SITE_CONFIG={named}: no such file (the site's configuration file)")
    site = Path(named or SITE_CONFIG)
    candidates = [site, data_home() / HOME_CONFIG, here / PROJECT_CONFIG]
    for path in candidates:
        if path.exists() and not path.is_file():
            raise UsageError(f"{path}: not a file (a configuration file is a TOML file)")
        if path.is_symlink() and not path.exists():  # a settings file that is meant to be there, but is not
            raise UsageError(f"{path}: a link to {path.readlink()}, which does not exist")
    return [path for path in candidates if path.is_file()]


def load_config(cwd: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every table of the configuration files, merged key by key (the project's over the user's over the
    site's), checked."""
    merged: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for path in config_files(cwd):
        st = path.stat()
        try:
            document = _read(path, st.st_mtime_ns, st.st_size)
        except UsageError as exc:  # every file's problems at once, not one file per attempt
            errors.append(str(exc))
            continue
        for table, values in document.items():
            merged.setdefault(table, {}).update(values)
    if errors:
        raise UsageError("; ".join(errors))
    return merged


@functools.lru_cache(maxsize=8)
def _read(path: Path, _mtime_ns: int, _size: int) -> Mapping[str, dict[str, Any]]:
    """One file, parsed and checked once per version (a command asks for several settings)."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is not an error
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the configuration ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    problems = []
    for table, values in document.items():
        known = KEYS.get(table)
        if not isinstance(values, dict):
            where = next((t for t, keys in KEYS.items() if table in keys), None)
            problems.append(f"{table}: a key outside any table" + (f" (put it under [{where}])" if where else ""))
        elif known is None:
            problems.append(f"[{table}] is not a table dicompose reads (tables: {', '.join(KEYS)})")
        else:
            for key, value in values.items():
                if key not in known:
                    problems.append(f"[{table}] {key}: unknown key (keys: {', '.join(known)})")
                elif (problem := value_problem(table, key, value)) is not None:
                    problems.append(f"[{table}] {key}: {problem}")
    if problems:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return document


def _kind(kind: type) -> str:
    return {int: "a whole number", str: "a string", list: "a list of strings", bool: "true or false"}[kind]


def load_settings(cwd: Path | None = None) -> Settings:
    """Settings from defaults, the configuration files' ``[run] workers``, and ``DICOMPOSE_WORKERS`` over both."""
    raw = os.environ.get("DICOMPOSE_WORKERS", "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
            raise UsageError(f"DICOMPOSE_WORKERS={raw!r}: must be a whole number from 1 to {MAX_WORKERS}")
        return Settings(workers=int(raw))
    configured = load_config(cwd).get("run", {}).get("workers")
    return Settings(workers=int(configured) if configured else default_workers())


def configured(table: str, key: str, given: Any, default: Any, cwd: Path | None = None) -> Any:
    """A command-line value (``given``, None when not given) over the configuration files over ``default``."""
    if given is not None:
        return given
    return load_config(cwd).get(table, {}).get(key, default)


#: Who named the image folder (for a message about a folder that is not there): set with it.
IMAGE_DIR_FROM = "DICOMPOSE_IMAGE_DIR_FROM"


def use_image_dir(given: Path | None, cwd: Path | None = None) -> None:
    """``--image-dir`` over ``DICOMPOSE_IMAGE_DIR`` over the files' ``image_dir``, made the environment's: every
    engine reads it there, and SLURM worker jobs inherit it."""
    if given is None and os.environ.get("DICOMPOSE_IMAGE_DIR"):
        os.environ.setdefault(IMAGE_DIR_FROM, "DICOMPOSE_IMAGE_DIR")
        return
    value = configured("run", "image_dir", given, None, cwd)
    if value is not None:
        os.environ["DICOMPOSE_IMAGE_DIR"] = str(Path(value).expanduser().absolute())
        os.environ[IMAGE_DIR_FROM] = "--image-dir" if given is not None else "image_dir in the configuration"
