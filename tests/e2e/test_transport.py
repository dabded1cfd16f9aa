"""Transport details users feel as latency.

A node answers small writes at once: with Nagle's algorithm on, a response written in
two parts (uvicorn writes the status line and headers, then the body) waits for the
peer's delayed ACK, ~40 ms on Linux, on every HTTP request; MQTT replies written in
several writes can stall the same way. asyncio sets TCP_NODELAY on accepted sockets
only when the listening socket's ``proto`` is IPPROTO_TCP.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx

from e2e.paho_device import PahoDevice
from roost.testing.thread import NodeThread


async def _nodelay_of_connections(node: Any) -> dict[str, list[int]]:
    mqtt = [p.transport.get_extra_info("socket") for p in node._mqtt.connections]
    http = [p.transport.get_extra_info("socket") for p in node._http.server_state.connections]
    return {
        kind: [s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in socks]
        for kind, socks in (("mqtt", mqtt), ("http", http))
    }


def test_accepted_connections_have_nagle_off(tmp_path: Path) -> None:
    """Every accepted MQTT and HTTP connection has TCP_NODELAY set."""
    with NodeThread(tmp_path / "data") as node:
        headers = {"Authorization": f"Bearer {node.token}"}
        with httpx.Client(base_url=node.url, headers=headers) as api:
            key = api.post("/v1/devices", json={"id": "fast-1"}).json()["key"]
            dev = PahoDevice(node.mqtt_port, "fast-1", key, 4)
            try:
                assert dev.connect() == 0
                found = node.call(_nodelay_of_connections(node.node))
            finally:
                dev.close()
    assert found["mqtt"] and found["http"], found
    assert all(found["mqtt"]) and all(found["http"]), f"TCP_NODELAY per connection: {found}"
