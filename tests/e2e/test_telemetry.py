"""Telemetry end to end: paho-mqtt devices publish, a consumer group reads over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx

from e2e.paho_device import PahoDevice


def test_qos1_telemetry_reaches_a_consumer_group(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("sensor-1")
    dev = devices("sensor-1", key)
    assert dev.connect() == 0
    for i in range(20):
        dev.publish("devices/sensor-1/telemetry/temp", f"{i}".encode(), qos=1)
    dev.publish("devices/sensor-1/telemetry", b"bare", qos=1)
    r = api.get("/v1/telemetry", params={"group": "g1", "max": 100, "wait": 5})
    assert r.status_code == 200, r.text
    records = r.json()["records"]
    assert [base64.b64decode(x["payload"]) for x in records] == [
        f"{i}".encode() for i in range(20)
    ] + [b"bare"]
    assert records[0]["device"] == "sensor-1" and records[0]["path"] == "temp"
    assert records[-1]["path"] == ""
    assert api.post("/v1/telemetry/ack", json={"group": "g1", "ack": r.json()["ack"]}).status_code == 200
