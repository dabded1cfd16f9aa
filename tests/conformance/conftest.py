"""Conformance fixtures: a real node per test, devices registered over the API, and a
check after every test that the node still serves a well-behaved client.

Tests that need other settings mark themselves ``@pytest.mark.node(connect_timeout=1)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.rawmqtt import PINGRESP, PUBACK, RawClient
from roost.testing.thread import NodeThread


def register(node: NodeThread, device_id: str) -> str:
    headers = {"Authorization": f"Bearer {node.token}"}
    r = httpx.post(f"{node.url}/v1/devices", json={"id": device_id}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def assert_serves(node: NodeThread) -> None:
    """A good client of each version connects, subscribes, pings and publishes."""
    for version in (4, 5):
        device = f"healthy-v{version}"
        key = register(node, device)
        with RawClient(node.mqtt_port, version) as good:
            assert good.handshake(device, key).code == 0, "the node refused a good client"
            assert good.subscribe([(f"devices/{device}/commands/#", 1)]) == [1]
            assert good.ping().type == PINGRESP
            good.publish(f"devices/{device}/telemetry", b"alive", qos=1, packet_id=9)
            ack = good.read_until(PUBACK)
            assert ack.body[:2] == b"\x00\x09"


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeThread]:
    settings: dict[str, Any] = {"sweep_interval": 0.5}
    marker = request.node.get_closest_marker("node")
    if marker is not None:
        settings.update(marker.kwargs)
    with NodeThread(tmp_path / "data", **settings) as running:
        yield running
        # after every malformed or hostile case: the node must still serve
        assert_serves(running)


@pytest.fixture
def api(node: NodeThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {node.token}"}
    with httpx.Client(base_url=node.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def key(node: NodeThread) -> str:
    """The key of device ``dev`` (registered for every test that asks)."""
    return register(node, "dev")


@pytest.fixture(params=[4, 5], ids=["mqtt311", "mqtt5"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def client(node: NodeThread, key: str, version: int) -> Iterator[RawClient]:
    """A raw client of the test's version, connected as ``dev``."""
    with RawClient(node.mqtt_port, version) as c:
        assert c.handshake("dev", key).code == 0
        yield c
