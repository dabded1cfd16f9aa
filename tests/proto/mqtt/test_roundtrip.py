"""Hypothesis properties of the whole codec: round trips, chunking, fuzzing."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.errors import ProtocolError
from roost.proto.mqtt import Connect, Decoder, MqttConnection, Packet
from roost.proto.mqtt.packets import PARSERS

from .strategies import connects, packets, versions

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no example database: every run starts fresh
    suppress_health_check=[HealthCheck.too_slow],
)


def _decode_all(version: int | None, data: bytes) -> list[Packet]:
    return Decoder(version=version).feed(data)


@SETTINGS
@given(st.data())
def test_every_packet_round_trips_through_serialize_and_parse(data: st.DataObject) -> None:
    version = data.draw(versions)
    packet = data.draw(packets(version))
    wire = packet.serialize(version)
    assert _decode_all(version, wire) == [packet]
    kind = wire[0] >> 4
    body_start = len(wire) - _body_length(wire)
    parser = PARSERS[kind]
    assert parser is not None
    assert parser(wire[0] & 0x0F, wire[body_start:], version) == packet


def _body_length(wire: bytes) -> int:
    value, shift, i = 0, 0, 1
    while True:
        value |= (wire[i] & 0x7F) << shift
        if wire[i] < 0x80:
            return value
        shift += 7
        i += 1


@SETTINGS
@given(st.data())
def test_connect_round_trips_and_sets_the_decoder_version(data: st.DataObject) -> None:
    version = data.draw(versions)
    connect = data.draw(connects(version))
    decoder = Decoder()
    assert decoder.feed(connect.serialize()) == [connect]
    assert decoder.version == version


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Packet], bytes]:
    version = draw(versions)
    connect = draw(connects(version))
    rest = draw(st.lists(packets(version), max_size=8))
    stream = [connect, *rest]
    return stream, b"".join(p.serialize(version) for p in stream)


@SETTINGS
@given(streams(), st.data())
def test_any_chunking_of_a_stream_gives_the_same_packets(
    stream: tuple[list[Packet], bytes], data: st.DataObject
) -> None:
    expected, wire = stream
    cuts = sorted(data.draw(st.sets(st.integers(0, len(wire)), max_size=12)))
    decoder = Decoder()
    got: list[Packet] = []
    for start, stop in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got += decoder.feed(wire[start:stop])
    assert got == expected
    assert decoder.buffered() == 0


@SETTINGS
@given(streams())
def test_byte_at_a_time_gives_the_same_packets(stream: tuple[list[Packet], bytes]) -> None:
    expected, wire = stream
    decoder = Decoder()
    got: list[Packet] = []
    for i in range(len(wire)):
        got += decoder.feed(wire[i : i + 1])
    assert got == expected


def _feed_expecting_only_protocol_errors(decoder: Decoder, data: bytes) -> None:
    start = time.perf_counter()
    try:
        decoder.feed(data)
    except ProtocolError:
        pass
    assert time.perf_counter() - start < 0.5


@SETTINGS
@given(st.sampled_from([None, 4, 5]), st.binary(max_size=512))
def test_fuzz_arbitrary_bytes_parse_or_raise_a_protocol_error(
    version: int | None, data: bytes
) -> None:
    _feed_expecting_only_protocol_errors(Decoder(version=version), data)


@SETTINGS
@given(streams(), st.data())
def test_fuzz_mutated_valid_streams_parse_or_raise_a_protocol_error(
    stream: tuple[list[Packet], bytes], data: st.DataObject
) -> None:
    wire = bytearray(stream[1])
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    _feed_expecting_only_protocol_errors(Decoder(), bytes(wire))


@SETTINGS
@given(versions, st.binary(max_size=512))
def test_fuzz_connection_after_connect_only_raises_protocol_errors(
    version: int, data: bytes
) -> None:
    conn = MqttConnection()
    conn.receive_data(Connect(client_id="fuzz", version=version).serialize())
    conn.accept(False)
    try:
        conn.receive_data(data)
    except ProtocolError:
        pass
