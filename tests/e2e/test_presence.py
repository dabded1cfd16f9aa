"""Presence: ``GET /v1/devices/{id}`` says whether the device is connected and when it
was last seen (DESIGN.md, service-facing contract)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from e2e.helpers import device_info, wait_for
from e2e.paho_device import PahoDevice


def test_connected_while_connected_and_last_seen_after(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("buoy-1")
    fresh = device_info(api, "buoy-1")
    assert fresh["connected"] is False
    assert fresh["last_seen"] is None
    before = time.time()
    dev = devices("buoy-1", key)
    assert dev.connect() == 0
    wait_for(lambda: device_info(api, "buoy-1")["connected"], what="connected=true")
    dev.close()
    info = wait_for(
        lambda: (i := device_info(api, "buoy-1"))["connected"] is False and i,
        what="connected=false",
    )
    assert info["last_seen"] is not None
    assert before - 1 <= info["last_seen"] <= time.time() + 1
    assert any(d["id"] == "buoy-1" for d in api.get("/v1/devices").json()["devices"])


def test_presence_follows_an_abrupt_drop(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    """A connection that dies without DISCONNECT (socket closed) is not 'connected'."""
    key = register("buoy-2")
    dev = devices("buoy-2", key)
    assert dev.connect() == 0
    wait_for(lambda: device_info(api, "buoy-2")["connected"], what="connected=true")
    sock = dev.client.socket()
    assert sock is not None
    sock.close()  # no DISCONNECT packet
    wait_for(lambda: device_info(api, "buoy-2")["connected"] is False, what="connected=false")
