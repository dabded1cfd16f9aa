"""Names on the NATS side: subject tokens for ids, stream, bucket and subject names.

Every name starts with the backplane's ``prefix`` (default ``roost``), so that
several Roost installations (or tests) can share one NATS cluster.

Device and group ids may hold ``. : @ ~``, which are not allowed in a NATS
subject token or KV key. :func:`token` escapes them reversibly with ``=XX``
(hex), so an id is always exactly one token made of ``[A-Za-z0-9_=-]``.
"""

from __future__ import annotations

import zlib

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def token(value: str) -> str:
    """One subject token / KV key for an id; reversible with :func:`untoken`."""
    if all(c in _SAFE for c in value):
        return value
    return "".join(c if c in _SAFE else f"={ord(c):02X}" for c in value)


def untoken(text: str) -> str:
    if "=" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "=":
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def shard_of(value: str, shards: int) -> int:
    """A stable shard (0 .. shards-1) for an id, the same on every node and version."""
    return zlib.crc32(value.encode()) % shards


class Names:
    """All stream, bucket and subject names of one Roost installation."""

    __slots__ = ("prefix", "stream_prefix")

    def __init__(self, prefix: str = "roost") -> None:
        if not prefix or not all(c in _SAFE for c in prefix):
            raise ValueError(f"invalid NATS prefix {prefix!r}: use letters, digits, _ or -")
        self.prefix = prefix
        self.stream_prefix = prefix.upper()

    def stream(self, what: str, part: int | None = None) -> str:
        """``ROOST_MBX_3``, ``ROOST_OUTCOMES``; KV buckets are named the same way."""
        name = f"{self.stream_prefix}_{what.upper()}"
        return name if part is None else f"{name}_{part}"

    def bucket(self, what: str) -> str:
        return f"{self.prefix}_{what}"

    def subject(self, *parts: str | int) -> str:
        """``roost.mbx.3.truck-7``: the prefix and the parts, dot-joined."""
        return ".".join((self.prefix, *map(str, parts)))
