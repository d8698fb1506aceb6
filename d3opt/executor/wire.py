"""How tensors travel: one message per link use, a small header, then raw tensor bytes.

A message is ``[4-byte big-endian header length][JSON header][payload]``. The header lists
``[name, destination, dtype, shape]`` per tensor; the payload is each tensor's raw bytes
(C-contiguous, native byte order) back to back, so the payload size is exactly what
:func:`d3opt.evaluate` counts (``numel * itemsize``). The header is the only overhead: a
few dozen bytes per tensor (:func:`header_bytes`).

>>> import torch
>>> data = pack([("x", "edge", torch.arange(6.0).reshape(2, 3))])
>>> [(n, d, t.tolist()) for n, d, t in unpack(data)]
[('x', 'edge', [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])]
>>> len(data) - header_bytes(data)
24
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence

import torch

_LENGTH = struct.Struct(">I")


def pack(entries: Sequence[tuple[str, str, torch.Tensor]]) -> bytes:
    """Serialise ``(name, destination, tensor)`` entries into one message."""
    header, chunks = [], []
    for name, dest, tensor in entries:
        tensor = tensor.detach().contiguous()
        header.append([name, dest, str(tensor.dtype).removeprefix("torch."), list(tensor.shape)])
        chunks.append(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    text = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([_LENGTH.pack(len(text)), text, *chunks])


def header_bytes(data: bytes) -> int:
    """Bytes of ``data`` that are header (length prefix and JSON), not tensor payload."""
    return _LENGTH.size + _LENGTH.unpack_from(data)[0]


def unpack(data: bytes) -> list[tuple[str, str, torch.Tensor]]:
    """The ``(name, destination, tensor)`` entries of a message made by :func:`pack`.

    Each tensor owns fresh memory (never a view of ``data``).
    """
    start = header_bytes(data)
    header = json.loads(bytes(data[_LENGTH.size:start]))
    buffer = bytearray(data[start:])
    entries, offset = [], 0
    for name, dest, dtype, shape in header:
        dtype = getattr(torch, dtype)
        count = dtype.itemsize * int(torch.Size(shape).numel())
        raw = torch.frombuffer(buffer, dtype=torch.uint8, count=count, offset=offset) if count \
            else torch.empty(0, dtype=torch.uint8)
        entries.append((name, dest, raw.view(dtype).reshape(shape).clone()))
        offset += count
    return entries
