"""Telemetry end to end: paho-mqtt devices publish, consumer groups read over HTTP.

DESIGN.md: telemetry is appended to a durable log (QoS 1 acknowledged only once
stored); each consumer group sees every record, each record goes to one member
of a group, at least once: records not acked within the ack timeout come back.
A new group starts at the oldest record, or at the end with ``from=latest``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from e2e.helpers import publish_props
from e2e.paho_device import PahoDevice

ONE_VERSION = pytest.mark.parametrize("version", [4], ids=["mqtt311"])


def fetch(api: httpx.Client, group: str, **params: Any) -> dict[str, Any]:
    r = api.get("/v1/telemetry", params={"group": group, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


def payloads(batch: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(x["payload"]) for x in batch["records"]]


def ack(api: httpx.Client, group: str, batch: dict[str, Any]) -> None:
    r = api.post("/v1/telemetry/ack", json={"group": group, "ack": batch["ack"]})
    assert r.status_code == 200, r.text


def sensor(
    register: Callable[..., str], devices: Callable[..., PahoDevice], name: str
) -> PahoDevice:
    dev = devices(name, register(name))
    assert dev.connect() == 0
    return dev


def test_qos1_telemetry_reaches_a_consumer_group(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-1")
    for i in range(20):
        dev.publish("devices/sensor-1/telemetry/temp", f"{i}".encode(), qos=1)
    dev.publish("devices/sensor-1/telemetry", b"bare", qos=1)
    batch = fetch(api, "g1", max=100, wait=5)
    records = batch["records"]
    assert payloads(batch) == [f"{i}".encode() for i in range(20)] + [b"bare"]
    assert records[0]["device"] == "sensor-1" and records[0]["path"] == "temp"
    assert records[-1]["path"] == ""
    ack(api, "g1", batch)


def test_qos0_telemetry_is_stored_too(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-0")
    for i in range(5):
        dev.publish("devices/sensor-0/telemetry/hum", f"q0-{i}".encode(), qos=0)
    dev.publish("devices/sensor-0/telemetry/hum", b"q1", qos=1)  # after the QoS 0 ones
    batch = fetch(api, "g", max=100, wait=5)
    assert payloads(batch) == [f"q0-{i}".encode() for i in range(5)] + [b"q1"]
    assert {r["path"] for r in batch["records"]} == {"hum"}


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_content_type_is_kept(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-ct")
    dev.publish("devices/sensor-ct/telemetry/pos", b'{"lat":1}',
                properties=publish_props(ContentType="application/json"))
    dev.publish("devices/sensor-ct/telemetry/pos", b"plain")
    records = fetch(api, "g", max=10, wait=5)["records"]
    assert [r["content_type"] for r in records] == ["application/json", None]


@ONE_VERSION
def test_every_group_sees_every_record(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-2")
    for i in range(10):
        dev.publish("devices/sensor-2/telemetry", f"{i}".encode())
    expected = [f"{i}".encode() for i in range(10)]
    for group in ("billing", "dashboard"):
        batch = fetch(api, group, max=100, wait=5)
        assert payloads(batch) == expected
        ack(api, group, batch)


@ONE_VERSION
def test_consumers_in_one_group_split_the_records(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-3")
    for i in range(10):
        dev.publish("devices/sensor-3/telemetry", f"{i}".encode())
    first = fetch(api, "workers", max=4, wait=5)
    second = fetch(api, "workers", max=100, wait=5)
    a, b = payloads(first), payloads(second)
    assert len(a) == 4
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(f"{i}".encode() for i in range(10))
    ack(api, "workers", first)
    ack(api, "workers", second)
    assert fetch(api, "workers", max=100)["records"] == []


@ONE_VERSION
@pytest.mark.node(telemetry_ack_timeout=1.0)
def test_unacked_records_come_back_after_the_ack_timeout(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-4")
    for i in range(3):
        dev.publish("devices/sensor-4/telemetry", f"{i}".encode())
    first = fetch(api, "slow", max=100, wait=5)
    assert payloads(first) == [b"0", b"1", b"2"]
    assert fetch(api, "slow", max=100)["records"] == []  # leased
    time.sleep(1.2)
    again = fetch(api, "slow", max=100, wait=5)
    assert payloads(again) == [b"0", b"1", b"2"]
    assert [r["seq"] for r in again["records"]] == [r["seq"] for r in first["records"]]
    ack(api, "slow", again)
    time.sleep(1.2)
    assert fetch(api, "slow", max=100)["records"] == []


@ONE_VERSION
def test_from_latest_starts_at_the_end(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    dev = sensor(register, devices, "sensor-5")
    for i in range(3):
        dev.publish("devices/sensor-5/telemetry", f"old {i}".encode())
    assert fetch(api, "live", max=100, **{"from": "latest"})["records"] == []
    for i in range(2):
        dev.publish("devices/sensor-5/telemetry", f"new {i}".encode())
    assert payloads(fetch(api, "live", max=100, wait=5)) == [b"new 0", b"new 1"]
    # a new group without from=latest starts at the oldest record
    assert len(fetch(api, "history", max=100)["records"]) == 5
