"""Throughput of Roost's MQTT codec on a QoS 1 PUBLISH stream read in 64 KiB chunks.

Run: .venv/bin/python bench/bench_codec.py [--seconds N]

For MQTT 3.1.1 and 5.0 it prints packets/s and MB/s of:
  Decoder.feed            bytes -> Publish objects
  MqttConnection          the same plus the state machine and one pubacks() per read
  encode_publish          the outbound fast path
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from roost.proto.mqtt import Connect, Decoder, MqttConnection, encode_publish

READ_SIZE = 64 * 1024
PAYLOAD = bytes(range(64))
TOPIC = "devices/sensor-0042/telemetry"


def make_stream(version: int, count: int) -> bytes:
    return b"".join(encode_publish(TOPIC, PAYLOAD, 1, i % 65535 + 1, version) for i in range(count))


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]


def measure(run: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Repeat ``run`` (which returns a packet count) for ``seconds``; packets/s."""
    total = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        total += run()
        elapsed = time.perf_counter() - start
    return total / elapsed, total


def bench_decoder(version: int, reads: list[bytes]) -> Callable[[], int]:
    def run() -> int:
        decoder = Decoder(version=version)
        return sum(len(decoder.feed(read)) for read in reads)

    return run


def bench_connection(version: int, reads: list[bytes]) -> Callable[[], int]:
    connect = Connect(client_id="bench", version=version).serialize()

    def run() -> int:
        conn = MqttConnection(receive_maximum=65535)
        conn.receive_data(connect)
        conn.accept(False)
        count = 0
        for read in reads:
            packets = conn.receive_data(read)
            conn.pubacks([p.packet_id for p in packets])  # type: ignore[union-attr,misc]
            count += len(packets)
        return count

    return run


def bench_encode(version: int) -> Callable[[], int]:
    def run() -> int:
        for i in range(1, 10_001):
            encode_publish(TOPIC, PAYLOAD, 1, i, version)
        return 10_000

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for version, name in ((4, "3.1.1"), (5, "5.0")):
        stream = make_stream(version, 20_000)
        reads = chunks(stream)
        packet_size = len(stream) // 20_000
        print(
            f"MQTT {name}: QoS 1 PUBLISH, {len(PAYLOAD)} B payload, "
            f"{packet_size} B packet, {READ_SIZE // 1024} KiB reads"
        )
        rate, _ = measure(bench_decoder(version, reads), args.seconds)
        print(
            f"  Decoder.feed                 {rate:12,.0f} packets/s "
            f"{rate * packet_size / 1e6:8.1f} MB/s"
        )
        rate, _ = measure(bench_connection(version, reads), args.seconds)
        print(
            f"  MqttConnection (+ pubacks)   {rate:12,.0f} packets/s "
            f"{rate * packet_size / 1e6:8.1f} MB/s"
        )
        rate, _ = measure(bench_encode(version), args.seconds)
        print(
            f"  encode_publish               {rate:12,.0f} packets/s "
            f"{rate * packet_size / 1e6:8.1f} MB/s"
        )


if __name__ == "__main__":
    main()
