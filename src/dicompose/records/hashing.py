"""Content hashing for cache keys: a versioned, type- and length-prefixed canonical encoding.

Bump :data:`HASH_VERSION` whenever the key recipe changes, so old cache entries are never mistaken for new.
The encoding is unambiguous (``["ab", "c"]`` and ``["a", "bc"]`` differ) and independent of dict order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

HASH_VERSION = 1
_BLOCK = 1 << 20


def _encode(value: object, out: list[bytes]) -> None:
    kind = type(value)
    if kind is str:  # the common cases first (a task's key encodes thousands of [name, sha256] pairs)
        data = value.encode()  # type: ignore[attr-defined]
        out.append(b"S%d:" % len(data) + data)
        return
    if kind is list or kind is tuple:
        out.append(b"L%d:" % len(value))  # type: ignore[arg-type]
        for item in value:  # type: ignore[attr-defined]
            if type(item) in (list, tuple) and len(item) == 2 and type(item[0]) is str and type(item[1]) is str:
                first, second = item[0].encode(), item[1].encode()  # a [name, sha256] pair: the same bytes, inline
                out.append(b"L2:S%d:%sS%d:%s" % (len(first), first, len(second), second))
            else:
                _encode(item, out)
        return
    if value is None:
        out.append(b"N")
    elif isinstance(value, bool):
        out.append(b"B1" if value else b"B0")
    elif isinstance(value, int):
        text = str(value).encode()
        out.append(b"I%d:" % len(text) + text)
    elif isinstance(value, float):
        text = (str(int(value)) if value.is_integer() else repr(value)).encode()  # 1.0 and 1 mean the same here
        out.append(b"I%d:" % len(text) + text if value.is_integer() else b"F%d:" % len(text) + text)
    elif isinstance(value, str):
        data = value.encode()
        out.append(b"S%d:" % len(data) + data)
    elif isinstance(value, bytes):
        out.append(b"Y%d:" % len(value) + value)
    elif isinstance(value, Mapping):
        out.append(b"M%d:" % len(value))
        for key in sorted(value, key=str):
            _encode(str(key), out)
            _encode(value[key], out)
    elif isinstance(value, Sequence):
        out.append(b"L%d:" % len(value))
        for item in value:
            _encode(item, out)
    else:
        raise TypeError(f"cannot hash {type(value).__name__}")


def canonical_hash(value: object) -> str:
    """sha256 hex of the canonical encoding of ``value`` (with the hash version folded in)."""
    parts: list[bytes] = []
    _encode({"hash-version": HASH_VERSION, "value": value}, parts)
    return hashlib.sha256(b"".join(parts)).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
