"""The audit log detects every kind of tampering and never holds a raw patient identifier."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from dicompose.records.audit import AuditLog, load_keys, read_entries, verify


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit", load_keys(tmp_path / "home"))
    for i in range(5):
        audit.append(
            "read",
            obj={"patient": "DOE^JOHN-123", "study": f"1.2.3.{i}", "path": f"/in/{i}.dcm", "sha256": "ab" * 32},
            tool="normalize",
            run="r1",
        )
    audit.checkpoint()
    return audit


def lines(log: AuditLog) -> list[bytes]:
    return log.path.read_bytes().splitlines()


def rewrite(log: AuditLog, new: list[bytes]) -> None:
    log.path.write_bytes(b"".join(line + b"\n" for line in new))


def test_intact_log_verifies_and_holds_no_raw_identifiers(log: AuditLog):
    verdict = verify(log.folder)
    assert verdict.ok and verdict.entries == 5 and verdict.checkpoints == 1
    text = log.path.read_text()
    assert "DOE" not in text and "1.2.3." not in text
    entries = read_entries(log.folder)
    assert entries[0]["object"]["patient"] == entries[4]["object"]["patient"]  # same key, same pseudonym
    assert entries[0]["object"]["patient"].startswith("p-")


def test_an_edited_byte_is_found(log: AuditLog):
    data = lines(log)
    data[2] = data[2].replace(b'"read"', b'"export"')
    rewrite(log, data)
    verdict = verify(log.folder)
    assert not verdict.ok and verdict.problem.startswith("line 3")


@pytest.mark.parametrize(
    ("mutate", "line"),
    [
        (lambda d: d[:1] + d[2:], "line 2"),  # deleted
        (lambda d: [d[0], d[2], d[1], *d[3:]], "line 2"),  # reordered
        (lambda d: [d[0], d[0], *d[1:]], "line 2"),  # inserted (a copy)
    ],
)
def test_deleted_reordered_or_inserted_entries_are_found(log: AuditLog, mutate, line: str):
    rewrite(log, mutate(lines(log)))
    verdict = verify(log.folder)
    assert not verdict.ok and verdict.problem.startswith(line)


def test_a_truncated_tail_is_found_against_the_signed_checkpoint(log: AuditLog):
    rewrite(log, lines(log)[:3])
    verdict = verify(log.folder)
    assert not verdict.ok and "truncated" in verdict.problem


def test_a_forged_checkpoint_is_found(log: AuditLog):
    record = json.loads(log.checkpoints.read_text())
    record["seq"] = 3
    log.checkpoints.write_text(json.dumps(record) + "\n")
    assert "bad signature" in verify(log.folder).problem


def test_a_rewritten_chain_still_fails_the_checkpoint(log: AuditLog, tmp_path: Path):
    """An attacker who recomputes every hash after an edit is caught by the signed checkpoint."""
    from dicompose.records.audit import GENESIS, entry_hash

    entries = read_entries(log.folder)
    entries[1]["action"] = "export"
    previous = GENESIS
    for entry in entries:
        entry["prev"] = previous
        entry["hash"] = previous = entry_hash(previous, entry)
    rewrite(log, [json.dumps(e, sort_keys=True, separators=(",", ":")).encode() for e in entries])
    verdict = verify(log.folder)
    assert not verdict.ok and "does not match signed checkpoint" in verdict.problem


def test_concurrent_writers_keep_one_chain(tmp_path: Path):
    keys = load_keys(tmp_path / "home")
    writers = [AuditLog(tmp_path / "audit", keys) for _ in range(4)]

    def write(audit: AuditLog) -> None:
        for _ in range(25):
            audit.append("execute", obj={"step": "s"})

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdict = verify(tmp_path / "audit")
    assert verdict.ok and verdict.entries == 100


def test_unknown_actions_are_refused(log: AuditLog):
    with pytest.raises(ValueError, match="unknown audit action"):
        log.append("delete")


def test_each_line_is_the_canonical_json_the_chain_hashes(tmp_path: Path):
    """append_many encodes each entry once (split around "hash"): the lines must be exactly the canonical JSON
    of the entries, hashed as entry_hash does, with pseudonyms as HMAC-SHA256 always gave them."""
    import hashlib
    import hmac

    from dicompose.records.audit import GENESIS, _canonical, entry_hash

    keys = load_keys(tmp_path / "home")
    audit = AuditLog(tmp_path / "audit", keys)
    objects = [
        {"patient": "DOE^JOHN", "study": "1.2.3", "series": None, "instance": "", "path": "/in/ü é.dcm", "sha256": "0"},
        None,
        {"path": '/in/"quoted",\\name.dcm'},
        {"name": "step", "image": "sha256:abc", "hash": "not the entry's"},
    ]
    audit.append_many([("read", obj, "normalize", "img", "run-1", "ok") for obj in objects])
    audit.append("execute", obj=None, tool=None, outcome="failed")
    previous = GENESIS
    for raw in lines(audit):
        entry = json.loads(raw)
        assert raw == _canonical(entry)
        assert entry["prev"] == previous and entry["hash"] == entry_hash(previous, entry)
        previous = entry["hash"]
    first = json.loads(lines(audit)[0])["object"]
    old_pseudonym = "p-" + hmac.new(keys.pseudonym_key, b"DOE^JOHN", hashlib.sha256).hexdigest()[:24]
    assert first["patient"] == old_pseudonym and first["series"] is None and first["instance"] is None
    assert verify(audit.folder).ok
