"""``dicompose pacs echo|pull|push``: a PACS over DICOM networking, from the command line.

``URL`` is ``dicom://CALLED_AET@HOST:PORT``; our calling AE title is ``--aet`` or the configuration's ``[pacs]
aet``. Every transfer is in the machine's audit log (which PACS, which studies as keyed pseudonyms, how many
instances); nothing printed names a patient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from dicompose.cli.console import emit_json, plural, stderr, stdout
from dicompose.errors import PacsError

if TYPE_CHECKING:
    from dicompose.pacs.association import NetworkSettings

app = typer.Typer(help="A PACS over DICOM networking: echo, pull a study, push a folder.", no_args_is_help=True)

AetOption = Annotated[
    str | None, typer.Option("--aet", help="Our (calling) AE title (default: the configuration's, else DICOMPOSE).")
]
TimeoutOption = Annotated[
    int | None,
    typer.Option(
        "--timeout", min=1, max=86400, help="Seconds to wait for the PACS (default: 30, or the configuration's)."
    ),
]
CaOption = Annotated[
    Path | None, typer.Option("--tls-ca", help="dicom+tls: the CA certificate that signed the PACS's (PEM).")
]
CertOption = Annotated[
    Path | None, typer.Option("--tls-cert", help="dicom+tls: our client certificate (PEM), if the PACS asks for one.")
]
KeyOption = Annotated[
    Path | None, typer.Option("--tls-key", help="dicom+tls: its private key (PEM; default: in the certificate file).")
]
AuthOption = Annotated[
    Path | None,
    typer.Option(
        "--auth-file",
        help="DICOMweb: a file holding USER:PASSWORD or 'Bearer TOKEN' (else $DICOMPOSE_DICOMWEB_AUTH; never on the "
        "command line).",
    ),
]
AttemptsOption = Annotated[
    int | None,
    typer.Option("--attempts", min=1, help="Tries per association when the PACS is down or silent (default 3)."),
]


MaxPduOption = Annotated[
    int | None,
    typer.Option("--max-pdu", min=0, help="Largest PDU we accept, bytes (0: no limit; default 16382)."),
]


def _settings(
    url: str,
    aet: str | None,
    timeout: int | None,
    attempts: int | None,
    tls: tuple[Path | None, Path | None, Path | None] = (None, None, None),
    max_pdu: int | None = None,
    per_association: int | None = None,
) -> NetworkSettings:
    from dicompose.errors import UsageError
    from dicompose.pacs.association import configured_settings
    from dicompose.pacs.endpoints import name_of

    address = name_of(url)  # checks the URL, whichever kind
    if any(tls) and not url.startswith(("dicom+tls://", "dicomweb+https://")):
        raise UsageError(
            f"--tls-ca, --tls-cert and --tls-key are for dicom+tls:// or dicomweb+https:// URLs, not {address}"
        )
    return configured_settings(aet, timeout, attempts, tls, max_pdu, per_association)


def _auth(given: Path | None) -> Path | None:
    from dicompose.config import configured

    value = configured("pacs", "dicomweb_auth_file", given, None)
    return Path(value).expanduser() if value is not None else None


@contextlib.contextmanager
def _audited(action: str, pacs: str, made: Path | None = None) -> Iterator[None]:
    """A transfer that ends in an error or Ctrl-C is audited too, for what it moved before the end, and says
    so: how many instances were moved, and that running the same command again finishes it (only what is
    missing moves). A pull that received nothing leaves no ``--out`` folder it made (``made``)."""
    try:
        yield
    except BaseException as exc:
        partial = getattr(exc, "partial", None)
        moved = sum(partial.studies.values()) if partial is not None else 0
        if partial is not None:
            _audit(action, pacs, partial.studies, outcome="interrupted")
        if made is not None:
            with contextlib.suppress(OSError):
                made.rmdir()  # only if empty
        verb = "received" if action == "receive" else "stored"
        done = f"{moved} {plural(moved, 'instance')} {verb} (whole files only)" if moved else f"nothing {verb}"
        if isinstance(exc, KeyboardInterrupt):
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            stderr.print(f"interrupted: {done}; run the same command again to finish", highlight=False)
            raise typer.Exit(130) from None
        if isinstance(exc, PacsError) and moved:
            raise PacsError(f"{exc}; {done} before it: run the same command again to finish") from None
        raise


def _audit(action: str, pacs: str, studies: dict[str, int], outcome: str = "ok") -> None:
    """One entry per study: who, which PACS, the study as a keyed pseudonym, how many instances."""
    from dicompose.records.audit import Item
    from dicompose.tools.batch_audit import open_machine_audit

    audit = open_machine_audit()
    if audit is not None and studies:
        items: list[Item] = [
            (action, {"pacs": pacs, "study": study, "instances": n}, "pacs", None, None, outcome)
            for study, n in studies.items()
        ]
        audit.append_many(items)


@app.command("echo")
def echo_command(
    url: Annotated[str, typer.Argument(help="dicom://CALLED_AET@HOST:PORT or dicomweb+https://HOST/PREFIX")],
    aet: AetOption = None,
    timeout: TimeoutOption = None,
    attempts: AttemptsOption = None,
    tls_ca: CaOption = None,
    tls_cert: CertOption = None,
    tls_key: KeyOption = None,
    auth_file: AuthOption = None,
) -> None:
    """C-ECHO: is the PACS there, and does it accept our AE title?"""
    from dicompose.pacs.endpoints import echo, is_web, name_of

    settings = _settings(url, aet, timeout, attempts, (tls_ca, tls_cert, tls_key))
    seconds = echo(url, settings, _auth(auth_file))
    what = "QIDO-RS" if is_web(url) else "C-ECHO"
    stdout.print(f"{escape(name_of(url))}: {what} answered in {seconds * 1000:.0f} ms")


@app.command("pull")
def pull_command(
    url: Annotated[str, typer.Argument(help="dicom://CALLED_AET@HOST:PORT or dicomweb+https://HOST/PREFIX")],
    study: Annotated[str, typer.Option("--study", help="Study Instance UID.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder: OUT/STUDY/SERIES/INSTANCE.dcm.")],
    series: Annotated[str | None, typer.Option("--series", help="Only this Series Instance UID.")] = None,
    move_dest: Annotated[
        str | None,
        typer.Option("--move-dest", help="AET:PORT: receive by C-MOVE on this port (an AE title the PACS knows)."),
    ] = None,
    aet: AetOption = None,
    timeout: TimeoutOption = None,
    attempts: AttemptsOption = None,
    tls_ca: CaOption = None,
    tls_cert: CertOption = None,
    tls_key: KeyOption = None,
    auth_file: AuthOption = None,
    max_pdu: MaxPduOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Retrieve a study (or one series) by C-GET, or by C-MOVE; whole files only, idempotent."""
    from dicompose.pacs.address import check_uid
    from dicompose.pacs.endpoints import name_of, pull

    settings = _settings(url, aet, timeout, attempts, (tls_ca, tls_cert, tls_key), max_pdu)
    check_uid(study, "--study")
    if series is not None:
        check_uid(series, "--series")
    from dicompose.fileio import check_writable_folder

    fresh = not out.exists()
    check_writable_folder(out, "--out")
    with _audited("receive", name_of(url), out if fresh else None):
        report = pull(url, settings, study, out, series=series, move_dest=move_dest, auth_file=_auth(auth_file))
    _audit("receive", report.pacs, report.studies)
    if report.fell_back:
        stderr.print(f"note: {escape(report.fell_back)}", highlight=False)
    if as_json:
        payload = {"pacs": report.pacs, "received": report.received, "already_present": report.present}
        emit_json("dicompose.pacs-pull/1", {**payload, "failed": report.failed, "out": str(out)})
    else:
        stdout.print(
            f"{escape(report.pacs)}: {report.received} received, {report.present} already present"
            + (
                f", {report.failed} the PACS could not send (an encoding we did not accept? try --move-dest "
                "AET:PORT, or DICOMweb)"
                if report.failed
                else ""
            )
            + f" → {escape(str(out))}"
        )
    if report.failed:
        raise typer.Exit(1)


@app.command("push")
def push_command(
    folder: Annotated[Path, typer.Argument(help="A DICOM file or a folder of them.")],
    to: Annotated[str, typer.Option("--to", help="dicom://CALLED_AET@HOST:PORT or dicomweb+https://HOST/PREFIX")],
    aet: AetOption = None,
    timeout: TimeoutOption = None,
    attempts: AttemptsOption = None,
    tls_ca: CaOption = None,
    tls_cert: CertOption = None,
    tls_key: KeyOption = None,
    auth_file: AuthOption = None,
    max_pdu: MaxPduOption = None,
    per_association: Annotated[
        int | None,
        typer.Option("--per-association", min=0, help="Instances per association at most (0: no limit, default)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report, one entry per file.")] = False,
) -> None:
    """C-STORE every DICOM file; each instance stored, already present, or refused (with the PACS's status)."""
    from dicompose.errors import UsageError
    from dicompose.pacs.endpoints import name_of, push
    from dicompose.pacs.store import NOT_DICOM, PRESENT, STORED
    from dicompose.walk import walk

    settings = _settings(to, aet, timeout, attempts, (tls_ca, tls_cert, tls_key), max_pdu, per_association)
    ignored: list[tuple[Path, str]] = []  # links leading out of the folder, and the like: said, never sent
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        from dicompose.walk import Found

        listed = list(walk(folder, [folder]))
        files = [Path(item.path) for item in listed if isinstance(item, Found)]
        ignored = [(Path(item.path), f"skipped ({item.reason})") for item in listed if not isinstance(item, Found)]
    else:
        raise UsageError(f"{folder}: no such file or folder")
    with _audited("send", name_of(to)):
        report = push(to, files, settings, _auth(auth_file))
    report.results.extend(ignored)
    _audit("send", report.pacs, report.studies)
    failed = report.not_stored
    if as_json:
        entries = [{"file": str(path), "outcome": said} for path, said in sorted(report.results)]
        emit_json("dicompose.pacs-push/1", {"pacs": report.pacs, "files": entries})
    else:
        for path, said in failed:
            stdout.print(f"{escape(str(path))}: {escape(said)}")
        summary = f"{report.count(STORED)} stored, {report.count(PRESENT)} already present"
        if skipped := report.count(NOT_DICOM):
            summary += f", {skipped} skipped (not DICOM)"
        for path, said in ignored:
            stdout.print(f"{escape(str(path))}: {escape(said)}")
        if ignored:
            summary += f", {len(ignored)} skipped (not read)"
        stdout.print(f"{escape(report.pacs)}: {summary}" + (f", {len(failed)} not stored" if failed else ""))
    if failed:
        raise typer.Exit(1)
