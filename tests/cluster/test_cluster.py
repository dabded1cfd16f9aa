"""Any node serves any device: commands, mailboxes, takeover and groups across two nodes.

Two Roost nodes share one 3-server JetStream cluster (replicas 3); paho-mqtt devices
connect to either node and the HTTP API is called on either node.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import httpx

from cluster.conftest import register
from e2e.helpers import outcomes_for, wait_for
from e2e.paho_device import PahoDevice
from e2e.test_commands import answer_commands
from roost.testing.thread import NodeThread


def test_command_through_a_reaches_device_on_b_and_the_answer_comes_back(
    nodes: tuple[NodeThread, NodeThread],
    apis: tuple[httpx.Client, httpx.Client],
    devices: Callable[..., PahoDevice],
) -> None:
    _, b = nodes
    api_a, _ = apis
    key = register(api_a, "truck-7")
    dev = devices(b, "truck-7", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/truck-7/commands/#") == [1]
    answer_commands(dev, 201, b"unlocked")
    started = time.monotonic()
    r = api_a.post("/v1/devices/truck-7/commands/unlock?ttl=30&wait=10", content=b"{}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == 201
    assert base64.b64decode(r.json()["payload"]) == b"unlocked"
    assert time.monotonic() - started < 5, "a connected device answers within moments"


def test_reconnect_to_other_node_gets_what_was_queued_and_nothing_expired(
    nodes: tuple[NodeThread, NodeThread],
    apis: tuple[httpx.Client, httpx.Client],
    devices: Callable[..., PahoDevice],
) -> None:
    a, b = nodes
    api_a, api_b = apis
    key = register(api_a, "lamp-1")
    first = devices(a, "lamp-1", key)
    assert first.connect() == 0
    first.close()
    wait_for(lambda: not api_b.get("/v1/devices/lamp-1").json()["connected"],
             what="lamp-1 offline on every node")
    short = api_b.post("/v1/devices/lamp-1/commands/blink?ttl=1", content=b"short")
    long = api_b.post("/v1/devices/lamp-1/commands/dim?ttl=60", content=b"long")
    note = api_a.post("/v1/devices/lamp-1/notifications/news?ttl=60", content=b"hi")
    assert {short.status_code, long.status_code, note.status_code} == {202}
    time.sleep(1.5)
    again = devices(b, "lamp-1", key)
    assert again.connect() == 0
    again.subscribe("devices/lamp-1/#")
    got = [again.expect(), again.expect()]
    assert sorted(m.payload for m in got) == [b"hi", b"long"]
    again.expect_none(1.0)
    outcomes = outcomes_for(api_a, [short.json()["id"], long.json()["id"]])
    assert outcomes[short.json()["id"]]["outcome"] == "expired"
    assert outcomes[long.json()["id"]]["outcome"] == "delivered"


def test_same_device_on_both_nodes_ends_with_one_live_session(
    nodes: tuple[NodeThread, NodeThread],
    apis: tuple[httpx.Client, httpx.Client],
    devices: Callable[..., PahoDevice],
) -> None:
    a, b = nodes
    api_a, api_b = apis
    key = register(api_a, "pump-3")
    on_a = devices(a, "pump-3", key)
    assert on_a.connect() == 0
    on_b = devices(b, "pump-3", key)
    assert on_b.connect() == 0
    assert on_a.disconnected.wait(10), "the earlier connection (on A) is closed"
    assert not on_b.disconnected.is_set()
    info = api_a.get("/v1/devices/pump-3").json()
    assert info["connected"] is True
    # the live session is B's: a command reaches it
    on_b.subscribe("devices/pump-3/commands/#")
    answer_commands(on_b, 200, b"ok")
    r = api_b.post("/v1/devices/pump-3/commands/start?ttl=30&wait=10", content=b"")
    assert r.status_code == 200, r.text


def test_group_notification_reaches_members_on_both_nodes_once_each(
    nodes: tuple[NodeThread, NodeThread],
    apis: tuple[httpx.Client, httpx.Client],
    devices: Callable[..., PahoDevice],
) -> None:
    a, b = nodes
    api_a, api_b = apis
    members = {"m-a": a, "m-b": b}
    keys = {d: register(api_a, d, ["fleet"]) for d in members}
    outsider = devices(b, "other", register(api_a, "other"))
    connected = {}
    for device_id, node in members.items():
        dev = devices(node, device_id, keys[device_id])
        assert dev.connect() == 0
        dev.subscribe(f"devices/{device_id}/notifications/#")
        connected[device_id] = dev
    assert outsider.connect() == 0
    outsider.subscribe("devices/other/notifications/#")
    r = api_b.post("/v1/groups/fleet/notifications/storm?ttl=60", content=b"take cover")
    assert r.status_code == 202, r.text
    for device_id, dev in connected.items():
        msg = dev.expect()
        assert msg.topic == f"devices/{device_id}/notifications/storm"
        assert msg.payload == b"take cover"
        dev.expect_none(1.0)
    outsider.expect_none(0.5)
