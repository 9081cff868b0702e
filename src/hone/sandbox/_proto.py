"""Length-prefixed JSON frames: the only format spoken between host, server and sandbox processes."""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
# The one thing a session's interpreter sends the server after each cell: the nonce that came with
# the cell, then the cell's return code. Fixed-size binary, so nothing in it needs parsing.
CELL_RECORD = struct.Struct(">16si")
NONCE_BYTES = 16

Msg = dict[str, Any]


def encode(msg: Msg) -> bytes:
    # ensure_ascii keeps lone surrogates (legal in a Python str) encodable.
    data = json.dumps(msg, separators=(",", ":")).encode("ascii")
    return _HEADER.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a blocking fd."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(fd: int, msg: Msg) -> None:
    write_all(fd, encode(msg))


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly n bytes from a blocking fd; None on EOF."""
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(fd: int) -> Msg | None:
    """Read one frame from a blocking fd; None on EOF."""
    head = read_exact(fd, _HEADER.size)
    if head is None:
        return None
    (size,) = _HEADER.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is too large")
    body = read_exact(fd, size)
    if body is None:
        return None
    msg = json.loads(body)
    if not isinstance(msg, dict):
        raise ValueError("frame is not a JSON object")
    return msg


class FrameBuffer:
    """Reassembles frames from the chunks a non-blocking reader gets."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Msg]:
        self._buf += data
        out: list[Msg] = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes is too large")
            end = _HEADER.size + size
            if len(self._buf) < end:
                break
            msg = json.loads(bytes(self._buf[_HEADER.size : end]))
            del self._buf[:end]
            if not isinstance(msg, dict):
                raise ValueError("frame is not a JSON object")
            out.append(msg)
        return out
