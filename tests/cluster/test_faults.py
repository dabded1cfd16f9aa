"""Faults on a cluster: ``kill -9`` of a Roost node, and of one of the three NATS servers.

The issue's promise: every QoS 1 PUBACK and every HTTP 202 a Roost node sends has first
been acknowledged by JetStream (replicas 3). So nothing a device or a service saw
acknowledged may be lost when a Roost node dies (its devices reconnect to another node),
nor when one NATS server of three dies and comes back. Duplicates are allowed
(at-least-once): they are counted and reported (``-s`` prints them, and they are
recorded as test properties), never failed on.

The Roost nodes are real ``roost serve --nats`` child processes (``e2e/serve_process.py``);
devices are paho-mqtt clients (MQTT 3.1.1: a PUBACK there has no reason code, so a PUBACK
is an acknowledgement). A publishing device that loses its connection reconnects to the
next node in its list, and paho re-sends what was not acknowledged, with DUP set, as
device firmware would.
"""

from __future__ import annotations

import collections
import itertools
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from e2e.helpers import read_all_telemetry, wait_for
from e2e.paho_device import PahoDevice
from e2e.serve_process import ROOST, Server
from roost.testing.nats import NatsCluster, NatsServer

WINDOW = 50  # QoS 1 publishes in flight per device
MAX_RECORDS = 50_000  # per device, so a stuck test cannot grow without bound
RATE = 1_000  # records/s per device at most: a fast machine must not run out of records
MAX_PER_MAILBOX = 300  # commands queued per offline device
LIVENESS = 30.0  # seconds: the longest pause a fault may cause before the test fails

_prefixes = itertools.count(1)
Record = Callable[[str, object], None]


# --- nodes ---------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> str:
    """A NATS prefix of the test's own: tests on one NATS cluster never see each other's data."""
    return f"faults{next(_prefixes)}"


@pytest.fixture
def start_node(tmp_path: Path, nats_cluster: NatsCluster,
               prefix: str) -> Iterator[Callable[..., Server]]:
    """``start_node("a")``: a ``roost serve --nats`` child process; all are stopped after.

    The first node of a test writes the admin token; the others are given it.
    """
    if not ROOST.exists():
        pytest.skip(f"{ROOST} is not installed (pip install -e .)")
    started: list[Server] = []

    def _start(name: str) -> Server:
        server = Server(
            tmp_path / name, tmp_path / f"{name}.log",
            args=["--nats", ",".join(nats_cluster.urls), "--nats-prefix", prefix,
                  "--nats-replicas", "3"],
            env={"ROOST_NODE": f"node-{name}", "ROOST_SWEEP_INTERVAL": "0.5"},
            token=started[0].token if started else None,
            start_timeout=60,
        )
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


def register(api: httpx.Client, ids: Sequence[str]) -> dict[str, str]:
    keys = {}
    for device_id in ids:
        r = api.post("/v1/devices", json={"id": device_id})
        assert r.status_code == 201, r.text
        keys[device_id] = str(r.json()["key"])
    return keys


# --- devices and services ------------------------------------------------------------------


class FailoverClient:
    """A paho client (MQTT 3.1.1, clean session) that moves to the next port when it loses
    its connection (stays on the last one), reconnecting after a second."""

    def __init__(self, ports: Sequence[int], device: str, key: str) -> None:
        self.ports = list(ports)
        self.at = 0
        self.device = device
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(device, key)
        self.client.reconnect_delay_set(1, 2)
        self.connacks: list[tuple[int, int]] = []  # (port, return code)
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    @property
    def port(self) -> int:
        return self.ports[self.at]

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(15), f"{self.device}: no CONNACK"
        assert self.connacks[-1][1] == 0, f"{self.device}: CONNACK {self.connacks}"

    def on_connected(self) -> None:
        pass

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connacks.append((self.port, rc.value))
        if rc.value == 0:
            self.connected.set()
            self.on_connected()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                       props: Any) -> None:
        self.connected.clear()
        if self.at + 1 < len(self.ports):
            self.at += 1
            # paho's loop reconnects to whatever host and port are set when its delay ends
            client.connect_async("127.0.0.1", self.port, keepalive=30)

    def connected_to(self, port: int) -> bool:
        return self.connected.is_set() and self.port == port

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def acked(info: mqtt.MQTTMessageInfo) -> bool:
    """Whether the PUBACK came. ``is_published()`` raises for a message published while
    disconnected (rc "no connection"), although paho keeps it and sends it on reconnect."""
    return bool(getattr(info, "_published", False))


class TelemetryDevice(FailoverClient):
    """Publishes QoS 1 telemetry (``"<device> <n>"``) from a thread, ``WINDOW`` in flight
    and at most ``RATE`` a second; remembers every publish and its paho info."""

    def __init__(self, ports: Sequence[int], device: str, key: str) -> None:
        super().__init__(ports, device, key)
        self.client.max_inflight_messages_set(WINDOW)
        self.sent: list[tuple[bytes, mqtt.MQTTMessageInfo]] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        super().start()
        self._thread.start()

    def _run(self) -> None:
        topic = f"devices/{self.device}/telemetry/seq"
        started = time.monotonic()
        for i in range(MAX_RECORDS):
            if self.stopping.is_set():
                return
            ahead = started + i / RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            payload = f"{self.device} {i}".encode()
            # while disconnected paho keeps the message and sends it after reconnecting
            self.sent.append((payload, self.client.publish(topic, payload, qos=1)))
            while (len(self.sent) > WINDOW and not acked(self.sent[-WINDOW][1])
                   and not self.stopping.is_set()):
                time.sleep(0.002)

    def acked_count(self) -> int:
        return sum(1 for _, info in list(self.sent) if acked(info))

    def progressed(self, since: int) -> bool:
        """Whether 50 more records were acknowledged since ``since`` acks (or all were)."""
        count = self.acked_count()
        return count > since + 50 or count == MAX_RECORDS

    def finish(self, drain: float = 15.0) -> None:
        """Stop publishing; give what is in flight a while to be acknowledged; disconnect."""
        self.stopping.set()
        self._thread.join(10)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and not all(acked(i) for _, i in self.sent):
            time.sleep(0.05)
        self.close()

    def acknowledged(self) -> list[bytes]:
        return [payload for payload, info in self.sent if acked(info)]


class CommandDevice(FailoverClient):
    """Subscribes to its commands (QoS 1) on every connection; keeps every payload received."""

    def __init__(self, ports: Sequence[int], device: str, key: str) -> None:
        super().__init__(ports, device, key)
        self.received: list[bytes] = []
        self.client.on_message = lambda c, u, m: self.received.append(bytes(m.payload))

    def on_connected(self) -> None:
        self.client.subscribe(f"devices/{self.device}/commands/#", 1)


class Commander(threading.Thread):
    """Posts commands (``ttl=3600``, no wait) round robin to ``devices`` through one node's API.

    Keeps the payload -> message id of every command answered 202. ``until_error``:
    stop at the first failed request (the node died: that command was never promised);
    otherwise count failures and refusals and go on. ``limit``: stop once a device has
    that many accepted (for devices that are offline, whose mailboxes only grow).
    """

    def __init__(self, api: httpx.Client, devices: Sequence[str], tag: str, *,
                 until_error: bool = False, pause: float = 0.0,
                 limit: int | None = None) -> None:
        super().__init__(daemon=True)
        self.api = api
        self.devices = list(devices)
        self.tag = tag
        self.until_error = until_error
        self.pause = pause
        self.limit = limit
        self.accepted: dict[str, dict[bytes, str]] = {d: {} for d in devices}
        self.accepted_at: list[float] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        for i in itertools.count():
            device = self.devices[i % len(self.devices)]
            full = self.limit is not None and len(self.accepted[device]) >= self.limit
            if self.stopping.is_set() or full:
                return
            payload = f"{self.tag}-{i}".encode()
            try:
                r = self.api.post(f"/v1/devices/{device}/commands/step?ttl=3600",
                                  content=payload)
            except httpx.HTTPError as exc:
                if self.until_error:
                    return
                self.failures[type(exc).__name__] += 1
                time.sleep(0.05)
                continue
            if r.status_code == 202:
                self.accepted[device][payload] = r.json()["id"]
                self.accepted_at.append(time.monotonic())
            else:
                self.failures[f"HTTP {r.status_code}"] += 1
                time.sleep(0.05)
            if self.pause:
                time.sleep(self.pause)

    def total(self) -> int:
        return sum(map(len, self.accepted.values()))

    def finish(self) -> None:
        self.stopping.set()
        self.join(20)
        self.api.close()


# --- checks --------------------------------------------------------------------------------


def check_telemetry(api: httpx.Client, publishers: Sequence[TelemetryDevice], group: str,
                    record: Record) -> list[bytes]:
    """Print and record the figures; return the acknowledged records that are missing."""
    acked = [p for d in publishers for p in d.acknowledged()]
    stored = collections.Counter(read_all_telemetry(api, group, wait=2))
    lost = [p for p in acked if p not in stored]
    duplicates = sum(n - 1 for n in stored.values() if n > 1)
    sent = sum(len(d.sent) for d in publishers)
    print(f"\ntelemetry: {sent} published, {len(acked)} acknowledged, "
          f"{sum(stored.values())} stored, {duplicates} duplicates, {len(lost)} lost")
    record("telemetry_acknowledged", len(acked))
    record("telemetry_duplicates", duplicates)
    record("telemetry_lost", len(lost))
    return lost


def received_commands(device: CommandDevice | PahoDevice) -> list[bytes]:
    if isinstance(device, CommandDevice):
        return list(device.received)
    out: list[bytes] = []
    while not device.messages.empty():
        out.append(bytes(device.messages.get().payload))
    return out


def check_commands(what: str, commander: Commander, received: dict[str, list[bytes]],
                   record: Record) -> dict[str, list[bytes]]:
    """Print and record the figures; return the accepted commands never received, by device."""
    missing, duplicates = {}, 0
    for device, accepted in commander.accepted.items():
        counts = collections.Counter(received[device])
        missing[device] = [p for p in accepted if p not in counts]
        duplicates += sum(n - 1 for p, n in counts.items() if n > 1 and p in accepted)
    lost = sum(map(len, missing.values()))
    print(f"commands {what}: {commander.total()} accepted (202), {duplicates} delivered twice "
          f"or more, {lost} never delivered; failed requests {dict(commander.failures)}")
    record(f"commands_{what}_accepted", commander.total())
    record(f"commands_{what}_duplicates", duplicates)
    record(f"commands_{what}_lost", lost)
    return {d: m for d, m in missing.items() if m}


def drain_offline_mailboxes(port: int, keys: dict[str, str], commander: Commander
                            ) -> dict[str, list[bytes]]:
    """Connect the devices that were offline and take everything queued for them."""
    received: dict[str, list[bytes]] = {}
    for device, key in keys.items():
        dev = PahoDevice(port, device, key, version=4)
        try:
            assert dev.connect() == 0
            assert dev.subscribe(f"devices/{device}/commands/#") == [1]
            got: list[bytes] = []
            wanted = set(commander.accepted[device])
            deadline = time.monotonic() + LIVENESS
            while not wanted <= set(got) and time.monotonic() < deadline:
                time.sleep(0.2)  # what never comes is reported as missing by check_commands
                got += received_commands(dev)
            time.sleep(0.3)  # and whatever else comes (duplicates)
            received[device] = got + received_commands(dev)
        finally:
            dev.close()
    return received


# --- a Roost node killed ------------------------------------------------------------------


def test_kill_9_of_a_node_loses_nothing_acknowledged_and_its_devices_move_on(
    start_node: Callable[..., Server], record_property: Record
) -> None:
    a = start_node("a")
    b = start_node("b")
    publishers_ids = [f"tel-{i}" for i in range(3)]
    listeners_ids = [f"rcv-{i}" for i in range(2)]
    parked_ids = [f"parked-{i}" for i in range(3)]
    with a.api(30) as api_a:
        keys = register(api_a, publishers_ids + listeners_ids + parked_ids)
    ports = [a.mqtt_port, b.mqtt_port]
    publishers = [TelemetryDevice(ports, d, keys[d]) for d in publishers_ids]
    listeners = [CommandDevice(ports, d, keys[d]) for d in listeners_ids]
    # commands through the node that dies, to devices that are offline ...
    to_parked = Commander(a.api(), parked_ids, "via-a", until_error=True,
                          limit=MAX_PER_MAILBOX)
    # ... and through the node that lives, to devices connected to the one that dies
    to_listeners = Commander(b.api(), listeners_ids, "via-b", pause=0.01)
    try:
        for d in [*publishers, *listeners]:
            d.start()
        to_parked.start()
        to_listeners.start()
        wait_for(lambda: all(p.acked_count() > 50 for p in publishers)
                 and all(len(d.received) > 5 for d in listeners)
                 and to_parked.total() > 20,
                 LIVENESS, "telemetry and commands to flow through node A")
        time.sleep(1.0)

        a.kill9()
        killed_at = time.monotonic()
        to_parked.join(15)
        assert not to_parked.is_alive(), "posting through the killed node never failed"
        wait_for(lambda: all(d.connected_to(b.mqtt_port) for d in [*publishers, *listeners]),
                 LIVENESS, "every device to reconnect to node B")
        acked_at_move = [p.acked_count() for p in publishers]
        wait_for(lambda: all(p.progressed(n)
                             for p, n in zip(publishers, acked_at_move, strict=True)),
                 LIVENESS, "telemetry to be acknowledged by node B")
        resumed = time.monotonic() - killed_at
        time.sleep(1.0)
    finally:
        to_listeners.finish()
        for d in [*publishers, *listeners]:
            if isinstance(d, TelemetryDevice):
                d.finish()
    print(f"\nnode A killed; its devices acknowledged by node B {resumed:.1f} s later")
    record_property("resumed_after_s", round(resumed, 1))

    try:
        wait_for(lambda: all(set(to_listeners.accepted[d.device]) <= set(d.received)
                             for d in listeners),
                 LIVENESS, "the listeners to receive every accepted command", 0.2)
    except AssertionError:
        pass  # reported below
    for d in listeners:
        d.close()

    with b.api(30) as api_b:
        # everything accepted through A for offline devices is queued, visible through B ...
        queued_missing = {}
        for device, accepted in to_parked.accepted.items():
            r = api_b.get(f"/v1/devices/{device}/mailbox")
            assert r.status_code == 200, r.text
            queued = {m["id"] for m in r.json()["messages"]}
            queued_missing[device] = [i for i in accepted.values() if i not in queued]
        # ... and delivered when those devices connect to B
        parked_got = drain_offline_mailboxes(b.mqtt_port, {d: keys[d] for d in parked_ids},
                                             to_parked)
        lost_telemetry = check_telemetry(api_b, publishers, "after-kill", record_property)
    lost_to_parked = check_commands("to_offline_via_killed_node", to_parked, parked_got,
                                    record_property)
    lost_to_listeners = check_commands(
        "via_live_node_to_devices_that_moved", to_listeners,
        {d.device: d.received for d in listeners}, record_property)

    assert lost_telemetry == [], (f"{len(lost_telemetry)} acknowledged records lost, "
                                  f"e.g. {lost_telemetry[:5]}")
    assert all(not m for m in queued_missing.values()), (
        f"202'd commands not in the mailboxes after the kill: {queued_missing}")
    assert lost_to_parked == {}, f"202'd commands never delivered: {lost_to_parked}"
    assert lost_to_listeners == {}, f"202'd commands never delivered: {lost_to_listeners}"


# --- a NATS server killed -----------------------------------------------------------------


def stream_states(cluster: NatsCluster, prefix: str) -> list[dict[str, Any]]:
    """``roost cluster status --json``: the test's streams and buckets, leader and replicas."""
    out = subprocess.run(
        [str(ROOST), "cluster", "status", "--json", "--nats", ",".join(cluster.urls),
         "--nats-prefix", prefix, "--nats-replicas", "3"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def busiest_leader(cluster: NatsCluster, prefix: str) -> NatsServer:
    """The NATS server leading most of the test's streams: killing it forces most elections."""
    leaders = collections.Counter(
        s["leader"] for s in stream_states(cluster, prefix) if s.get("leader"))
    assert leaders, "no stream leaders in `roost cluster status`"
    name = leaders.most_common(1)[0][0]
    return next(s for s in cluster.servers if s.name == name)


def all_replicas_current(cluster: NatsCluster, prefix: str) -> bool:
    states = stream_states(cluster, prefix)
    return bool(states) and all(s["replicas_current"] == s["replicas"] for s in states)


def test_nats_server_killed_and_restarted_under_traffic_service_goes_on_and_loses_nothing(
    start_node: Callable[..., Server], nats_cluster: NatsCluster, prefix: str,
    record_property: Record,
) -> None:
    node = start_node("n")
    publishers_ids = [f"tel-{i}" for i in range(3)]
    listeners_ids = ["rcv-0"]
    parked_ids = [f"parked-{i}" for i in range(2)]
    with node.api(30) as api:
        keys = register(api, publishers_ids + listeners_ids + parked_ids)
    ports = [node.mqtt_port]  # a device that is dropped comes back to the same node
    publishers = [TelemetryDevice(ports, d, keys[d]) for d in publishers_ids]
    listeners = [CommandDevice(ports, d, keys[d]) for d in listeners_ids]
    to_parked = Commander(node.api(), parked_ids, "offline", pause=0.005,
                          limit=MAX_PER_MAILBOX)
    to_listeners = Commander(node.api(), listeners_ids, "online", pause=0.01)
    victim = busiest_leader(nats_cluster, prefix)
    try:
        for d in [*publishers, *listeners]:
            d.start()
        to_parked.start()
        to_listeners.start()
        wait_for(lambda: all(p.acked_count() > 50 for p in publishers)
                 and to_parked.total() > 20 and len(listeners[0].received) > 5,
                 LIVENESS, "telemetry and commands to flow")
        time.sleep(1.0)

        victim.kill()
        killed_at = time.monotonic()
        acked_at_kill = [p.acked_count() for p in publishers]
        commands_at_kill = to_parked.total()
        wait_for(lambda: all(p.progressed(n)
                             for p, n in zip(publishers, acked_at_kill, strict=True)),
                 LIVENESS, f"telemetry to be acknowledged again with {victim.name} down")
        telemetry_pause = time.monotonic() - killed_at
        wait_for(lambda: to_parked.total() > commands_at_kill + 20, LIVENESS,
                 f"the API to accept commands again with {victim.name} down")
        api_pause = time.monotonic() - killed_at
        with node.api() as api:
            assert wait_for(lambda: api.get("/healthz").status_code == 200, LIVENESS,
                            "/healthz 200 with two NATS servers of three")
        time.sleep(1.0)

        victim.start()
        restarted_at = time.monotonic()
        acked_at_restart = [p.acked_count() for p in publishers]
        wait_for(lambda: all(p.progressed(n)
                             for p, n in zip(publishers, acked_at_restart, strict=True)),
                 LIVENESS, f"telemetry to go on after {victim.name} restarted")
        after_restart = time.monotonic() - restarted_at
        time.sleep(1.0)
    finally:
        to_parked.finish()
        to_listeners.finish()
        for d in publishers:
            d.finish()
    print(f"\nkilled {victim.name} (leader of most streams): telemetry acknowledged again "
          f"after {telemetry_pause:.1f} s, commands accepted after {api_pause:.1f} s; "
          f"after its restart, telemetry went on within {after_restart:.1f} s; "
          f"devices reconnected: {sum(len(d.connacks) - 1 for d in publishers)} times")
    record_property("telemetry_pause_s", round(telemetry_pause, 1))
    record_property("api_pause_s", round(api_pause, 1))

    try:
        wait_for(lambda: set(to_listeners.accepted["rcv-0"]) <= set(listeners[0].received),
                 LIVENESS, "the listener to receive every accepted command", 0.2)
    except AssertionError:
        pass  # reported below
    listeners[0].close()
    wait_for(lambda: all_replicas_current(nats_cluster, prefix), LIVENESS,
             f"{victim.name} to catch up: every stream with 3 current replicas", 1.0)
    with node.api(30) as api:
        parked_got = drain_offline_mailboxes(node.mqtt_port,
                                             {d: keys[d] for d in parked_ids}, to_parked)
        lost_telemetry = check_telemetry(api, publishers, "after-nats-kill", record_property)
    lost_to_parked = check_commands("to_offline", to_parked, parked_got, record_property)
    lost_to_listener = check_commands("to_connected", to_listeners,
                                      {"rcv-0": listeners[0].received}, record_property)

    assert lost_telemetry == [], (f"{len(lost_telemetry)} acknowledged records lost, "
                                  f"e.g. {lost_telemetry[:5]}")
    assert lost_to_parked == {}, f"202'd commands never delivered: {lost_to_parked}"
    assert lost_to_listener == {}, f"202'd commands never delivered: {lost_to_listener}"
