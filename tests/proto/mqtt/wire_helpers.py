"""Helpers for byte-literal packet tests."""

from __future__ import annotations

from roost.proto.mqtt import Decoder, Packet


def h(text: str) -> bytes:
    """Bytes from spaced hex, with 'quoted' ASCII runs: h("00 04 'MQTT'")."""
    out = bytearray()
    for i, part in enumerate(text.split("'")):
        out += part.encode() if i % 2 else bytes.fromhex(part)
    return bytes(out)


def decode_one(wire: bytes, version: int | None) -> Packet:
    """Decode exactly one packet from ``wire``, which must hold nothing else."""
    decoder = Decoder(version=version)
    packets = decoder.feed(wire)
    assert len(packets) == 1 and decoder.buffered() == 0
    return packets[0]
