"""End-to-end fixtures: a real node (SQLite file, sockets) in a thread, real clients.

A test that needs other settings marks itself ``@pytest.mark.node(mailbox_depth=3)``;
the ``node`` fixture (and so ``api``, ``register`` and ``devices``) then runs a node
with those settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.paho_device import PahoDevice
from roost.testing.thread import NodeThread


def node_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    settings: dict[str, Any] = {"sweep_interval": 0.5}
    marker = request.node.get_closest_marker("node")
    if marker is not None:
        settings.update(marker.kwargs)
    return settings


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NodeThread]:
    with NodeThread(tmp_path / "data", **node_settings(request)) as running:
        yield running


@pytest.fixture
def api(node: NodeThread) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {node.token}"}
    with httpx.Client(base_url=node.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def register(api: httpx.Client) -> Callable[..., str]:
    """Register a device and return its key."""

    def _register(device_id: str, groups: list[str] | None = None) -> str:
        r = api.post("/v1/devices", json={"id": device_id, "groups": groups or []})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    return _register


@pytest.fixture(params=[4, 5], ids=["mqtt311", "mqtt5"])
def version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def devices(node: NodeThread, version: int) -> Iterator[Callable[..., PahoDevice]]:
    """Make paho devices of the test's MQTT version; all are closed at the end."""
    made: list[PahoDevice] = []

    def _make(device_id: str, key: str | None, **kwargs: Any) -> PahoDevice:
        d = PahoDevice(node.mqtt_port, device_id, key, kwargs.pop("version", version), **kwargs)
        made.append(d)
        return d

    yield _make
    for d in made:
        d.close()
