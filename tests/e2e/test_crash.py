"""Crash durability: ``kill -9`` a real ``roost serve`` under load, restart it, lose nothing.

DESIGN.md: a QoS 1 PUBACK and an HTTP 202 are sent only after the commit that
holds the message. So every telemetry record a device saw acknowledged, and
every command the API answered 202, must be there after a hard kill and a
restart on the same data directory. Duplicates are allowed (at-least-once) and
counted; losses are not.
"""

from __future__ import annotations

import base64
import collections
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from conformance.rawmqtt import PUBACK, RawClient
from e2e.helpers import read_all_telemetry
from e2e.serve_process import ROOST, Server

OFFLINE = [f"parked-{i}" for i in range(4)]
MAX_PER_MAILBOX = 900  # GET .../mailbox shows up to 1000 messages
MAX_IN_FLIGHT = 500  # published and not yet acknowledged, so memory stays bounded


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    if not ROOST.exists():
        pytest.skip(f"{ROOST} is not installed (pip install -e .)")
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


class Publisher(threading.Thread):
    """A paho device publishing QoS 1 telemetry as fast as it can; remembers what was acked."""

    def __init__(self, port: int, device: str, key: str) -> None:
        super().__init__(daemon=True)
        self.device = device
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(device, key)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(60, 120)  # not during this test
        self.sent: list[tuple[bytes, mqtt.MQTTMessageInfo]] = []
        self.stopping = threading.Event()
        self.connack: list[int] = []
        connected = threading.Event()

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            self.connack.append(rc.value)
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_disconnect = lambda *args: connected.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert connected.wait(10) and self.connack == [0], f"CONNACK {self.connack}"

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set() and i < 60_000:
            payload = f"rec-{i}".encode()
            info = self.client.publish(f"devices/{self.device}/telemetry/seq", payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and not self.client.is_connected():
                return
            self.sent.append((payload, info))
            i += 1
            while (len(self.sent) > MAX_IN_FLIGHT
                   and not self.sent[-MAX_IN_FLIGHT][1].is_published()
                   and not self.stopping.is_set()):
                time.sleep(0.001)

    def acknowledged(self) -> list[bytes]:
        return [payload for payload, info in self.sent if info.is_published()]

    def close(self) -> None:
        self.stopping.set()
        self.join(10)
        self.client.disconnect()
        self.client.loop_stop()


class Commander(threading.Thread):
    """Posts commands to offline devices until the server goes away; keeps the 202'd ids."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.api = server.api()
        self.accepted: dict[str, list[str]] = collections.defaultdict(list)
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            device = OFFLINE[i % len(OFFLINE)]
            if len(self.accepted[device]) >= MAX_PER_MAILBOX:
                return
            try:
                r = self.api.post(f"/v1/devices/{device}/commands/step?ttl=3600",
                                  content=f"cmd-{i}".encode())
            except httpx.HTTPError:
                return  # the server died mid-request: that command was never promised
            if r.status_code == 202:
                self.accepted[device].append(r.json()["id"])
            i += 1


def test_roost_serve_accepts_an_mqtt_device(tmp_path: Path, servers: list[Server]) -> None:
    """The real entry point on its real event loop: a device connects and publishes."""
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    servers.append(server)
    with server.api() as api:
        key = api.post("/v1/devices", json={"id": "plain-1"}).json()["key"]
        with RawClient(server.mqtt_port, 4) as device:
            assert device.handshake("plain-1", key).code == 0
            device.publish("devices/plain-1/telemetry", b"hello", qos=1, packet_id=7)
            assert device.read().type == PUBACK
        records = api.get("/v1/telemetry", params={"group": "g"}).json()["records"]
        assert [base64.b64decode(r["payload"]) for r in records] == [b"hello"]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_kill_9_loses_no_acknowledged_telemetry_or_accepted_command(
    tmp_path: Path, servers: list[Server], loop: str
) -> None:
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    first = Server(data, log, loop)
    servers.append(first)
    with first.api() as api:
        key = api.post("/v1/devices", json={"id": "busy-1"}).json()["key"]
        for device in OFFLINE:
            assert api.post("/v1/devices", json={"id": device}).status_code == 201

    publisher = Publisher(first.mqtt_port, "busy-1", key)
    commander = Commander(first)
    publisher.start()
    commander.start()
    time.sleep(2.0)
    first.kill9()
    commander.stopping.set()
    commander.join(15)
    publisher.close()
    acked = publisher.acknowledged()
    accepted = dict(commander.accepted)
    assert acked, "no telemetry was acknowledged before the kill"
    assert sum(map(len, accepted.values())), "no command was accepted before the kill"

    second = Server(data, log, loop)
    servers.append(second)
    with second.api() as api:
        stored = read_all_telemetry(api, "after-crash")
        counts = collections.Counter(stored)
        lost = [p for p in acked if p not in counts]
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
        print(f"\ntelemetry: {len(publisher.sent)} published, {len(acked)} acknowledged, "
              f"{len(stored)} stored, {duplicates} duplicates, {len(lost)} lost")
        missing: dict[str, list[str]] = {}
        for device, ids in accepted.items():
            r = api.get(f"/v1/devices/{device}/mailbox")
            assert r.status_code == 200, r.text
            queued = {m["id"] for m in r.json()["messages"]}
            missing[device] = [i for i in ids if i not in queued]
        total = sum(map(len, accepted.values()))
        print(f"commands: {total} accepted (202), "
              f"{sum(map(len, missing.values()))} missing after the restart")
    assert lost == [], f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    assert all(not m for m in missing.values()), f"accepted commands lost: {missing}"
