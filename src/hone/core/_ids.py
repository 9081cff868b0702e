"""Identifiers and stable hashing."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any


def new_id(prefix: str = "") -> str:
    """A sortable, unique id: millisecond time plus randomness."""
    stamp = f"{int(time.time() * 1000):011x}"
    return f"{prefix}{stamp}{secrets.token_hex(5)}"


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hex digest of `obj`'s canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def stable_int(*parts: object) -> int:
    """A 31-bit integer derived from `parts`, stable across processes (unlike `hash`)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
